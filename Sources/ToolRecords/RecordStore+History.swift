import Foundation
import GRDB
import ToolProtocol

/// Reading the history: `executions.list` and `executions.get`. Non-admins see only their own executions.
extension RecordStore {
    /// One page of the history, newest first (by start time, then id). Filters combine with AND. A
    /// non-admin sees only rows of their own uid; naming another user is `.permissionDenied`.
    public func list(_ params: ExecutionsListParams, viewer: CallerIdentity) throws(RecordError) -> ExecutionsListResult
    {
        let limit = params.limit ?? ExecutionsListParams.defaultLimit
        guard (1...ExecutionsListParams.maximumLimit).contains(limit) else {
            throw RecordError.invalidParams(
                path: "/limit", message: "must be between 1 and \(ExecutionsListParams.maximumLimit), got \(limit)")
        }
        try Self.checkPeriod(since: params.since, until: params.until)
        var conditions: [String] = []
        var arguments: StatementArguments = []
        try Self.scope(viewer: viewer, user: params.user, conditions: &conditions, arguments: &arguments)
        if let tool = params.tool {
            conditions.append("tool = ?")
            arguments += [tool]
        }
        if let status = params.status {
            conditions.append("status = ?")
            arguments += [status.rawValue]
        }
        if let since = params.since {
            conditions.append("started_at >= ?")
            arguments += [since.millisecondsSince1970]
        }
        if let until = params.until {
            conditions.append("started_at < ?")
            arguments += [until.millisecondsSince1970]
        }
        if let text = params.cursor {
            guard let cursor = HistoryCursor(text) else {
                throw RecordError.invalidParams(path: "/cursor", message: "not a cursor this daemon issued")
            }
            conditions.append("(started_at, execution_id) < (?, ?)")
            arguments += [cursor.startedAt, cursor.executionID]
        }
        let sql = """
            SELECT execution_id, started_at, finished_at, method, tool, user, uid, status, exit_code, duration_ms,
                   queued_ms, cached
            FROM executions \(conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND "))
            ORDER BY started_at DESC, execution_id DESC LIMIT ?
            """
        arguments += [limit + 1]
        let rows = try read("list executions") { db in try Row.fetchAll(db, sql: sql, arguments: arguments) }
        let page = rows.prefix(limit).map(Self.summary(from:))
        let next =
            rows.count > limit
            ? page.last.map {
                HistoryCursor(startedAt: $0.startedAt.millisecondsSince1970, executionID: $0.executionId).text
            } : nil
        return ExecutionsListResult(executions: Array(page), nextCursor: next)
    }

    /// One execution in full, with its stored output. `.notFound` when there is no such execution;
    /// `.permissionDenied` when it belongs to another user and the viewer is not an admin.
    public func get(_ executionID: String, viewer: CallerIdentity) throws(RecordError) -> ExecutionRecord {
        let row = try read("read execution \(executionID)") { db in
            try Row.fetchOne(
                db,
                sql: """
                    SELECT e.*, o.stdout AS stored_stdout, o.stderr AS stored_stderr,
                           o.stdout_stored_truncated, o.stderr_stored_truncated
                    FROM executions e LEFT JOIN outputs o USING (execution_id)
                    WHERE e.execution_id = ?
                    """,
                arguments: [executionID])
        }
        guard let row else { throw RecordError.notFound(executionID: executionID) }
        guard viewer.admin || row["uid"] == Int64(viewer.uid) else {
            throw RecordError.permissionDenied("execution \(executionID) belongs to another user")
        }
        do {
            return try Self.record(from: row)
        } catch {
            throw RecordError.classify(error, operation: "read execution \(executionID)", path: path)
        }
    }

    // MARK: helpers

    /// Restricts a query to what `viewer` may see, and to `user` when given.
    static func scope(
        viewer: CallerIdentity, user: String?, conditions: inout [String], arguments: inout StatementArguments
    ) throws(RecordError) {
        if viewer.admin {
            if let user {
                conditions.append("user = ?")
                arguments += [user]
            }
            return
        }
        if let user, user != viewer.user {
            throw RecordError.permissionDenied("only admins may see the records of another user (\(user))")
        }
        conditions.append("uid = ?")
        arguments += [Int64(viewer.uid)]
    }

    static func checkPeriod(since: Timestamp?, until: Timestamp?) throws(RecordError) {
        if let since, let until, since >= until {
            throw RecordError.invalidParams(path: "/since", message: "must be before until (\(until))")
        }
    }

    static func summary(from row: Row) -> ExecutionSummary {
        let method: String = row["method"]
        let status: String = row["status"]
        return ExecutionSummary(
            executionId: row["execution_id"], startedAt: Timestamp(millisecondsSince1970: row["started_at"]),
            finishedAt: (row["finished_at"] as Int64?).map(Timestamp.init(millisecondsSince1970:)),
            method: ExecutionMethod(rawValue: method) ?? .exec, tool: row["tool"], user: row["user"],
            uid: UInt32(truncatingIfNeeded: row["uid"] as Int64),
            status: ExecutionStatus(rawValue: status) ?? .failedToStart,
            exitCode: (row["exit_code"] as Int64?).map { Int32(truncatingIfNeeded: $0) },
            durationMs: row["duration_ms"],
            queuedMs: row["queued_ms"], cached: row["cached"])
    }

    static func record(from row: Row) throws -> ExecutionRecord {
        let start = try start(from: row)
        let summary = summary(from: row)
        let violations = try parseJSON(row["violations"]).arrayValue?.compactMap(\.stringValue) ?? []
        var record = ExecutionRecord(
            executionId: start.executionID, requestId: start.requestID, startedAt: summary.startedAt,
            finishedAt: summary.finishedAt, method: summary.method, tool: summary.tool, user: summary.user,
            uid: summary.uid, gid: start.caller.gid, pid: start.caller.pid, status: summary.status,
            arguments: start.arguments, decision: start.decision, rule: start.rule, exitCode: summary.exitCode,
            signal: (row["signal"] as Int64?).map { Int32(truncatingIfNeeded: $0) }, durationMs: summary.durationMs,
            queuedMs: summary.queuedMs, cpuMs: row["cpu_ms"],
            memoryPeakBytes: (row["memory_peak_bytes"] as Int64?).map { UInt64(clamping: $0) },
            stdoutBytes: row["stdout_bytes"], stderrBytes: row["stderr_bytes"], stdoutSha256: row["stdout_sha256"],
            stderrSha256: row["stderr_sha256"], stdoutTruncated: row["stdout_truncated"],
            stderrTruncated: row["stderr_truncated"], violations: violations, attempts: row["attempts"],
            cached: summary.cached, failure: row["failure"])
        if let code = row["error_code"] as Int?, let message = row["error_message"] as String? {
            record.error = RecordedError(code: code, message: message)
        }
        if let stdout = row["stored_stdout"] as Data?, let stderr = row["stored_stderr"] as Data? {
            (record.stdout, record.stdoutEncoding) = OutputStorage.text(Array(stdout))
            (record.stderr, record.stderrEncoding) = OutputStorage.text(Array(stderr))
            record.stdoutStoredTruncated = row["stdout_stored_truncated"]
            record.stderrStoredTruncated = row["stderr_stored_truncated"]
        } else if row["stdout_bytes"] as Int? == 0, row["stderr_bytes"] as Int? == 0 {
            // Both streams were empty: no outputs row is written for them (one write less per execution).
            (record.stdout, record.stdoutEncoding) = OutputStorage.text([])
            (record.stderr, record.stderrEncoding) = OutputStorage.text([])
            record.stdoutStoredTruncated = false
            record.stderrStoredTruncated = false
        }
        return record
    }
}

extension OutputStorage {
    /// Stored bytes as they travel: UTF-8 text when they are valid UTF-8, else base64.
    static func text(_ bytes: [UInt8]) -> (String, OutputEncoding) {
        if let text = String(validating: bytes, as: UTF8.self) { return (text, .utf8) }
        return (Base64.encode(bytes), .base64)
    }
}

/// The position after the last row of a page: (started_at, execution_id), as an opaque URL-safe string.
struct HistoryCursor: Equatable {
    var startedAt: Int64
    var executionID: String

    init(startedAt: Int64, executionID: String) {
        self.startedAt = startedAt
        self.executionID = executionID
    }

    var text: String {
        Base64.encode(Array("h1:\(startedAt):\(executionID)".utf8))
            .replacing("+", with: "-").replacing("/", with: "_").replacing("=", with: "")
    }

    init?(_ text: String) {
        var b64 = text.replacing("-", with: "+").replacing("_", with: "/")
        b64 += String(repeating: "=", count: (4 - b64.utf8.count % 4) % 4)
        guard let bytes = Base64.decode(b64), let plain = String(validating: bytes, as: UTF8.self) else { return nil }
        let parts = plain.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == "h1", let startedAt = Int64(parts[1]), !parts[2].isEmpty else { return nil }
        self.startedAt = startedAt
        self.executionID = String(parts[2])
    }
}
