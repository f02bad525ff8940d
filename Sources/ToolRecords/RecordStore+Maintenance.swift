import Foundation
import GRDB
import Logging
import ToolProtocol

/// What one `prune` removed.
public struct PruneReport: Sendable, Equatable {
    public var executions = 0
    public var outputs = 0
    public var auditEntries = 0
    public var cacheEntries = 0
    /// Pages given back to the file system by `incremental_vacuum`.
    public var pagesFreed = 0
}

/// The size and layout of the database file.
public struct StorageStats: Sendable, Equatable {
    public var pageSize: Int
    public var pageCount: Int
    /// Pages inside the file that hold nothing (0 after a prune: they were given back).
    public var freePages: Int
    /// 2 = INCREMENTAL.
    public var autoVacuum: Int
    public var journalMode: String
    public var bytes: Int { pageSize * pageCount }
}

/// One audit entry: the main fields typed, and every recorded column in `fields` (by column name, nulls
/// left out; JSON columns parsed).
public struct AuditEntry: Sendable, Equatable {
    public var id: Int64
    public var time: Timestamp
    /// `call` (an execution-method call: its outcome, refusal or interruption) or `admin`.
    public var kind: String
    public var method: String
    public var user: String
    public var uid: UInt32
    public var executionID: String?
    public var tool: String?
    public var status: String?
    /// For `admin`: the action's kind.
    public var action: String?
    public var fields: [String: JSONValue]
}

/// Retention, integrity and inspection.
extension RecordStore {
    /// Rows deleted per transaction while pruning, so recording is never blocked for long.
    static let pruneBatch = 2000

    /// Deletes history (with its outputs) that started more than `historyDays` days before `now`, audit entries
    /// older than `auditDays` days, and expired cache entries; then gives the freed pages back to the file
    /// system so the file stays bounded. Executions still `running` are kept. Each batch is its own
    /// transaction: an interrupted prune leaves a consistent, partly pruned database.
    @discardableResult
    public func prune(now: Timestamp, historyDays: Int, auditDays: Int) throws(RecordError) -> PruneReport {
        let historyCutoff = now.millisecondsSince1970 - Int64(historyDays) * 86_400_000
        let auditCutoff = now.millisecondsSince1970 - Int64(auditDays) * 86_400_000
        var report = PruneReport()
        let oldExecutions = """
            SELECT execution_id FROM executions WHERE started_at < ? AND status != 'running'
            ORDER BY started_at, execution_id LIMIT \(Self.pruneBatch)
            """
        while true {
            let (outputs, executions) = try write("prune the execution history") { db in
                try db.execute(
                    sql: "DELETE FROM outputs WHERE execution_id IN (\(oldExecutions))", arguments: [historyCutoff])
                let outputs = db.changesCount
                try db.execute(
                    sql: "DELETE FROM executions WHERE execution_id IN (\(oldExecutions))", arguments: [historyCutoff])
                return (outputs, db.changesCount)
            }
            report.outputs += outputs
            report.executions += executions
            if executions < Self.pruneBatch { break }
        }
        while true {
            let deleted = try write("prune the audit log") { db in
                try db.execute(
                    sql:
                        "DELETE FROM audit WHERE id IN "
                        + "(SELECT id FROM audit WHERE time < ? ORDER BY id LIMIT \(Self.pruneBatch))",
                    arguments: [auditCutoff])
                return db.changesCount
            }
            report.auditEntries += deleted
            if deleted < Self.pruneBatch { break }
        }
        report.cacheEntries = try write("prune expired cache entries") { db in
            try db.execute(sql: "DELETE FROM cache WHERE expires_at <= ?", arguments: [now.millisecondsSince1970])
            return db.changesCount
        }
        report.pagesFreed = try write("give freed pages back to the file system") { db in
            let before = try Int.fetchOne(db, sql: "PRAGMA freelist_count") ?? 0
            try db.execute(sql: "PRAGMA incremental_vacuum")
            return before - (try Int.fetchOne(db, sql: "PRAGMA freelist_count") ?? 0)
        }
        do {
            // Shrinks the WAL file too (it keeps its high-water mark otherwise). Best effort: a reader in
            // progress may keep part of it; the next prune retries.
            _ = try pool.writeWithoutTransaction { db in try Row.fetchOne(db, sql: "PRAGMA wal_checkpoint(TRUNCATE)") }
        } catch {
            logger.warning(
                "record database: WAL checkpoint after prune failed",
                metadata: ["toold.records.error": "\(RecordError.classify(error, operation: "checkpoint", path: path))"]
            )
        }
        logger.info(
            "record database pruned",
            metadata: [
                "toold.records.executions": "\(report.executions)", "toold.records.outputs": "\(report.outputs)",
                "toold.records.audit": "\(report.auditEntries)", "toold.records.cache": "\(report.cacheEntries)",
                "toold.records.pages_freed": "\(report.pagesFreed)",
            ])
        return report
    }

    /// `PRAGMA integrity_check`: true when SQLite finds the file sound. Problems are logged at error level;
    /// `integrityProblems()` returns them.
    public func integrityCheck() throws(RecordError) -> Bool {
        let problems = try integrityProblems()
        for problem in problems {
            logger.error(
                "record database integrity problem",
                metadata: ["toold.records.problem": "\(problem)", "toold.records.path": "\(path)"])
        }
        return problems.isEmpty
    }

    /// What `PRAGMA integrity_check` reports wrong (empty when the file is sound).
    public func integrityProblems() throws(RecordError) -> [String] {
        let lines = try read("check the record database's integrity") { db in
            try String.fetchAll(db, sql: "PRAGMA integrity_check")
        }
        return lines == ["ok"] ? [] : lines
    }

    /// Page counts and settings of the file.
    public func storageStats() throws(RecordError) -> StorageStats {
        try read("measure the record database") { db in
            StorageStats(
                pageSize: try Int.fetchOne(db, sql: "PRAGMA page_size") ?? 0,
                pageCount: try Int.fetchOne(db, sql: "PRAGMA page_count") ?? 0,
                freePages: try Int.fetchOne(db, sql: "PRAGMA freelist_count") ?? 0,
                autoVacuum: try Int.fetchOne(db, sql: "PRAGMA auto_vacuum") ?? 0,
                journalMode: try String.fetchOne(db, sql: "PRAGMA journal_mode") ?? "")
        }
    }

    /// Audit entries at or after `since`, oldest first, at most `limit`.
    public func auditEntries(
        since: Timestamp = Timestamp(millisecondsSince1970: 0), limit: Int = 1000
    ) throws(RecordError)
        -> [AuditEntry]
    {
        let rows = try read("read the audit log") { db in
            try Row.fetchAll(
                db, sql: "SELECT * FROM audit WHERE time >= ? ORDER BY id LIMIT ?",
                arguments: [since.millisecondsSince1970, limit])
        }
        return rows.map { row in
            var fields: [String: JSONValue] = [:]
            for (column, value) in row {
                switch value.storage {
                case .null: continue
                case .int64(let i): fields[column] = .int(i)
                case .double(let d): fields[column] = .double(d)
                case .string(let s):
                    let isJSON = ["arguments", "violations", "details", "request_id"].contains(column)
                    fields[column] = isJSON ? ((try? JSONCoding.parse(Array(s.utf8))) ?? .string(s)) : .string(s)
                case .blob(let data): fields[column] = .string(Base64.encode(Array(data)))
                }
            }
            return AuditEntry(
                id: row["id"], time: Timestamp(millisecondsSince1970: row["time"]), kind: row["kind"],
                method: row["method"], user: row["user"], uid: UInt32(truncatingIfNeeded: row["uid"] as Int64),
                executionID: row["execution_id"], tool: row["tool"], status: row["status"], action: row["action"],
                fields: fields)
        }
    }
}
