import Foundation
import Logging
@testable import Sandbox
import Synchronization

/// One runtime for the whole suite (a runtime locks its state directory),
/// created on first use. Creates the sandbox user when the machine lacks it.
enum TestRuntime {
    static let stateDirectory = "/tmp/toold-sandbox-tests"

    static let shared: SandboxRuntime = {
        ensureSandboxUser()
        var logger = Logger(label: "toold.sandbox.tests")
        logger.logLevel = .warning
        do {
            return try SandboxRuntime(
                configuration: SandboxConfiguration(stateDirectory: stateDirectory, netnsPoolSize: 4),
                logger: logger
            )
        } catch {
            fatalError("SandboxRuntime: \(error)")
        }
    }()

    static func ensureSandboxUser(_ name: String = "toold-sandbox") {
        if getpwnam(name) != nil { return }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/sbin/useradd")
        p.arguments = ["--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "--user-group", name]
        try? p.run()
        p.waitUntilExit()
    }
}

/// Collects streamed chunks in arrival order.
final class ChunkLog: Sendable {
    private let chunks = Mutex<[(SandboxStream, [UInt8])]>([])

    var handler: @Sendable (SandboxStream, [UInt8]) -> Void {
        { [self] stream, bytes in chunks.withLock { $0.append((stream, bytes)) } }
    }

    var all: [(SandboxStream, [UInt8])] { chunks.withLock { $0 } }
}

func spec(
    _ argv: [String],
    stdin: [UInt8]? = nil,
    env: [String: String] = ["PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/workspace", "LANG": "C.UTF-8", "TMPDIR": "/tmp"],
    cwd: String = "/workspace",
    limits: SandboxLimits = SandboxLimits(),
    timeout: Duration = .seconds(20),
    id: String = #function
) -> SandboxSpec {
    SandboxSpec(
        executionID: id,
        argv: argv,
        environment: env,
        workingDirectory: cwd,
        stdin: stdin,
        limits: limits,
        timeout: timeout
    )
}

func sh(_ script: String, stdin: [UInt8]? = nil, limits: SandboxLimits = SandboxLimits(), timeout: Duration = .seconds(20),
        id: String = #function) -> SandboxSpec {
    spec(["/bin/sh", "-c", script], stdin: stdin, limits: limits, timeout: timeout, id: id)
}

func run(_ s: SandboxSpec) async -> SandboxOutcome {
    await TestRuntime.shared.run(s) { _, _ in }
}

extension SandboxOutcome {
    var out: String { String(decoding: stdout, as: UTF8.self) }
    var err: String { String(decoding: stderr, as: UTF8.self) }
}

/// Whether the sandbox cgroup named `name` still exists (false for nil: an outcome without one is a bug the
/// callers check separately).
func cgroupExists(named name: String) -> Bool {
    TestRuntime.shared.core.cgroups.liveSandboxes().contains(name)
}

/// The outcome is delivered as soon as it is known; the cgroup goes right
/// after (once init's exit has torn the namespaces down). Waits up to 3 s.
/// The outcome names its cgroup: a prepared sandbox's is not named after the execution.
func cgroupIsRemoved(_ outcome: SandboxOutcome) async -> Bool {
    guard let name = outcome.cgroupName, !name.isEmpty else { return false }
    for _ in 0..<300 {
        if !cgroupExists(named: name) { return true }
        try? await Task.sleep(for: .milliseconds(10))
    }
    return false
}

/// Waits (up to 20 s) until the shared runtime has `count` prepared sandboxes ready.
func preparedSandboxesReady(_ count: Int = 1) async -> Bool {
    guard let pool = TestRuntime.shared.core.warmPool else { return false }
    for _ in 0..<2000 {
        if pool.counts.ready >= count { return true }
        try? await Task.sleep(for: .milliseconds(10))
    }
    return false
}

/// Host pids whose command line contains `needle`.
func hostProcesses(containing needle: String) -> [Int32] {
    let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
    return entries.compactMap { Int32($0) }.filter { pid in
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return false }
        let text = String(decoding: data.map { $0 == 0 ? 0x20 : $0 }, as: UTF8.self)
        return text.contains(needle)
    }
}

/// A value several tasks or threads read and set.
final class Shared<Value: Sendable>: Sendable {
    private let value: Mutex<Value>
    init(_ initial: Value) { value = Mutex(initial) }
    var current: Value { value.withLock { $0 } }
    func set(_ new: Value) { value.withLock { $0 = new } }
}
