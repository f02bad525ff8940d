import Foundation
import Testing
import ToolClient
import ToolProtocol

/// Where the binaries under test live: TOOLD_BIN_DIR, else beside the running test bundle (same build).
enum Binaries {
    static let directory: URL = {
        if let dir = ProcessInfo.processInfo.environment["TOOLD_BIN_DIR"] { return URL(fileURLWithPath: dir) }
        let exe = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        return exe.deletingLastPathComponent()
    }()
    static var toold: String { directory.appendingPathComponent("toold").path }
    static var toolc: String { directory.appendingPathComponent("toolc").path }
    static let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()
}

/// A program's end: status and both outputs.
struct ProcessOutput {
    var status: Int32
    var stdout: String
    var stderr: String
    var stdoutBytes: [UInt8]
}

/// Runs a program to completion; outputs go through files so a full pipe never blocks it.
func runProgram(
    _ path: String, _ arguments: [String], environment: [String: String] = [:], stdin: [UInt8]? = nil,
    asUID uid: UInt32? = nil, groups: [UInt32] = []
) throws -> ProcessOutput {
    let dir = try TempDir("run")
    defer { dir.remove() }
    let outURL = dir.url.appendingPathComponent("out"), errURL = dir.url.appendingPathComponent("err")
    _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
    _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
    let out = try FileHandle(forWritingTo: outURL), err = try FileHandle(forWritingTo: errURL)
    let p = Process()
    if let uid {
        // Drop to an unprivileged uid for this client only (CI runs as root).
        p.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
        let groupList = groups.isEmpty ? ["--clear-groups"] : ["--groups", groups.map(String.init).joined(separator: ",")]
        p.arguments = ["--reuid", "\(uid)", "--regid", "\(uid)"] + groupList + ["--", path] + arguments
    } else {
        p.executableURL = URL(fileURLWithPath: path)
        p.arguments = arguments
    }
    var env = ProcessInfo.processInfo.environment
    env.removeValue(forKey: "TOOLD_SOCKET")
    for (k, v) in environment { env[k] = v }
    p.environment = env
    if let stdin {
        let inURL = dir.url.appendingPathComponent("in")
        _ = FileManager.default.createFile(atPath: inURL.path, contents: Data(stdin))
        p.standardInput = try FileHandle(forReadingFrom: inURL)
    } else {
        p.standardInput = FileHandle.nullDevice
    }
    p.standardOutput = out
    p.standardError = err
    try p.run()
    p.waitUntilExit()
    try out.close()
    try err.close()
    let outData = (try? Data(contentsOf: outURL)) ?? Data()
    return ProcessOutput(
        status: p.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
        stderr: (try? String(contentsOf: errURL, encoding: .utf8)) ?? "", stdoutBytes: Array(outData))
}

/// A temporary directory removed by `remove()`.
struct TempDir {
    let url: URL
    init(_ tag: String) throws {
        url = URL(fileURLWithPath: "/tmp").appendingPathComponent("toold-test-\(tag)-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        // Clients that drop to a test uid must be able to reach the socket inside.
        chmod(url.path, 0o755)
    }
    var path: String { url.path }
    func remove() { try? FileManager.default.removeItem(at: url) }
}

/// The real toold binary on a temporary socket and state dir, stopped (SIGTERM) by `stop()`.
final class TestDaemon: @unchecked Sendable {
    // @unchecked: the Process is only touched from the test that owns this daemon.
    let dir: TempDir
    let socketPath: String
    /// --state-dir (inside `dir`).
    let stateDirectory: String
    let process = Process()
    let logURL: URL
    let policyURL: URL

    /// What `toold --print-default-policy` prints.
    static let defaultPolicy: String = {
        (try? runProgram(Binaries.toold, ["--print-default-policy"]).stdout) ?? "{}"
    }()

    /// Replaces the policy file and reloads (SIGHUP); returns `daemon.status.policy` once it changed
    /// (a new `loaded_at`, or an `error`).
    @discardableResult
    func reloadPolicy(_ text: String) throws -> JSONValue {
        let c = try client()
        defer { c.close() }
        let before = try c.call(RPCMethod.daemonStatus)["policy"]
        try text.write(to: policyURL, atomically: true, encoding: .utf8)
        signal(SIGHUP)
        var after: JSONValue? = nil
        try waitUntil("the policy was reloaded") {
            after = try c.call(RPCMethod.daemonStatus)["policy"]
            return after != before
        }
        return after ?? .null
    }

    /// `policy`: the policy file's text (default: the shipped default policy, so a policy file on the
    /// machine never changes what tests see). `launcher`: a program (and its arguments) that sets
    /// something up and then execs toold, given as its last arguments, in the same process.
    init(
        _ extraArguments: [String] = [], socket: String? = nil, config: String? = nil, policy: String? = nil,
        environment: [String: String] = [:], launcher: [String] = []
    ) throws {
        dir = try TempDir("daemon")
        socketPath = socket ?? dir.url.appendingPathComponent("toold.sock").path
        logURL = dir.url.appendingPathComponent("toold.log")
        policyURL = dir.url.appendingPathComponent("policy.json")
        try (policy ?? Self.defaultPolicy).write(to: policyURL, atomically: true, encoding: .utf8)
        stateDirectory = dir.url.appendingPathComponent("state").path
        var arguments = [
            "--socket", socketPath, "--state-dir", stateDirectory, "--log-level", "debug",
            "--policy", policyURL.path,
        ]
        if let config {
            let configURL = dir.url.appendingPathComponent("toold.json")
            try config.write(to: configURL, atomically: true, encoding: .utf8)
            arguments += ["--config", configURL.path]
        }
        _ = FileManager.default.createFile(atPath: logURL.path, contents: nil)
        let log = try FileHandle(forWritingTo: logURL)
        if let program = launcher.first {
            process.executableURL = URL(fileURLWithPath: program)
            process.arguments = launcher.dropFirst() + [Binaries.toold] + arguments + extraArguments
        } else {
            process.executableURL = URL(fileURLWithPath: Binaries.toold)
            process.arguments = arguments + extraArguments
        }
        var env = ProcessInfo.processInfo.environment
        env.removeValue(forKey: "NOTIFY_SOCKET")
        env.removeValue(forKey: "JOURNAL_STREAM")
        for (k, v) in environment { env[k] = v }
        process.environment = env
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = log
        process.standardError = log
        try process.run()
        try waitUntilServing()
    }

    /// Polls until the socket accepts a connection (or the daemon dies).
    func waitUntilServing() throws {
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            if !process.isRunning {
                throw TestFailure("toold exited with \(process.terminationStatus) before serving:\n\(log)")
            }
            if let client = try? ToolClient(socketPath: socketPath) {
                client.close()
                return
            }
            usleep(20_000)
        }
        throw TestFailure("toold did not serve within 20 s:\n\(log)")
    }

    var log: String { (try? String(contentsOf: logURL, encoding: .utf8)) ?? "" }

    func client() throws -> ToolClient { try ToolClient(socketPath: socketPath) }

    /// Runs the real toolc against this daemon.
    func toolc(_ arguments: [String], stdin: [UInt8]? = nil, asUID uid: UInt32? = nil, groups: [UInt32] = []) throws -> ProcessOutput {
        try runProgram(Binaries.toolc, arguments, environment: ["TOOLD_SOCKET": socketPath], stdin: stdin, asUID: uid, groups: groups)
    }

    func signal(_ number: Int32) { kill(process.processIdentifier, number) }

    /// SIGTERM, then waits; returns the exit status.
    @discardableResult
    func stop() -> Int32 {
        if process.isRunning {
            signal(SIGTERM)
            let deadline = Date().addingTimeInterval(20)
            while process.isRunning && Date() < deadline { usleep(10_000) }
            if process.isRunning { signal(SIGKILL) }
        }
        process.waitUntilExit()
        dir.remove()
        return process.terminationStatus
    }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

extension ToolClient {
    /// Sends raw bytes as one frame and reads the one message that answers it.
    func roundTrip(raw payload: [UInt8]) throws -> JSONValue {
        try sendFrame(payload)
        return try readMessage()
    }

    func roundTrip(_ text: String) throws -> JSONValue { try roundTrip(raw: Array(text.utf8)) }
}

extension JSONValue {
    var errorCode: Int? { self["error"]?["code"]?.int64Value.map(Int.init) }
}

/// The gid of a group, for clients that must be members (e.g. the socket group).
func groupID(_ name: String) -> UInt32? {
    guard let entry = getgrnam(name) else { return nil }
    return entry.pointee.gr_gid
}
