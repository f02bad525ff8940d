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
