import Foundation
import Testing
import ToolClient
import ToolProtocol

/// toold as systemd runs it: socket-activated by the real `systemd-socket-activate`, reporting its
/// state to a NOTIFY_SOCKET this test owns (READY, RELOADING, STOPPING, WATCHDOG, STATUS).
@Suite struct SocketActivationTests {
    @Test func notifyLifecycleUnderSocketActivation() throws {
        let dir = try TempDir("activate")
        defer { dir.remove() }
        let notify = try NotifyListener(path: dir.path + "/notify.sock")
        defer { notify.close() }
        let socketPath = dir.path + "/toold.sock"
        let config = dir.path + "/toold.json"
        try #"{"log_level": "info"}"#.write(toFile: config, atomically: true, encoding: .utf8)
        let activator = Process()
        activator.executableURL = URL(fileURLWithPath: "/usr/bin/systemd-socket-activate")
        activator.arguments = [
            "-l", socketPath, "-E", "NOTIFY_SOCKET=\(notify.path)", "-E", "WATCHDOG_USEC=400000",
            Binaries.toold, "--config", config, "--state-dir", dir.path + "/state",
        ]
        let log = dir.url.appendingPathComponent("log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        activator.standardOutput = try FileHandle(forWritingTo: log)
        activator.standardError = activator.standardOutput
        try activator.run()
        defer { if activator.isRunning { kill(activator.processIdentifier, SIGKILL) } }

        // The activator execs toold on the first connection, passing the listening socket as fd 3.
        var client: ToolClient?
        for _ in 0..<200 where client == nil {
            client = try? ToolClient(socketPath: socketPath)
            if client == nil { usleep(20_000) }
        }
        let status = try #require(client).call(RPCMethod.daemonStatus)
        // systemd-socket-activate execs toold in its own process: the daemon's pid is the activator's.
        #expect(status["pid"]?.int64Value == Int64(activator.processIdentifier))
        let ready = try notify.waitFor("READY=1")
        #expect(ready.contains("STATUS=Serving on socket-activated"), "\(ready)")
        _ = try notify.waitFor("WATCHDOG=1")

        kill(activator.processIdentifier, SIGHUP)
        _ = try notify.waitFor("RELOADING=1")
        let reloaded = try notify.waitFor("READY=1")
        #expect(reloaded.contains("configuration reloaded"))
        #expect(try ToolClient(socketPath: socketPath).call(RPCMethod.daemonStatus)["version"] != nil)

        // A broken config on reload keeps the old one in force and says so.
        try #"{"log_level": "loud"}"#.write(toFile: config, atomically: true, encoding: .utf8)
        kill(activator.processIdentifier, SIGHUP)
        _ = try notify.waitFor("RELOADING=1")
        let failed = try notify.waitFor("READY=1")
        #expect(failed.contains("reload failed") && failed.contains("log_level"))
        #expect(try ToolClient(socketPath: socketPath).call(RPCMethod.daemonStatus)["version"] != nil)

        kill(activator.processIdentifier, SIGTERM)
        let stopping = try notify.waitFor("STOPPING=1")
        // The stop may outlast the unit's TimeoutStopSec: the default 10 s grace + 60 s for the rest.
        #expect(stopping.contains("EXTEND_TIMEOUT_USEC=70000000"), "\(stopping)")
        activator.waitUntilExit()
        #expect(activator.terminationReason == .exit && activator.terminationStatus == 0,
                "\((try? String(contentsOf: log, encoding: .utf8)) ?? "")")
    }

    @Test func gracefulStopLetsAnExecutionInFlightFinish() throws {
        let daemon = try TestDaemon(["--shutdown-grace-ms", "10000"])
        let c = try daemon.client()
        var started = false
        c.onNotification = { if $0.method == RPCMethod.execStarted { started = true } }
        let id = try c.send(RPCMethod.exec, params: ["argv": ["sh", "-c", "sleep 1; echo done"], "stream": true])
        while !started { _ = try c.call(RPCMethod.daemonStatus) }
        daemon.signal(SIGTERM)
        // The execution already running gets its grace period and completes normally.
        let result = try c.wait(for: id)
        #expect(result["status"] == "exited" && result["stdout"] == "done\n")
        #expect(daemon.stop() == 0)
    }

    @Test func pastTheGracePeriodExecutionsAreCancelled() throws {
        let daemon = try TestDaemon(["--shutdown-grace-ms", "300"])
        let c = try daemon.client()
        var started = false
        c.onNotification = { if $0.method == RPCMethod.execStarted { started = true } }
        let id = try c.send(RPCMethod.exec, params: ["argv": ["sleep", "60"], "stream": true])
        while !started { _ = try c.call(RPCMethod.daemonStatus) }
        // The daemon's sandbox cgroups: present now (the running sleep, the prepared sandboxes), all gone
        // after the stop — a parent left behind is never found again once the state directory is gone.
        let parent = RecordsSandboxCgroups.parentName(stateDirectory: daemon.stateDirectory)
        func parents() throws -> String {
            try runProgram("/usr/bin/find", ["/sys/fs/cgroup", "-maxdepth", "6", "-type", "d", "-name", parent]).stdout
        }
        #expect(try !parents().isEmpty)
        daemon.signal(SIGTERM)
        let result = try c.wait(for: id)
        #expect(result["status"] == "cancelled")
        #expect(daemon.stop() == 0)
        let left = try parents()
        #expect(left.isEmpty, "left behind: \(left)")
    }
}

/// A NOTIFY_SOCKET: an AF_UNIX datagram socket whose messages the test reads.
final class NotifyListener {
    let path: String
    let fd: Int32
    private var seen: [String] = []

    init(path: String) throws {
        self.path = path
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: path.utf8)
            raw[path.utf8.count] = 0
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0 else { throw TestFailure("cannot bind \(path)") }
    }

    /// Waits (up to 15 s) for a message containing `line` as one of its lines; returns the whole message.
    /// Messages before it are consumed, so successive waits observe order.
    func waitFor(_ line: String) throws -> String {
        let deadline = Date().addingTimeInterval(15)
        var buffer = [UInt8](repeating: 0, count: 4096)
        while Date() < deadline {
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&pfd, 1, 100) > 0 else { continue }
            let n = recv(fd, &buffer, buffer.count, 0)
            guard n > 0 else { continue }
            let message = String(decoding: buffer[0..<n], as: UTF8.self)
            seen.append(message)
            if message.split(separator: "\n").contains(Substring(line)) { return message }
        }
        throw TestFailure("no \(line) on NOTIFY_SOCKET within 15 s; saw: \(seen)")
    }

    /// The messages that have arrived and were not consumed yet (does not wait).
    func drain() -> [String] {
        var buffer = [UInt8](repeating: 0, count: 4096)
        var messages: [String] = []
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        while poll(&pfd, 1, 0) > 0 {
            let n = recv(fd, &buffer, buffer.count, 0)
            guard n > 0 else { break }
            messages.append(String(decoding: buffer[0..<n], as: UTF8.self))
        }
        seen += messages
        return messages
    }

    func close() {
        Glibc.close(fd)
        unlink(path)
    }
}
