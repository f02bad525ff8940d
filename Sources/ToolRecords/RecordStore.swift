import Foundation
import GRDB
import GRDBSQLite
import Logging
import Synchronization
import ToolProtocol

/// The daemon's durable records in one SQLite file (`<state_dir>/toold.db`): execution history with stored
/// outputs, the audit log, monotonic counters and the result cache.
///
/// Guarantees:
/// - Opened once: WAL journal (readers never block the writer), `synchronous=NORMAL` — a committed record
///   survives a crash or `kill -9` of the daemon; a power loss or kernel crash may lose the last
///   transactions, never the file's consistency. Migrations are versioned; a newer file is refused.
/// - Each record write is one IMMEDIATE transaction: all of it is stored or none (history row, output, audit
///   row and counters together). A failed write (disk full included) rolls back and leaves the store usable.
/// - Synchronous and thread-safe: call it off the event loop, from any thread. Writes are serialised; a
///   connection waits up to 5 s for a lock held elsewhere (another process) before failing.
public final class RecordStore: Sendable {
    /// The database file.
    public let path: String
    let pool: DatabasePool
    let settingsBox: Mutex<RecordSettings>
    let logger: Logger

    /// How long a connection waits for a lock before SQLITE_BUSY.
    public static let busyTimeoutSeconds: Double = 5

    /// Opens (creating if needed) the database at `path` and applies pending migrations.
    /// Throws `.corrupt` for a damaged file, `.other` for a file of a newer toold or an unusable directory.
    public init(
        path: String, settings: RecordSettings = RecordSettings(), logger: Logger = Logger(label: "toold.records")
    )
        throws(RecordError)
    {
        self.path = path
        self.settingsBox = Mutex(settings)
        self.logger = logger
        var configuration = Configuration()
        configuration.label = "toold.records"
        configuration.busyMode = .timeout(Self.busyTimeoutSeconds)
        configuration.prepareDatabase { db in
            // Per connection. WAL + NORMAL: fsync at checkpoints only; see the type's comment.
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
        }
        do {
            pool = try DatabasePool(path: path, configuration: configuration)
        } catch {
            throw RecordError.classify(error, operation: "open the record database", path: path)
        }
        let migrator = RecordSchema.migrator
        do {
            let superseded = try pool.read { db in try migrator.hasBeenSuperseded(db) }
            if superseded {
                throw RecordError.other(
                    "open the record database: \(path) was written by a newer toold (it has migrations this build "
                        + "does not know); run that version, or move the file aside to start a new history")
            }
            let wasCurrent = try pool.read { db in try migrator.hasCompletedMigrations(db) }
            try migrator.migrate(pool)
            if try pool.writeWithoutTransaction(RecordSchema.enableIncrementalVacuum) {
                logger.notice(
                    "record database switched to incremental auto-vacuum", metadata: ["toold.records.path": "\(path)"])
            }
            if !wasCurrent {
                logger.notice("record database migrated", metadata: ["toold.records.path": "\(path)"])
            }
        } catch {
            throw RecordError.classify(error, operation: "migrate the record database", path: path)
        }
    }

    /// The settings in force.
    public var settings: RecordSettings { settingsBox.withLock { $0 } }

    /// Replaces the settings (on configuration reload). Applies to records written from now on; stored outputs
    /// and cache entries are not rewritten (the cache shrinks to new bounds at its next insert).
    public func updateSettings(_ settings: RecordSettings) { settingsBox.withLock { $0 = settings } }

    // MARK: transactions

    /// Runs `body` in one IMMEDIATE write transaction: committed whole or rolled back whole.
    func write<T>(_ operation: @autoclosure () -> String, _ body: (Database) throws -> T) throws(RecordError) -> T {
        do {
            return try pool.writeWithoutTransaction { db in
                do {
                    var result: T?
                    try db.inTransaction(.immediate) {
                        result = try body(db)
                        return .commit
                    }
                    return result!
                } catch let error as DatabaseError {
                    // Read here, on the connection that failed: tells ENOSPC from other I/O errors.
                    throw SQLiteFailure(error: error, systemErrno: sqlite3_system_errno(db.sqliteConnection))
                }
            }
        } catch {
            throw RecordError.classify(error, operation: operation(), path: path)
        }
    }

    /// Runs `body` on a reader connection, on a snapshot of the last committed state.
    func read<T>(_ operation: @autoclosure () -> String, _ body: (Database) throws -> T) throws(RecordError) -> T {
        do {
            return try pool.read { db in try body(db) }
        } catch {
            throw RecordError.classify(error, operation: operation(), path: path)
        }
    }
}
