import Foundation
import Testing

@testable import Sandbox

@Suite("Running commands")
struct SandboxRuntimeTests {
    @Test func exitCodeIsReported() async {
        let o = await run(sh("exit 7"))
        #expect(o.status == .exited)
        #expect(o.exitCode == 7)
        #expect(o.signal == nil)
        #expect(o.failure == nil)
    }

    @Test func signalIsReported() async {
        let o = await run(sh("kill -TERM $$; sleep 5"))
        #expect(o.status == .signaled)
        #expect(o.signal == SIGTERM)
        #expect(o.exitCode == nil)
    }

    @Test func stdinIsFedThenClosed() async {
        let input = Array((0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        let o = await run(spec(["cat"], stdin: input, limits: SandboxLimits(outputBytes: 1 << 20)))
        #expect(o.status == .exited)
        #expect(o.exitCode == 0)
        #expect(o.stdout == input)
    }

    @Test func commandThatIgnoresStdinDoesNotBlock() async {
        let o = await run(spec(["true"], stdin: Array(repeating: 0x61, count: 4 << 20)))
        #expect(o.status == .exited)
        #expect(o.exitCode == 0)
    }

    @Test func noStdinReadsAsEmpty() async {
        let o = await run(sh("wc -c"))
        #expect(o.out.trimmingCharacters(in: .whitespacesAndNewlines) == "0")
    }

    @Test func environmentIsExactlyTheSpecs() async {
        setenv("TOOLD_TEST_SECRET", "hunter2", 1)
        let o = await run(spec(["/usr/bin/env"], env: ["PATH": "/usr/bin:/bin", "ONLY": "this"]))
        #expect(o.status == .exited)
        let lines = Set(o.out.split(separator: "\n").map(String.init))
        #expect(lines == ["PATH=/usr/bin:/bin", "ONLY=this"])
        #expect(!o.out.contains("hunter2"))
    }

    @Test func workingDirectoryIsHonoured() async {
        let o = await run(spec(["pwd"], cwd: "/tmp"))
        #expect(o.out == "/tmp\n")
        let w = await run(spec(["pwd"]))
        #expect(w.out == "/workspace\n")
    }

    @Test func missingWorkingDirectoryFailsToStart() async {
        let o = await run(spec(["pwd"], cwd: "/nonexistent"))
        #expect(o.status == .failedToStart)
        #expect(o.failure?.stage == "chdir")
        #expect(o.failure?.message == "chdir: No such file or directory")
    }

    @Test func unknownCommandFailsToStartWithExecveENOENT() async {
        let o = await run(spec(["toold-no-such-command"]))
        #expect(o.status == .failedToStart)
        #expect(o.failure?.stage == "execve")
        #expect(o.failure?.errno == ENOENT)
        #expect(o.failure?.message == "execve: No such file or directory")
        let abs = await run(spec(["/usr/bin/toold-no-such-command"]))
        #expect(abs.failure?.message == "execve: No such file or directory")
    }

    @Test func pathLookupUsesTheSandboxPath() async {
        let o = await run(spec(["sh", "-c", "echo found"], env: ["PATH": "/nonexistent:/usr/bin"]))
        #expect(o.status == .exited)
        #expect(o.out == "found\n")
    }

    @Test func outputBeyondTheLimitIsTruncatedAndEndsTheRun() async {
        let limit = 1 << 20
        let o = await run(spec(["head", "-c", "10000000", "/dev/zero"], limits: SandboxLimits(outputBytes: limit)))
        #expect(o.status == .outputLimit)
        #expect(o.stdout.count == limit)
        #expect(o.stdoutTruncated)
        #expect(!o.stderrTruncated)
        #expect(o.violations.contains("output_bytes"))
    }

    @Test func outputExactlyAtTheLimitIsNotTruncated() async {
        let o = await run(spec(["head", "-c", "4096", "/dev/zero"], limits: SandboxLimits(outputBytes: 4096)))
        #expect(o.status == .exited)
        #expect(o.stdout.count == 4096)
        #expect(!o.stdoutTruncated)
    }

    @Test func binaryOutputIsByteExact() async {
        let bytes = Array((0..<4096).map { UInt8(truncatingIfNeeded: $0) })
        let o = await run(spec(["sh", "-c", "cat; cat /dev/null >&2"], stdin: bytes))
        #expect(o.stdout == bytes)
    }

    @Test func outputStreamsInOrderAcrossStdoutAndStderr() async {
        let log = ChunkLog()
        let o = await TestRuntime.shared.run(
            sh("echo a; sleep 0.1; echo b >&2; sleep 0.1; echo c; sleep 0.1; echo d >&2"), onOutput: log.handler)
        #expect(o.status == .exited)
        let seen = log.all.map { "\($0.0.rawValue):\(String(decoding: $0.1, as: UTF8.self))" }
        #expect(seen == ["stdout:a\n", "stderr:b\n", "stdout:c\n", "stderr:d\n"])
        #expect(o.out == "a\nc\n")
        #expect(o.err == "b\nd\n")
    }

    @Test func cancellationKillsTheSandbox() async {
        let id = "cancel-\(UUID().uuidString.prefix(8))"
        // The command would run for 5 minutes: `cancelled` (not `exited`, not a hang) proves the kill. No
        // wall-clock bound: in the parallel suite, blocking tests can starve this task's scheduling for a while.
        let task = Task { await run(spec(["sleep", "300"], id: id)) }
        try? await Task.sleep(for: .milliseconds(300))
        task.cancel()
        let o = await task.value
        #expect(o.status == .cancelled)
        #expect(await cgroupIsRemoved(o))
    }

    @Test func timeoutKillsADoubleForkedChildThatIgnoresSIGTERM() async {
        let id = "timeout-\(UUID().uuidString.prefix(8))"
        let marker = "1013.\(Int.random(in: 100..<999))"
        let script = """
            trap '' TERM
            ( trap '' TERM; setsid sh -c "trap '' TERM; exec sleep \(marker)" & ) 
            exec sleep \(marker)
            """
        let o = await run(spec(["/bin/sh", "-c", script], timeout: .milliseconds(700), id: id))
        #expect(o.status == .timeout)
        #expect(o.durationMs >= 700)
        #expect(o.durationMs < 10_000)
        #expect(hostProcesses(containing: "sleep \(marker)").isEmpty)
        #expect(await cgroupIsRemoved(o))
    }

    @Test func forkBombIsHeldByThePidsLimit() async {
        let o = await run(
            sh("b() { b | b & }; b; sleep 1", limits: SandboxLimits(pids: 32), timeout: .seconds(10)))
        #expect(o.violations.contains("pids"))
        #expect(o.status != .timeout)
    }

    @Test func memoryBombIsReportedAsOOM() async {
        let o = await run(
            sh("head -c 400000000 /dev/zero | tail", limits: SandboxLimits(memoryBytes: 64 << 20), timeout: .seconds(20)))
        #expect(o.status == .oom)
        #expect(o.violations.contains("memory_bytes"))
        #expect(o.memoryPeakBytes > 32 << 20)
        #expect(o.memoryPeakBytes <= 64 << 20 + 1 << 20)
    }

    @Test func tmpIsSizeLimited() async {
        let o = await run(
            sh("head -c 3000000 /dev/zero > /tmp/big", limits: SandboxLimits(fileBytes: 100 << 20, tmpBytes: 1 << 20)))
        #expect(o.status == .exited)
        #expect(o.exitCode != 0)
        #expect(o.err.contains("No space left on device"))
        #expect(o.violations == ["tmp_bytes"], "\(o.violations)")
        // /workspace too; a command that stays below the size hits nothing.
        let w = await run(sh("head -c 3000000 /dev/zero > /workspace/big", limits: SandboxLimits(tmpBytes: 1 << 20)))
        #expect(w.exitCode != 0 && w.violations == ["tmp_bytes"], "\(w.violations)")
        let ok = await run(sh("head -c 500000 /dev/zero > /tmp/f && head -c 500000 /dev/zero > /workspace/f",
                              limits: SandboxLimits(tmpBytes: 1 << 20)))
        #expect(ok.exitCode == 0 && ok.violations.isEmpty, "\(ok.violations)")
    }

    @Test func fileSizeLimitKillsWithSIGXFSZ() async {
        let o = await run(
            sh("exec head -c 300000 /dev/zero > /tmp/big", limits: SandboxLimits(fileBytes: 100_000, tmpBytes: 10 << 20)))
        #expect(o.status == .signaled)
        #expect(o.signal == SIGXFSZ)
        #expect(o.violations.contains("file_bytes"))
    }

    @Test func cpuTimeAndDurationAreMeasured() async {
        let o = await run(sh("i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done"))
        #expect(o.status == .exited)
        #expect(o.cpuMs > 0)
        #expect(o.durationMs >= o.cpuMs / 2)
        #expect(o.memoryPeakBytes > 0)
    }

    @Test func fiftyConcurrentRunsEachGetTheirOwnOutput() async {
        let outcomes = await withTaskGroup(of: (Int, SandboxOutcome).self) { group in
            for i in 0..<50 {
                group.addTask {
                    (i, await run(sh("echo run-\(i); head -c \(i * 1000) /dev/zero | wc -c", id: "concurrent-\(i)")))
                }
            }
            var all: [(Int, SandboxOutcome)] = []
            for await result in group { all.append(result) }
            return all
        }
        #expect(outcomes.count == 50)
        for (i, o) in outcomes {
            #expect(o.status == .exited, "run \(i): \(o.status) \(o.failure?.message ?? "")")
            #expect(o.out == "run-\(i)\n\(i * 1000)\n")
        }
    }

    @Test func nothingIsLeftBehind() async {
        let id = "cleanup-\(UUID().uuidString.prefix(8))"
        let o = await run(sh("sleep 0.1 & echo done", id: id))
        #expect(o.status == .exited)
        #expect(await cgroupIsRemoved(o))
        let root = TestRuntime.stateDirectory + "/sandbox/root"
        #expect((try? FileManager.default.contentsOfDirectory(atPath: root)) == [])
        let mountinfo = (try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)) ?? ""
        #expect(!mountinfo.contains(TestRuntime.stateDirectory))
    }
}
