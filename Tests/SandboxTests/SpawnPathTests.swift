import CSandbox
import Foundation
import Logging
import Testing

@testable import Sandbox

@Suite("Spawn paths")
struct SpawnPathTests {
    @Test func theSharedRuntimeClonesThroughTheZygote() {
        #expect(TestRuntime.shared.core.zygote?.status.pid ?? 0 > 0)
    }

    @Test func largeArgvAndEnvironmentCrossTheZygoteIntact() async {
        // Well over one 64 KiB record of the zygote protocol (each string
        // stays under the kernel's 128 KiB MAX_ARG_STRLEN).
        let big = String(repeating: "x", count: 100_000)
        let args = (0..<3000).map { "arg\($0)" }
        let o = await run(spec(["/bin/sh", "-c", "echo $#; printf %s \"$BIG$BIG2\" | wc -c; eval echo \\${$#}", "sh"] + args,
                               env: ["PATH": "/usr/bin:/bin", "BIG": big, "BIG2": big]))
        #expect(o.status == .exited, "\(o.failure?.message ?? "") \(o.failure?.stage ?? "")")
        #expect(o.out == "3000\n200000\narg2999\n")
    }

    /// An executable that does not answer with this build's hello (here /bin/true; in life a zygote of
    /// another build after an upgrade) is refused, and reaped: no zombie of it stays behind.
    @Test func aZygoteWithoutThisBuildsHelloIsRefusedAndReaped() {
        var socket: Int32 = -1
        var pid: pid_t = 0
        let r = cs_zygote_start("/bin/true", &socket, &pid)
        #expect(r == -EPROTO && socket == -1)
        let zombies = ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).filter { entry in
            let stat = (try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8)) ?? ""
            let fields = stat.split(separator: ")").last?.split(separator: " ") ?? []
            return stat.contains("(true)") && fields.count > 1 && fields[0] == "Z" && fields[1] == Substring("\(getpid())")
        }
        #expect(zombies.isEmpty, "\(zombies)")
    }

    /// A stand-in zygote (Python, with this build's hello) that dies at a chosen moment: `before` the
    /// request, or `after` reading all of it (marking `mark` with the body's size), without answering.
    /// Only its first start says hello: a restart (due after a second — a loaded machine gets there)
    /// fails, so every later spawn clones from the daemon instead of meeting another stand-in.
    static func dyingZygote(in dir: String, when moment: String, mark: String) throws -> String {
        let path = dir + "/zygote-dies-\(moment)"
        let script = """
            #!/usr/bin/python3
            import os, socket, struct
            if os.path.exists("\(path).started"):
                os._exit(1)
            open("\(path).started", "w").close()
            s = socket.socket(fileno=3)
            s.send(struct.pack("<Q", \(cs_zygote_hello())))
            if "\(moment)" == "after":
                head, fds, _, _ = socket.recv_fds(s, 16, 8)
                size = struct.unpack("<Qii", head)[0]
                got = 0
                while got < size:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    got += len(chunk)
                open("\(mark)", "w").write(str(size))
            os._exit(0)
            """
        try script.write(toFile: path, atomically: true, encoding: .utf8)
        chmod(path, 0o755)
        return path
    }

    static func scratch(_ tag: String) throws -> String {
        let dir = "/tmp/toold-test-\(tag)-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    func runtime(zygote: String, _ name: String) throws -> SandboxRuntime {
        TestRuntime.ensureSandboxUser()
        var logger = Logger(label: "toold.sandbox.tests.dying-zygote")
        logger.logLevel = .critical
        var configuration = SandboxConfiguration(
            stateDirectory: "/tmp/toold-sandbox-tests-\(name)", netnsPoolSize: 0, warmPoolSize: 0)
        configuration.zygoteExecutable = zygote
        return try SandboxRuntime(configuration: configuration, logger: logger)
    }

    /// A zygote that dies after it had the whole request may have cloned the sandbox — which shares the
    /// request's pipes and cgroup — just before: that spawn fails instead of being retried, so a command
    /// never runs twice. (The stand-in clones nothing: a retry would succeed, which is what this catches.)
    @Test func aZygoteThatDiesHoldingTheRequestIsNotRetried() async throws {
        let dir = try Self.scratch("dying-zygote-after")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let mark = dir + "/had-request"
        let runtime = try runtime(zygote: try Self.dyingZygote(in: dir, when: "after", mark: mark), "zygote-after")
        defer { runtime.shutdown() }
        let first = try #require(runtime.core.zygote).status.pid
        let o = await runtime.run(SandboxSpec(executionID: "dying-after", argv: ["/bin/sh", "-c", "echo ran"])) { _, _ in }
        #expect(FileManager.default.fileExists(atPath: mark), "the stand-in never read the request")
        #expect(o.status == .failedToStart && o.failure?.stage == "zygote" && o.failure?.errno == EOWNERDEAD, "\(o)")
        #expect(o.failure?.message.contains("not retried") == true, "\(o.failure?.message ?? "")")
        #expect(o.stdout.isEmpty)
        #expect(!FileManager.default.fileExists(atPath: "/proc/\(first)"), "the dead zygote was not reaped")
    }

    /// One that is gone before it had the request never cloned anything: that spawn is retried (here
    /// cloned from the daemon, a restart not being due yet) and the call runs.
    @Test func aZygoteGoneBeforeTheRequestIsRetried() async throws {
        let dir = try Self.scratch("dying-zygote-before")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let runtime = try runtime(zygote: try Self.dyingZygote(in: dir, when: "before", mark: ""), "zygote-before")
        defer { runtime.shutdown() }
        let zygote = try #require(runtime.core.zygote)
        let first = zygote.status.pid
        // Dead (a zombie of ours until the spawn reaps it) before the call.
        for _ in 0..<500 where !((try? String(contentsOfFile: "/proc/\(first)/stat", encoding: .utf8)) ?? "").contains(") Z") {
            try await Task.sleep(for: .milliseconds(10))
        }
        let o = await runtime.run(SandboxSpec(executionID: "dying-before", argv: ["/bin/sh", "-c", "echo ran"])) { _, _ in }
        #expect(o.status == .exited && o.stdout == Array("ran\n".utf8), "\(o)")
        #expect(!FileManager.default.fileExists(atPath: "/proc/\(first)"), "the dead zygote was not reaped")
    }

    @Test func directCloneWorksWithoutTheZygote() async throws {
        TestRuntime.ensureSandboxUser()
        var logger = Logger(label: "toold.sandbox.tests.direct")
        logger.logLevel = .warning
        let runtime = try SandboxRuntime(
            configuration: SandboxConfiguration(stateDirectory: "/tmp/toold-sandbox-tests-direct", netnsPoolSize: 0,
                                                useZygote: false),
            logger: logger
        )
        defer { runtime.shutdown() }
        #expect(runtime.core.zygote == nil)
        let o = await runtime.run(SandboxSpec(executionID: "direct", argv: ["/bin/sh", "-c", "echo hi; exit 3"])) { _, _ in }
        #expect(o.status == .exited)
        #expect(o.exitCode == 3)
        #expect(o.stdout == Array("hi\n".utf8))
        let t = await runtime.run(SandboxSpec(executionID: "direct-timeout", argv: ["sleep", "30"], timeout: .milliseconds(200))) { _, _ in }
        #expect(t.status == .timeout)
    }
}
