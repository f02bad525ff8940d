import Foundation
import GRDB
import ToolProtocol

/// Every failure of the record store. Messages name the operation and the database file, and say what a
/// person can do. A failed write never leaves a partial record: its transaction is rolled back and the store
/// stays usable.
public enum RecordError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The file system holding the database is full (SQLITE_FULL, or an I/O error with ENOSPC/EDQUOT).
    /// Writes succeed again once space is freed; reads keep working meanwhile.
    case diskFull(operation: String, path: String)
    /// No execution with this id in the history (never recorded, or pruned).
    case notFound(executionID: String)
    /// The viewer may not see this (another user's execution or figures).
    case permissionDenied(String)
    /// A params field the store cannot use: `path` is a JSON Pointer into params.
    case invalidParams(path: String, message: String)
    /// SQLite reports the file damaged or not a database.
    case corrupt(path: String, detail: String)
    /// Anything else, as "operation: what SQLite said".
    case other(String)

    public var description: String {
        switch self {
        case .diskFull(let operation, let path):
            return
                "\(operation): the file system holding \(path) is full; free space there (recording resumes by itself)"
        case .notFound(let executionID):
            return "no execution \(executionID) in the history (never recorded, or pruned)"
        case .permissionDenied(let why):
            return why
        case .invalidParams(let path, let message):
            return path.isEmpty ? message : "\(path): \(message)"
        case .corrupt(let path, let detail):
            return
                "the record database \(path) is damaged (\(detail)); move it aside and restart toold to start a new one"
        case .other(let why):
            return why
        }
    }

    /// The JSON-RPC error a client gets for this failure.
    public var rpcError: RPCError {
        switch self {
        case .notFound: return .notFound(description)
        case .permissionDenied(let why): return .permissionDenied(why)
        case .invalidParams(let path, let message): return .invalidParams(path: path, message)
        case .diskFull, .corrupt, .other: return .internalError(description)
        }
    }
}

extension RecordError {
    /// Classifies a failure of `operation` on the database at `path`. `systemErrno` is the errno of the
    /// connection's last failed system call, which tells a full disk from other I/O errors.
    static func classify(_ error: any Error, operation: String, path: String, systemErrno: Int32? = nil) -> RecordError
    {
        if let error = error as? RecordError { return error }
        if let error = error as? SQLiteFailure {
            return classify(error.error, operation: operation, path: path, systemErrno: error.systemErrno)
        }
        guard let error = error as? DatabaseError else { return .other("\(operation): \(error)") }
        let sqliteMessage = error.message ?? "\(error.resultCode)"
        switch error.resultCode {
        case .SQLITE_FULL:
            return .diskFull(operation: operation, path: path)
        case .SQLITE_IOERR where systemErrno == ENOSPC || systemErrno == EDQUOT:
            return .diskFull(operation: operation, path: path)
        case .SQLITE_IOERR:
            let errnoText = systemErrno.map { $0 == 0 ? "" : " (\(String(cString: strerror($0))))" } ?? ""
            return .other("\(operation): I/O error on \(path): \(sqliteMessage)\(errnoText)")
        case .SQLITE_CORRUPT, .SQLITE_NOTADB:
            return .corrupt(path: path, detail: sqliteMessage)
        case .SQLITE_BUSY, .SQLITE_LOCKED:
            return .other("\(operation): \(path) stayed locked by another connection past the busy timeout")
        case .SQLITE_READONLY, .SQLITE_CANTOPEN, .SQLITE_PERM, .SQLITE_AUTH:
            return .other(
                "\(operation): cannot write \(path): \(sqliteMessage); check the state directory's owner and mode")
        case .SQLITE_CONSTRAINT:
            return .other("\(operation): refused by the database: \(sqliteMessage)")
        default:
            return .other("\(operation): \(sqliteMessage) (\(path))")
        }
    }
}

/// A SQLite error with the errno of the system call behind it, read on the connection that failed.
struct SQLiteFailure: Error {
    var error: DatabaseError
    var systemErrno: Int32
}
