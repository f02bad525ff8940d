import Foundation
import Testing
import ToolClient
import ToolProtocol

/// The real toold on a directory the test owns, so it can be killed with SIGKILL and started again on the
/// same state (TestDaemon removes its directory when it stops), or given a state directory the test mounted.
/// Layout under `root`: `toold.sock`, `policy.json`, `state/` (`state/toold.db`), one log per start.
final class RecordsDaemon: @unchecked Sendable {
    // @unchecked: the Process is only touched by the test that owns this daemon.
    let root: URL
    let process = Process()
    let logURL: URL
    let arguments: [String]

    var socketPath: String { Self.socketPath(root) }
    var stateDirectory: String { Self.stateDirectory(root) }
    var databasePath: String { stateDirectory + "/toold.db" }

    static func socketPath(_ root: URL) -> String { root.appendingPathComponent("toold.sock").path }
    static func stateDirectory(_ root: URL) -> String { root.appendingPathComponent("state").path }

    /// Starts toold on `root` and waits until it serves. `policy` is written to `root/policy.json` when
    /// given (else the file must exist: a restart keeps the previous one).
    init(root: URL, policy: String? = nil, extraArguments: [String] = [], logName: String = "toold.log") throws {
        self.root = root
        let policyURL = root.appendingPathComponent("policy.json")
        if let policy { try policy.write(to: policyURL, atomically: true, encoding: .utf8) }
        logURL = root.appendingPathComponent(logName)
        arguments =
            [
                "--socket", Self.socketPath(root), "--state-dir", Self.stateDirectory(root), "--log-level", "debug",
                "--policy", policyURL.path,
            ] + extraArguments
        _ = FileManager.default.createFile(atPath: logURL.path, contents: nil)
        let log = try FileHandle(forWritingTo: logURL)
        process.executableURL = URL(fileURLWithPath: Binaries.toold)
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        env.removeValue(forKey: "NOTIFY_SOCKET")
        env.removeValue(forKey: "JOURNAL_STREAM")
        process.environment = env
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = log
        process.standardError = log
        try process.run()
        try log.close()
        let deadline = Date().addingTimeInterval(20)
        while true {
            if !process.isRunning {
                throw TestFailure("toold exited with \(process.terminationStatus) before serving:\n\(self.log)")
            }
            if let client = try? ToolClient(socketPath: socketPath) {
                client.close()
                return
            }
            if Date() > deadline { throw TestFailure("toold did not serve within 20 s:\n\(self.log)") }
            usleep(20_000)
        }
    }

    var log: String { (try? String(contentsOf: logURL, encoding: .utf8)) ?? "" }
    var pid: pid_t { process.processIdentifier }

    func client() throws -> ToolClient { try ToolClient(socketPath: socketPath) }

    /// SIGKILL: no handler runs, nothing is flushed or cleaned up.
    func killHard() {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    /// SIGTERM, then waits (SIGKILL after 20 s); the directory stays.
    func stop() {
        if process.isRunning {
            kill(process.processIdentifier, SIGTERM)
            let deadline = Date().addingTimeInterval(20)
            while process.isRunning && Date() < deadline { usleep(10_000) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        }
        process.waitUntilExit()
    }

    deinit { stop() }
}

/// The `sqlite3` shell on a record database: `sql`'s output, trimmed. Fails the test when sqlite3 does.
func recordsSQL(_ database: String, _ sql: String, readOnly: Bool = true) throws -> String {
    let out = try runProgram("/usr/bin/sqlite3", (readOnly ? ["-readonly"] : []) + [database, sql])
    guard out.status == 0 else { throw TestFailure("sqlite3 \(database) \(sql): \(out.status) \(out.stderr)") }
    return out.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
}

/// Every history entry an admin sees (all pages), by execution id.
func recordsAllExecutions(_ client: ToolClient, params: [String: JSONValue] = [:]) throws -> [String: JSONValue] {
    var rows: [String: JSONValue] = [:]
    var cursor: JSONValue? = nil
    repeat {
        var p = params
        p["limit"] = 1000
        if let cursor { p["cursor"] = cursor }
        let page = try client.call(RPCMethod.executionsList, params: .object(p))
        for row in page["executions"]?.arrayValue ?? [] {
            if let id = row["execution_id"]?.stringValue { rows[id] = row }
        }
        cursor = page["next_cursor"]
    } while cursor != nil && cursor != .null
    return rows
}

/// Where the sandbox cgroups of the daemon with state directory `stateDirectory` live: on cgroup v1, one
/// `toold-sandboxes-<FNV-1a of "<state>/sandbox">` directory per hierarchy (Sources/Sandbox/SandboxRuntime.swift,
/// `stableHash`); on v2, `<daemon's cgroup>/sandboxes` (needs the live daemon's pid).
enum RecordsSandboxCgroups {
    static func parentName(stateDirectory: String) -> String {
        let base = "/" + stateDirectory.split(separator: "/").joined(separator: "/") + "/sandbox"
        var h: UInt32 = 0x811c_9dc5
        for b in base.utf8 {
            h ^= UInt32(b)
            h = h &* 0x0100_0193
        }
        let hex = String(h, radix: 16)
        return "toold-sandboxes-" + String(repeating: "0", count: 8 - hex.count) + hex
    }

    /// The parent directories holding this daemon's sandbox cgroups.
    static func parents(stateDirectory: String, daemonPID: pid_t) throws -> [String] {
        let name = parentName(stateDirectory: stateDirectory)
        let found = try runProgram("/usr/bin/find", ["/sys/fs/cgroup", "-maxdepth", "6", "-type", "d", "-name", name])
        var dirs = found.stdout.split(separator: "\n").map(String.init)
        // cgroup v2: <own>/sandboxes, where the daemon moved itself to <own>/daemon.
        let own = (try? String(contentsOfFile: "/proc/\(daemonPID)/cgroup", encoding: .utf8)) ?? ""
        for line in own.split(separator: "\n") where line.hasPrefix("0::") {
            let path = String(line.dropFirst(3))
            if path.hasSuffix("/daemon") {
                let dir = "/sys/fs/cgroup" + path.dropLast("/daemon".count) + "/sandboxes"
                if FileManager.default.fileExists(atPath: dir) { dirs.append(dir) }
            }
        }
        return dirs
    }

    /// The sandbox cgroups (child directories) under `parents`.
    static func children(_ parents: [String]) -> [String] {
        parents.flatMap { parent in
            ((try? FileManager.default.contentsOfDirectory(atPath: parent)) ?? []).map { parent + "/" + $0 }.filter {
                var isDir: ObjCBool = false
                return FileManager.default.fileExists(atPath: $0, isDirectory: &isDir) && isDir.boolValue
            }
        }
    }

    /// Pids in the given cgroups.
    static func pids(in cgroups: [String]) -> Set<pid_t> {
        var pids = Set<pid_t>()
        for dir in cgroups {
            let text = (try? String(contentsOfFile: dir + "/cgroup.procs", encoding: .utf8)) ?? ""
            for line in text.split(separator: "\n") { if let pid = pid_t(line) { pids.insert(pid) } }
        }
        return pids
    }

    /// Live processes running as `uid` whose cgroup path mentions `marker` (and not `excluding`: a live daemon's
    /// prepared sandboxes, `warm-<daemon pid>-<n>`, Sources/Sandbox/WarmPool.swift).
    static func processes(uid: UInt32, cgroupMarker marker: String, excluding: String? = nil) -> [pid_t] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap(pid_t.init).filter { pid in
            guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
                let uidLine = status.split(separator: "\n").first(where: { $0.hasPrefix("Uid:") }),
                uidLine.split(whereSeparator: { $0 == "\t" || $0 == " " }).dropFirst().first == Substring(String(uid))
            else { return false }
            let cgroup = (try? String(contentsOfFile: "/proc/\(pid)/cgroup", encoding: .utf8)) ?? ""
            return cgroup.contains(marker) && !(excluding.map { cgroup.contains($0) } ?? false)
        }
    }
}

/// A tmpfs of `size` mounted at `path` (root only); `unmount()` removes it.
struct RecordsTmpfs {
    let path: String
    init(at path: String, size: String) throws {
        self.path = path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        let out = try runProgram("/usr/bin/mount", ["-t", "tmpfs", "-o", "size=\(size),mode=0755", "tmpfs", path])
        guard out.status == 0 else { throw TestFailure("mount tmpfs on \(path): \(out.stderr)") }
    }

    /// Fills the file system with `name` until it is full (dd stops at ENOSPC).
    func fill(_ name: String) throws {
        let out = try runProgram("/usr/bin/dd", ["if=/dev/zero", "of=\(path)/\(name)", "bs=64k"])
        guard out.stderr.contains("No space left") else { throw TestFailure("dd did not fill \(path): \(out.stderr)") }
    }

    /// Bytes still free.
    var freeBytes: UInt64 {
        var s = statvfs()
        guard statvfs(path, &s) == 0 else { return 0 }
        return UInt64(s.f_bavail) * UInt64(s.f_frsize)
    }

    func unmount() {
        if (try? runProgram("/usr/bin/umount", [path]))?.status != 0 {
            _ = try? runProgram("/usr/bin/umount", ["-l", path])
        }
    }
}
