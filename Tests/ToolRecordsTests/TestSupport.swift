import Foundation
import ToolProtocol
import ToolRecords

/// A fresh directory under the system temp dir, removed by `remove()`.
struct TemporaryDirectory {
    let path: String

    init() throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("toold-records-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    var databasePath: String { path + "/toold.db" }

    /// Opens the store of this directory.
    func store(_ settings: RecordSettings = RecordSettings()) throws -> RecordStore {
        try RecordStore(path: databasePath, settings: settings)
    }

    func remove() { try? FileManager.default.removeItem(atPath: path) }
}

/// Callers and record builders shared by the suites. Times are fixed so tests never depend on the clock.
enum Fixture {
    static let ana = CallerIdentity(
        uid: 1000, gid: 1000, pid: 4242, user: "ana", groups: ["ana", "toold"], admin: false)
    static let bob = CallerIdentity(
        uid: 1001, gid: 1001, pid: 4343, user: "bob", groups: ["bob", "toold"], admin: false)
    static let root = CallerIdentity(uid: 0, gid: 0, pid: 1, user: "root", groups: ["root"], admin: true)

    /// 2026-11-21T00:00:00.000Z
    static let t0 = Timestamp(millisecondsSince1970: 1_795_219_200_000)

    static func at(_ offsetMs: Int64) -> Timestamp { t0.adding(milliseconds: offsetMs) }

    /// A unique execution id in the daemon's format, `ex_` + 32 hex digits.
    static func executionID(_ n: Int) -> String {
        let hex = String(n, radix: 16)
        return "ex_" + String(repeating: "0", count: 32 - hex.count) + hex
    }

    static func start(
        _ n: Int, caller: CallerIdentity = ana, tool: String = "shell", at offsetMs: Int64 = 0,
        method: ExecutionMethod = .toolsCall, arguments: JSONValue = ["script": "echo hi"]
    ) -> ExecutionStart {
        ExecutionStart(
            executionID: executionID(n), requestID: .int(Int64(n)), method: method, tool: tool, caller: caller,
            startedAt: at(offsetMs), arguments: arguments, decision: "allow", rule: "default allow")
    }

    static func outcome(
        _ status: ExecutionStatus = .exited, exitCode: Int32? = 0, durationMs: Int = 10, finishedAt offsetMs: Int64 = 0,
        queuedMs: Int? = nil, stdout: [UInt8] = Array("hi\n".utf8), cached: Bool = false, memory: UInt64 = 1 << 20
    ) -> ExecutionOutcome {
        ExecutionOutcome(
            status: status, finishedAt: at(offsetMs), exitCode: exitCode, signal: nil, durationMs: durationMs,
            queuedMs: queuedMs, cpuMs: durationMs / 2, memoryPeakBytes: memory,
            stdout: CapturedOutput(bytes: stdout, sha256: String(repeating: "a", count: 64)), stderr: .empty,
            violations: [], attempts: 1, cached: cached)
    }

    /// Records a finished execution in one call (start + finish).
    static func record(
        _ store: RecordStore, _ n: Int, caller: CallerIdentity = ana, tool: String = "shell", at offsetMs: Int64 = 0,
        _ outcome: ExecutionOutcome? = nil
    ) throws {
        let start = start(n, caller: caller, tool: tool, at: offsetMs)
        try store.executionStarted(start)
        try store.executionFinished(start.executionID, outcome ?? Fixture.outcome(finishedAt: offsetMs + 10))
    }
}

/// The sqlite3 command-line shell, for tests that must touch a database behind the store's back.
enum SQLite {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    @discardableResult
    static func execute(_ path: String, _ sql: String) throws -> String {
        try run("/usr/bin/sqlite3", [path, sql])
    }

    /// The Debian package that ships `program`.
    static func package(of program: String) -> String {
        [
            "/usr/bin/sqlite3": "sqlite3", "/usr/bin/promtool": "prometheus", "/usr/local/bin/promtool": "prometheus (scripts/deps)", "/bin/mount": "mount",
            "/bin/umount": "mount",
        ][
            program] ?? URL(fileURLWithPath: program).lastPathComponent
    }

    /// Runs a program, returns its stdout; throws with its stderr when it exits non-zero.
    @discardableResult
    static func run(_ program: String, _ arguments: [String], stdin: String? = nil) throws -> String {
        guard FileManager.default.isExecutableFile(atPath: program) else {
            throw Failure(
                description:
                    "\(program) is missing (Debian: apt-get install \(Self.package(of: program)))"
            )
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: program)
        process.arguments = arguments
        let out = Pipe()
        let err = Pipe()
        let input = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = input
        try process.run()
        if let stdin { input.fileHandleForWriting.write(Data(stdin.utf8)) }
        try input.fileHandleForWriting.close()
        let output = out.fileHandleForReading.readDataToEndOfFile()
        let errors = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw Failure(
                description:
                    "\(program) \(arguments.joined(separator: " ")): exit \(process.terminationStatus): "
                    + String(decoding: errors, as: UTF8.self)
            )
        }
        return String(decoding: output, as: UTF8.self)
    }
}
