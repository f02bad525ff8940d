import Foundation
import GRDB
import ToolProtocol

/// Writing the history and the audit. Every method is one transaction; see `RecordStore`.
extension RecordStore {
    /// Records an execution that starts now as `running`, so a crash leaves a trace `markInterrupted` finds.
    /// Throws `.other` when the id is already recorded.
    public func executionStarted(_ start: ExecutionStart) throws(RecordError) {
        try write("record the start of execution \(start.executionID)") { db in
            try insertExecution(db, start, status: .running)
        }
    }

    /// Records how a `running` execution ended: the history row, its stored output, an audit entry and the
    /// counters, together. Throws `.notFound` for an unknown id and `.other` when it already ended.
    public func executionFinished(_ executionID: String, _ outcome: ExecutionOutcome) throws(RecordError) {
        let operation = "record the end of execution \(executionID)"
        try Self.check(outcome, operation)
        try write(operation) { db in
            guard try finish(db, executionID, outcome) else {
                // The slow path, for the message only.
                guard
                    let status = try String.fetchOne(
                        db, sql: "SELECT status FROM executions WHERE execution_id = ?", arguments: [executionID])
                else { throw RecordError.notFound(executionID: executionID) }
                throw RecordError.other("\(operation): it already ended as \(status)")
            }
        }
    }

    /// Records an execution that never was `running` in the history — a cache hit (`outcome.cached`) — in
    /// one transaction: history row, output, audit, counters.
    public func recordCompleted(_ start: ExecutionStart, _ outcome: ExecutionOutcome) throws(RecordError) {
        let operation = "record execution \(start.executionID)"
        try Self.check(outcome, operation)
        try write(operation) { db in
            try insertExecution(db, start, status: .running)
            _ = try finish(db, start.executionID, outcome)
        }
    }

    /// Records a call refused before running (denied, rate limited, overloaded, approval denied, invalid
    /// params) in the history and the audit, with the error the caller got.
    public func recordRefused(_ call: RefusedCall) throws(RecordError) {
        let operation = "record refused call \(call.start.executionID)"
        guard call.status.isRefusal else {
            throw RecordError.other("\(operation): \(call.status.rawValue) is not a refusal status")
        }
        try write(operation) { db in
            try insertExecution(db, call.start, status: call.status, error: call.error)
            try auditCall(db, call.start.executionID, time: call.start.startedAt)
            try countCall(db, call.start.executionID)
        }
    }

    /// Records an administrative action in the audit.
    public func audit(_ action: AdminAction) throws(RecordError) {
        try write("audit \(action.action)") { db in
            try db.cachedStatement(
                sql: """
                    INSERT INTO audit (time, kind, request_id, execution_id, uid, gid, pid, user, method, tool,
                                       action, details)
                    VALUES (?, 'admin', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """
            ).execute(arguments: [
                action.at.millisecondsSince1970, action.requestID.map(CanonicalJSON.string), action.executionID,
                Int64(action.caller.uid), Int64(action.caller.gid), Int64(action.caller.pid), action.caller.user,
                action.method, action.tool, action.action, CanonicalJSON.string(action.details),
            ])
        }
    }

    /// At daemon start: every execution still `running` was cut short by the previous daemon's end. Each
    /// becomes `interrupted` (finished at `now`, with an audit entry); returns their ids, oldest first.
    public func markInterrupted(now: Timestamp) throws(RecordError) -> [String] {
        try write("mark the executions of the previous run interrupted") { db in
            let ids = try String.fetchAll(
                db,
                sql: "SELECT execution_id FROM executions WHERE status = 'running' ORDER BY started_at, execution_id")
            for id in ids {
                try db.execute(
                    sql: """
                        UPDATE executions SET status = 'interrupted', finished_at = ?, failure = ?
                        WHERE execution_id = ?
                        """,
                    arguments: [now.millisecondsSince1970, Self.interruptedFailure, id])
                try auditCall(db, id, time: now)
                try countCall(db, id)
            }
            return ids
        }
    }

    static let interruptedFailure = "the daemon stopped while this execution ran"

    // MARK: rows

    static func check(_ outcome: ExecutionOutcome, _ operation: String) throws(RecordError) {
        guard outcome.status.isOutcome else {
            throw RecordError.other("\(operation): \(outcome.status.rawValue) is not how an execution ends")
        }
    }

    func insertExecution(
        _ db: Database, _ start: ExecutionStart, status: ExecutionStatus, error: RecordedError? = nil
    )
        throws
    {
        try db.cachedStatement(
            sql: """
                INSERT INTO executions (execution_id, request_id, method, tool, uid, gid, pid, user, started_at,
                                        finished_at, status, arguments, decision, rule, error_code, error_message)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """
        ).execute(arguments: [
            start.executionID, start.requestID.map(CanonicalJSON.string), start.method.rawValue, start.tool,
            Int64(start.caller.uid), Int64(start.caller.gid), Int64(start.caller.pid), start.caller.user,
            start.startedAt.millisecondsSince1970,
            status == .running ? nil : start.startedAt.millisecondsSince1970, status.rawValue,
            CanonicalJSON.string(start.arguments), start.decision, start.rule, error?.code, error?.message,
        ])
    }

    /// Turns the `running` row `executionID` into its outcome, with output, audit and counters. False, with
    /// nothing written, when there is no such running row.
    func finish(_ db: Database, _ executionID: String, _ o: ExecutionOutcome) throws -> Bool {
        try db.cachedStatement(
            sql: """
                UPDATE executions SET finished_at = ?, status = ?, exit_code = ?, signal = ?, duration_ms = ?,
                    queued_ms = ?, cpu_ms = ?, memory_peak_bytes = ?, stdout_bytes = ?, stderr_bytes = ?,
                    stdout_sha256 = ?, stderr_sha256 = ?, stdout_truncated = ?, stderr_truncated = ?,
                    violations = ?, attempts = ?, cached = ?, failure = ?
                WHERE execution_id = ? AND status = 'running'
                """
        ).execute(arguments: [
            o.finishedAt.millisecondsSince1970, o.status.rawValue, o.exitCode, o.signal, o.durationMs, o.queuedMs,
            o.cpuMs, Int64(clamping: o.memoryPeakBytes), o.stdout.sizeBytes, o.stderr.sizeBytes, o.stdout.sha256,
            o.stderr.sha256, o.stdout.truncated, o.stderr.truncated,
            CanonicalJSON.string(.array(o.violations.map(JSONValue.string))), o.attempts, o.cached, o.failure,
            executionID,
        ])
        guard db.changesCount == 1 else { return false }
        let cap = settings.outputBytesPerStream
        // Empty streams need no row: `get` reads them back as empty from the byte counts.
        if cap > 0 && !(o.stdout.bytes.isEmpty && o.stderr.bytes.isEmpty) {
            let stdout = OutputStorage.prefix(o.stdout.bytes, cap: cap)
            let stderr = OutputStorage.prefix(o.stderr.bytes, cap: cap)
            try db.cachedStatement(
                sql: """
                    INSERT OR REPLACE INTO outputs (execution_id, stdout, stderr, stdout_stored_truncated,
                                                    stderr_stored_truncated)
                    VALUES (?, ?, ?, ?, ?)
                    """
            ).execute(arguments: [executionID, Data(stdout.bytes), Data(stderr.bytes), stdout.cut, stderr.cut])
        }
        try auditCall(db, executionID, time: o.finishedAt)
        try countCall(db, executionID)
        return true
    }

    /// Appends the audit entry of a call, copied from its history row as it stands now (so pruning the history
    /// later loses nothing from the audit).
    func auditCall(_ db: Database, _ executionID: String, time: Timestamp) throws {
        try db.cachedStatement(
            sql: """
                INSERT INTO audit (time, kind, request_id, execution_id, uid, gid, pid, user, method, tool, arguments,
                    decision, rule, status, exit_code, signal, duration_ms, queued_ms, cpu_ms, memory_peak_bytes,
                    stdout_bytes, stdout_sha256, stderr_bytes, stderr_sha256, stdout_truncated, stderr_truncated,
                    violations, attempts, cached, failure, error_code, error_message)
                SELECT ?, 'call', request_id, execution_id, uid, gid, pid, user, method, tool, arguments,
                    decision, rule, status, exit_code, signal, duration_ms, queued_ms, cpu_ms, memory_peak_bytes,
                    stdout_bytes, stdout_sha256, stderr_bytes, stderr_sha256, stdout_truncated, stderr_truncated,
                    violations, attempts, cached, failure, error_code, error_message
                FROM executions WHERE execution_id = ?
                """
        ).execute(arguments: [time.millisecondsSince1970, executionID])
    }

    /// Adds a finished (or refused, or interrupted) call to the monotonic totals of (tool, uid, status).
    /// Durations and queue times count only for executions that ran (not cache hits).
    func countCall(_ db: Database, _ executionID: String) throws {
        try db.cachedStatement(
            sql: """
                INSERT INTO counters (tool, uid, status, user, calls, cache_hits, duration_ms_sum, duration_count,
                                      queued_ms_sum, queued_count)
                SELECT tool, uid, status, user, 1, cached,
                       CASE WHEN cached = 0 AND duration_ms IS NOT NULL THEN duration_ms ELSE 0 END,
                       CASE WHEN cached = 0 AND duration_ms IS NOT NULL THEN 1 ELSE 0 END,
                       CASE WHEN cached = 0 AND queued_ms IS NOT NULL THEN queued_ms ELSE 0 END,
                       CASE WHEN cached = 0 AND queued_ms IS NOT NULL THEN 1 ELSE 0 END
                FROM executions WHERE execution_id = ?
                ON CONFLICT (tool, uid, status) DO UPDATE SET
                    user = excluded.user, calls = calls + 1, cache_hits = cache_hits + excluded.cache_hits,
                    duration_ms_sum = duration_ms_sum + excluded.duration_ms_sum,
                    duration_count = duration_count + excluded.duration_count,
                    queued_ms_sum = queued_ms_sum + excluded.queued_ms_sum,
                    queued_count = queued_count + excluded.queued_count
                """
        ).execute(arguments: [executionID])
    }

    /// The start of a recorded execution, read back from its row.
    static func start(from row: Row) throws -> ExecutionStart {
        let caller = CallerIdentity(
            uid: UInt32(truncatingIfNeeded: row["uid"] as Int64), gid: UInt32(truncatingIfNeeded: row["gid"] as Int64),
            pid: Int32(truncatingIfNeeded: row["pid"] as Int64), user: row["user"], groups: [], admin: false)
        let methodName: String = row["method"]
        return ExecutionStart(
            executionID: row["execution_id"], requestID: try (row["request_id"] as String?).map(Self.parseJSON),
            method: ExecutionMethod(rawValue: methodName) ?? .exec, tool: row["tool"], caller: caller,
            startedAt: Timestamp(millisecondsSince1970: row["started_at"]),
            arguments: try Self.parseJSON(row["arguments"]),
            decision: row["decision"], rule: row["rule"])
    }

    static func parseJSON(_ text: String) throws -> JSONValue {
        do {
            return try JSONCoding.parse(Array(text.utf8))
        } catch {
            throw RecordError.other("read a stored JSON value: \(error)")
        }
    }
}

/// How much of an output stream is stored.
enum OutputStorage {
    /// The first `cap` bytes of `bytes`, cut back to a character boundary when the stream is valid UTF-8 (so
    /// it still reads as text), and whether anything was cut.
    static func prefix(_ bytes: [UInt8], cap: Int) -> (bytes: ArraySlice<UInt8>, cut: Bool) {
        guard bytes.count > cap else { return (bytes[...], false) }
        var end = cap
        if String(validating: bytes, as: UTF8.self) != nil {
            // A UTF-8 continuation byte (10xxxxxx) at the cut means a character straddles it.
            while end > 0, end > cap - 3, bytes[end] & 0xC0 == 0x80 { end -= 1 }
        }
        return (bytes[..<end], true)
    }
}
