import Foundation
import Logging
import Testing

@testable import Sandbox

/// Sandboxes prepared ahead of demand (Sources/Sandbox/WarmPool.swift): a call that fits takes one, gets the
/// same confinement as a sandbox set up on the spot, its own limits, and a sandbox no other call ever used.
/// Own runtimes (own state directories), so no other suite takes their prepared sandboxes.
@Suite(.serialized) struct WarmPoolTests {
    static let runtime: SandboxRuntime = makeRuntime("/tmp/toold-sandbox-tests-warm", poolSize: 2)

    static func makeRuntime(_ stateDirectory: String, poolSize: Int, refillWaitMs: Int = 10) -> SandboxRuntime {
        TestRuntime.ensureSandboxUser()
        var logger = Logger(label: "toold.sandbox.tests.warm")
        logger.logLevel = .warning
        do {
            return try SandboxRuntime(
                configuration: SandboxConfiguration(
                    stateDirectory: stateDirectory, netnsPoolSize: 2, warmPoolSize: poolSize,
                    warmLimits: SandboxLimits(), refillWaitMs: refillWaitMs),
                logger: logger)
        } catch {
            fatalError("SandboxRuntime: \(error)")
        }
    }

    func ready(_ runtime: SandboxRuntime = runtime, _ count: Int = 1) async -> Bool {
        for _ in 0..<2000 {
            if (runtime.core.warmPool?.counts.ready ?? 0) >= count { return true }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return false
    }

    func run(_ spec: SandboxSpec) async -> SandboxOutcome {
        await Self.runtime.run(spec) { _, _ in }
    }

    /// What a command can see of its own confinement.
    static let probe = """
        id -u; id -g; hostname; grep -E '^(Seccomp|NoNewPrivs|CapEff|CapBnd|CapPrm):' /proc/self/status
        ls -A /; ls -A /dev; cat /proc/self/uid_map; echo pid $$; ulimit -f; df -k /tmp | tail -1 | tr -s ' ' | cut -d' ' -f2
        """

    @Test func aPreparedSandboxIsConfinedExactlyLikeOneSetUpOnTheSpot() async {
        #expect(await ready())
        let prepared = await run(sh(Self.probe))
        #expect(prepared.status == .exited, "\(prepared.failure?.message ?? prepared.err)")
        #expect(prepared.prepared)
        // A tmp size other than the prepared one: set up on the spot. Same size reported by df below.
        var other = SandboxLimits()
        other.tmpBytes = SandboxLimits().tmpBytes + 4096
        let cold = await run(sh(Self.probe.replacingOccurrences(of: "; df -k /tmp | tail -1 | tr -s ' ' | cut -d' ' -f2", with: ""), limits: other))
        #expect(cold.status == .exited)
        #expect(!cold.prepared)
        let lines = prepared.out.split(separator: "\n").map(String.init)
        #expect(Array(lines.dropLast()) == cold.out.split(separator: "\n").map(String.init))
        #expect(lines.prefix(3) == ["1000", "1000", "sandbox"])
        #expect(prepared.out.contains("Seccomp:\t2"))
        #expect(prepared.out.contains("NoNewPrivs:\t1"))
        #expect(prepared.out.contains("CapEff:\t0000000000000000"))
        #expect(prepared.out.contains("CapBnd:\t0000000000000000"))
        #expect(prepared.out.contains("pid 2\n"), "the command is the second process of its PID namespace")
        // ulimit -f (512-byte blocks) is the call's file_bytes, lowered from the prepared ceiling.
        #expect(lines.contains(String(SandboxLimits().fileBytes / 512)))
        #expect(lines.last == String(SandboxLimits().tmpBytes / 1024))
    }

    @Test func noCommandSeesWhatAnEarlierOneLeft() async {
        #expect(await ready(Self.runtime, 2))
        let first = await run(sh("echo secret > /tmp/left; echo secret > /workspace/left; sleep 300 & echo $$"))
        #expect(first.prepared && first.status == .exited)
        #expect(await ready())
        let second = await run(sh("cat /tmp/left /workspace/left 2>&1; pgrep -c sleep; true"))
        #expect(second.prepared && second.status == .exited)
        #expect(second.out.contains("No such file"))
        #expect(!second.out.contains("secret"))
        #expect(second.out.hasSuffix("0\n"), "the first command's background sleep is not there: \(second.out)")
        #expect(first.cgroupName != second.cgroupName)
        #expect(await cgroupIsRemovedHere(first))
    }

    @Test func theCallsLimitsApplyToAPreparedSandbox() async {
        #expect(await ready())
        var memory = SandboxLimits()
        memory.memoryBytes = 64 << 20
        let oom = await run(sh("head -c 400000000 /dev/zero | tail", limits: memory))
        #expect(oom.prepared)
        #expect(oom.status == .oom)
        #expect(oom.memoryPeakBytes <= 64 << 20 + 1 << 20)

        #expect(await ready())
        var pids = SandboxLimits()
        pids.pids = 16
        let bomb = await run(sh("b() { b | b & }; b; sleep 1", limits: pids, timeout: .seconds(10)))
        #expect(bomb.prepared)
        #expect(bomb.violations.contains("pids"))

        #expect(await ready())
        var files = SandboxLimits()
        files.fileBytes = 100_000
        let big = await run(sh("exec head -c 300000 /dev/zero > /tmp/big", limits: files))
        #expect(big.prepared)
        #expect(big.status == .signaled && big.signal == SIGXFSZ)

        // And back: the next prepared sandbox has the defaults again, not the last call's limits.
        #expect(await ready())
        let normal = await run(sh("head -c 100000000 /dev/zero | tail -c 1 | wc -c"))
        #expect(normal.prepared && normal.status == .exited && normal.out == "1\n")
    }

    @Test func callsThatDoNotFitSetUpTheirOwn() async {
        #expect(await ready())
        var small = SandboxLimits()
        small.tmpBytes = 1 << 20
        let tmp = await run(sh("df -k /tmp | tail -1", limits: small))
        #expect(!tmp.prepared && tmp.status == .exited)
        var network = sh("true")
        network.mode = .network
        let net = await run(network)
        #expect(!net.prepared && net.status == .exited)
    }

    @Test func aPreparedSandboxKilledBeforeUseIsNotUsed() async {
        #expect(await ready(Self.runtime, 2))
        let pool = Self.runtime.core.warmPool!
        let victims = pool.readyPIDs
        for pid in victims { kill(pid, SIGKILL) }
        // Gone (the zygote's children are reaped by the kernel) before the call comes.
        for _ in 0..<500 where victims.contains(where: { kill($0, 0) == 0 }) {
            try? await Task.sleep(for: .milliseconds(10))
        }
        let before = pool.counts
        let o = await run(sh("echo still works"))
        #expect(o.status == .exited && o.out == "still works\n", "\(o.failure?.message ?? o.err)")
        #expect(await cgroupIsRemovedHere(o))
        // Set up on the spot, and counted so: a dead prepared sandbox is a miss, not a hit.
        let after = pool.counts
        #expect(!o.prepared && after.hits == before.hits && after.misses == before.misses + 1, "\(before) → \(after)")
    }

    @Test func shutdownTearsDownThePreparedSandboxes() async {
        let runtime = Self.makeRuntime("/tmp/toold-sandbox-tests-warm-stop", poolSize: 3)
        #expect(await ready(runtime, 3))
        let pids = runtime.core.warmPool!.readyPIDs
        #expect(runtime.core.cgroups.liveSandboxes().count == 3)
        runtime.shutdown()
        #expect(runtime.core.cgroups.liveSandboxes().isEmpty)
        // Killed and reaped by the kernel (the zygote ignores SIGCHLD). The last moments of an exit (after
        // its cgroup let go, before /proc forgets it) can still show the process: give that a moment.
        func alive(_ pid: pid_t) -> Bool {
            let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
            return status.contains("toold-sandbox") && !status.contains("State:\tZ") && !status.contains("State:\tX")
        }
        for _ in 0..<500 where pids.contains(where: alive) {
            try? await Task.sleep(for: .milliseconds(10))
        }
        for pid in pids {
            #expect(!alive(pid), "prepared sandbox \(pid) survived the shutdown")
        }
    }

    /// A zygote that dies (here SIGKILL; in life the OOM killer or an operator) takes its prepared
    /// sandboxes with it. Calls keep working meanwhile (a dead prepared sandbox is not used; the call
    /// clones from the daemon when no zygote runs), the next spawn starts a new zygote (at most once a
    /// second), the old one is reaped, and the pool serves calls again from the new one.
    @Test func aDeadZygoteIsReplacedAndThePoolServesAgain() async throws {
        let runtime = Self.makeRuntime("/tmp/toold-sandbox-tests-zygote", poolSize: 2)
        defer { runtime.shutdown() }
        let zygote = try #require(runtime.core.zygote)
        #expect(await ready(runtime, 2))
        let old = zygote.status.pid
        #expect(old > 0 && zygote.status.restarts == 0)
        let prepared = runtime.core.warmPool?.readyPIDs ?? []
        kill(old, SIGKILL)
        // Its death kills its sandboxes (PR_SET_PDEATHSIG) — a call in flight then dies too; wait for it,
        // so the first call below meets the aftermath, not the moment.
        func alive(_ pid: pid_t) -> Bool {
            let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
            return !status.isEmpty && !status.contains("State:\tZ") && !status.contains("State:\tX")
        }
        for _ in 0..<500 where ([old] + prepared).contains(where: alive) {
            try await Task.sleep(for: .milliseconds(10))
        }
        func runs(_ id: String) async -> SandboxOutcome {
            await runtime.run(SandboxSpec(executionID: id, argv: ["/bin/sh", "-c", "echo ok"])) { _, _ in }
        }
        let right = await runs("zygote-killed")
        #expect(right.status == .exited && right.stdout == Array("ok\n".utf8), "\(right.failure?.message ?? "")")
        try await Task.sleep(for: .milliseconds(1100))
        let after = await runs("zygote-restarted")
        #expect(after.status == .exited && after.stdout == Array("ok\n".utf8), "\(after.failure?.message ?? "")")
        let now = zygote.status
        #expect(now.pid > 0 && now.pid != old && now.restarts >= 1, "\(now)")
        #expect(kill(now.pid, 0) == 0)
        // The old zygote was reaped, not left a zombie of the daemon.
        #expect(!FileManager.default.fileExists(atPath: "/proc/\(old)"))
        // Prepared sandboxes again, from the new zygote, and a call uses one.
        let pool = try #require(runtime.core.warmPool)
        var fresh = false
        for _ in 0..<500 where !fresh {
            fresh = pool.readyPIDs.contains { pid in
                let stat = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
                return stat.split(separator: ")").last?.split(separator: " ").dropFirst(1).first == Substring("\(now.pid)")
            }
            if !fresh { try await Task.sleep(for: .milliseconds(10)) }
        }
        #expect(fresh, "no prepared sandbox of the new zygote \(now.pid)")
        let hits = pool.counts.hits
        var served = false
        for i in 0..<4 where !served {
            #expect(await runs("zygote-pool-\(i)").status == .exited)
            served = pool.counts.hits > hits
        }
        #expect(served)
    }

    /// Preparing the next sandbox waits until the execution that took one is over (RefillPacing.swift): on a
    /// machine with a core to spare it would otherwise run beside it, in system calls that are not
    /// preempted, on the core the execution's next step waits for.
    @Test func aTakenSandboxIsReplacedOnceTheExecutionIsOver() async throws {
        let runtime = Self.makeRuntime("/tmp/toold-sandbox-tests-paced", poolSize: 2, refillWaitMs: 600_000)
        defer { runtime.shutdown() }
        #expect(await ready(runtime, 2))
        let pool = try #require(runtime.core.warmPool)
        let pacing = runtime.core.refillPacing
        let call = Task {
            await runtime.run(SandboxSpec(executionID: "paced", argv: ["/bin/sleep", "60"])) { _, _ in }
        }
        // The pool has seen the take and waits for the execution.
        var waiting = false
        for _ in 0..<1500 where !waiting {
            waiting = pacing.counts.waiters > 0
            if !waiting { try await Task.sleep(for: .milliseconds(10)) }
        }
        #expect(waiting, "the pool did not wait for the running execution")
        #expect(pool.counts.ready == 1)
        call.cancel()
        let outcome = await call.value
        #expect(outcome.prepared && outcome.status == .cancelled)
        // The execution over, the pool prepares again without waiting out its bound.
        #expect(await ready(runtime, 2))
    }

    /// The wait has a bound: a long command does not leave the pool short while it runs.
    @Test func aLongCommandDoesNotKeepThePoolShort() async throws {
        let runtime = Self.makeRuntime("/tmp/toold-sandbox-tests-paced-long", poolSize: 2, refillWaitMs: 50)
        defer { runtime.shutdown() }
        #expect(await ready(runtime, 2))
        let pool = try #require(runtime.core.warmPool)
        let finished = Shared(false)
        let call = Task {
            let outcome = await runtime.run(SandboxSpec(executionID: "long", argv: ["/bin/sleep", "20"])) { _, _ in }
            finished.set(true)
            return outcome
        }
        // Refilled: two ready again, one of them prepared after the call took its sandbox.
        let before = Set(pool.readyPIDs)
        var refilled = false
        for _ in 0..<1500 where !refilled && !finished.current {
            let now = pool.readyPIDs
            refilled = now.count == 2 && !Set(now).isSubset(of: before)
            if !refilled { try await Task.sleep(for: .milliseconds(10)) }
        }
        #expect(refilled, "the pool stayed short while the command ran")
        #expect(!finished.current)
        call.cancel()
        #expect(await call.value.status == .cancelled)
    }

    func cgroupIsRemovedHere(_ outcome: SandboxOutcome) async -> Bool {
        guard let name = outcome.cgroupName, !name.isEmpty else { return false }
        for _ in 0..<300 {
            if !Self.runtime.core.cgroups.liveSandboxes().contains(name) { return true }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return false
    }
}
