// WarmPool: sandboxes prepared ahead of demand. Setting a sandbox up —
// namespaces, cgroup, mount tree, credentials, seccomp — is most of what an
// execution costs; a prepared one only needs its command. One background
// thread keeps `capacity` of them ready; each is handed to exactly one
// execution (cs_warm_start), never reused, and torn down like any other.
//
// A prepared sandbox waits as its own PID 1: unprivileged, capabilities
// dropped, seccomp loaded, in its cgroup with `limits`, blocked reading its
// control socket. What a call may still choose is applied at hand-over: the
// cgroup limits (written where they differ) and RLIMIT_FSIZE (lowered by init
// itself). What it cannot — the mode (`sandbox` only) and the tmpfs size of
// /tmp and /workspace — makes a call that differs set up a sandbox on the spot.
#if canImport(Glibc)
import Glibc
#endif
import CSandbox
import Foundation
import Logging

/// One prepared sandbox; owned by the pool, then by the execution that takes it.
struct WarmSandbox: Sendable {
    var pid: pid_t
    /// Init's pidfd (the zygote's child: poll it, do not wait on it).
    var pidfd: Int32
    /// The daemon's end of the control socket.
    var control: Int32
    var cgroup: SandboxCgroup
    /// What its cgroup and tmpfs mounts were set up with.
    var limits: SandboxLimits
}

/// Why a sandbox could not be prepared (logged; calls set theirs up on the spot meanwhile).
struct WarmPoolError: Error, Sendable {
    var message: String
}

final class WarmPool: @unchecked Sendable {
    // @unchecked: all mutable state is guarded by `condition`.
    private let condition = NSCondition()
    private var ready: [WarmSandbox] = []
    private var stopped = false
    /// The refill thread has returned (or never started).
    private var finished = false
    private var hits = 0
    private var misses = 0
    let capacity: Int
    let limits: SandboxLimits
    private let cgroups: any CgroupBackend
    private let pacing: RefillPacing
    private let logger: Logger

    /// `prepare` sets one sandbox up (on the pool's thread) or says why it could not.
    init(
        capacity: Int,
        limits: SandboxLimits,
        cgroups: any CgroupBackend,
        pacing: RefillPacing,
        logger: Logger,
        prepare: @escaping @Sendable () -> Result<WarmSandbox, WarmPoolError>
    ) {
        self.capacity = capacity
        self.limits = limits
        self.cgroups = cgroups
        self.pacing = pacing
        self.logger = logger
        guard capacity > 0 else {
            finished = true
            return
        }
        let thread = Thread { [self] in
            self.refillLoop(prepare)
            condition.lock()
            finished = true
            condition.broadcast()
            condition.unlock()
        }
        thread.name = "toold-warm-pool"
        thread.stackSize = 512 << 10
        thread.start()
    }

    /// Whether a call with this mode and these limits can use a prepared sandbox.
    func fits(mode: IsolationMode, limits wanted: SandboxLimits) -> Bool {
        capacity > 0 && mode == .sandbox && wanted.tmpBytes == limits.tmpBytes
    }

    /// A prepared sandbox for a call that `fits`, or nil when none is ready (a miss). The caller reports
    /// with `taken(served:)` whether the sandbox served it.
    func take() -> WarmSandbox? {
        condition.lock()
        guard !stopped, let sandbox = ready.popLast() else {
            misses += 1
            condition.unlock()
            return nil
        }
        condition.signal()
        condition.unlock()
        // A refill waiting for the running executions may now be below half full (outside our lock: the
        // pacing object calls back into `counts`).
        pacing.poolChanged()
        return sandbox
    }

    /// Counts a taken sandbox: a hit when it ran the call's command; a miss when it had died before
    /// taking it (killed from outside, or with its zygote) and the call set one up itself.
    func taken(served: Bool) {
        condition.lock()
        defer { condition.unlock() }
        if served { hits += 1 } else { misses += 1 }
    }

    /// (ready now, calls served by a prepared sandbox, calls that found none).
    var counts: (ready: Int, hits: Int, misses: Int) {
        condition.lock()
        defer { condition.unlock() }
        return (ready.count, hits, misses)
    }

    /// The ready sandboxes' init pids (diagnostics and tests).
    var readyPIDs: [pid_t] {
        condition.lock()
        defer { condition.unlock() }
        return ready.map(\.pid)
    }

    /// Tears down every prepared sandbox and waits (up to 15 s) for the refill thread to return, so a
    /// sandbox it was preparing is gone too (it discards that one itself); the pool prepares no more.
    func stop() {
        condition.lock()
        stopped = true
        let all = ready
        ready.removeAll()
        condition.broadcast()
        condition.unlock()
        for sandbox in all { discard(sandbox) }
        let deadline = Date().addingTimeInterval(15)
        condition.lock()
        while !finished && condition.wait(until: deadline) {}
        condition.unlock()
    }

    /// Kills a prepared sandbox that will not be used and removes its cgroup.
    func discard(_ sandbox: WarmSandbox) {
        Self.discard(sandbox, cgroups: cgroups, logger: logger)
    }

    static func discard(_ sandbox: WarmSandbox, cgroups: any CgroupBackend, logger: Logger) {
        _ = cs_pidfd_send_signal(sandbox.pidfd, SIGKILL)
        close(sandbox.control)
        // Init is the zygote's child: the kernel reaps it; its exit shows on the pidfd.
        var pfd = pollfd(fd: sandbox.pidfd, events: Int16(POLLIN), revents: 0)
        _ = poll(&pfd, 1, 5000)
        close(sandbox.pidfd)
        cgroups.killAll(sandbox.cgroup)
        do {
            try cgroups.remove(sandbox.cgroup)
        } catch {
            logger.error("removing a prepared sandbox's cgroup failed", metadata: ["toold.error": "\(error)"])
        }
    }

    private func refillLoop(_ prepare: @Sendable () -> Result<WarmSandbox, WarmPoolError>) {
        var failing = false
        while true {
            condition.lock()
            while !stopped && ready.count >= capacity { condition.wait() }
            if stopped {
                condition.unlock()
                return
            }
            condition.unlock()
            pacing.waitToPrepare(capacity: capacity) { counts.ready }
            condition.lock()
            let stop = stopped
            condition.unlock()
            if stop { return }
            switch prepare() {
            case .success(let sandbox):
                condition.lock()
                let keep = !stopped
                if keep { ready.append(sandbox) }
                condition.unlock()
                if !keep { discard(sandbox) }
                if failing {
                    logger.notice("preparing sandboxes ahead of demand works again")
                    failing = false
                }
            case .failure(let failure):
                if !failing {
                    logger.error(
                        "preparing a sandbox ahead of demand failed; calls set theirs up on the spot meanwhile",
                        metadata: ["toold.error": "\(failure.message)"])
                    failing = true
                }
                Posix.sleepMs(1000)
            }
        }
    }
}

extension RuntimeCore {
    /// Sets one sandbox up ahead of demand (on the pool's thread): a cgroup with `limits`, a network
    /// namespace, the mode `sandbox` mount plan, and init through every setup step to CS_STEP_READY.
    func prepareWarm(limits: SandboxLimits) -> Result<WarmSandbox, WarmPoolError> {
        func failed(_ stage: String, _ code: Int32, _ message: String? = nil) -> Result<WarmSandbox, WarmPoolError> {
            .failure(WarmPoolError(message: message ?? "\(stage): \(errnoString(code))"))
        }
        let name = "warm-\(getpid())-\(nextSerial())"
        let cgroup: SandboxCgroup
        do {
            cgroup = try cgroups.create(name: name, limits: limits)
        } catch {
            return failed("cgroup", error.errno, "cgroup: \(error)")
        }
        var toClose: [Int32] = []
        var pidfd: Int32 = -1
        var handedOver = false
        defer {
            for fd in toClose { close(fd) }
            if !handedOver {
                if pidfd >= 0 {
                    _ = cs_pidfd_send_signal(pidfd, SIGKILL)
                    var pfd = pollfd(fd: pidfd, events: Int16(POLLIN), revents: 0)
                    _ = poll(&pfd, 1, 5000)
                    close(pidfd)
                }
                cgroups.killAll(cgroup)
                try? cgroups.remove(cgroup)
            }
        }
        var pair: [Int32] = [-1, -1]
        guard cs_seqpacket_pair(&pair) == 0 else { return failed("socketpair", errno) }
        toClose += pair
        var childControl = pair[1]
        if childControl < 3 {
            childControl = fcntl(pair[1], F_DUPFD_CLOEXEC, 3)
            guard childControl >= 0 else { return failed("fcntl", errno) }
            toClose.append(childControl)
        }
        var devnull = open("/dev/null", O_RDWR | O_CLOEXEC)
        guard devnull >= 0 else { return failed("open /dev/null", errno) }
        toClose.append(devnull)
        if devnull < 3 {
            devnull = fcntl(devnull, F_DUPFD_CLOEXEC, 3)
            guard devnull >= 0 else { return failed("fcntl", errno) }
            toClose.append(devnull)
        }
        let netns = netnsPool.take() ?? -1
        if netns >= 0 { toClose.append(netns) }

        let arena = CArena()
        let plan = MountPlan.build(
            root: rootMountPoint, etcSkeleton: etcSkeleton, host: host, hostUID: hostUID, hostGID: hostGID,
            limits: limits, mode: .sandbox)
        var config = Execution.baseConfig(core: self, arena: arena, cgroup: cgroup, plan: plan, limits: limits)
        config.stdin_fd = devnull
        config.stdout_fd = devnull
        config.stderr_fd = devnull
        config.report_fd = childControl
        config.netns_fd = netns
        config.new_netns = 1
        // The ceiling each call lowers RLIMIT_FSIZE from.
        config.rlimit_fsize = UInt64.max
        config.exec_paths = UnsafePointer(arena.array([UnsafePointer<CChar>?]()))
        config.exec_path_count = 0
        config.argv = UnsafePointer(arena.stringArray([]))
        config.envp = UnsafePointer(arena.stringArray([]))
        config.cwd = UnsafePointer(arena.string("/"))
        config.warm = 1
        var placed: Int32 = 0
        guard let zygote else { return failed("zygote", ENOTCONN) }
        let pid = zygote.spawn(&config, pidfd: &pidfd, placed: &placed)
        if pid > 0 { notePlacement(placed != 0, wanted: config.cgroup_dir != nil) }
        withExtendedLifetime(arena) {}
        guard pid > 0 else {
            pidfd = -1
            if Zygote.isGone(pid) || pid == -EOWNERDEAD { return failed("zygote", -pid, "zygote: none runs now (it died; another is started a second or more later)") }
            return failed("clone", -pid)
        }
        // Init has its copies of the placeholders and the control socket's other end.
        close(childControl)
        toClose.removeAll { $0 == childControl || $0 == pair[1] }
        if pair[1] != childControl { close(pair[1]) }

        // Setup takes milliseconds; a sandbox that cannot finish it in 10 s is broken.
        var pfd = pollfd(fd: pair[0], events: Int16(POLLIN), revents: 0)
        guard poll(&pfd, 1, 10_000) == 1 else { return failed("prepare", ETIMEDOUT) }
        var record = cs_report()
        let n = read(pair[0], &record, MemoryLayout<cs_report>.size)
        guard n == MemoryLayout<cs_report>.size else { return failed("prepare", n < 0 ? errno : EPIPE) }
        guard record.step == Int32(CS_STEP_READY.rawValue) else {
            let step = String(cString: cs_step_name(record.step))
            if record.step == Int32(CS_STEP_MOUNT.rawValue), record.detail >= 0, Int(record.detail) < plan.count {
                return failed("mount", record.value, "mount \(plan[Int(record.detail)].insidePath): \(errnoString(record.value))")
            }
            return failed(step, record.value)
        }
        handedOver = true
        toClose.removeAll { $0 == pair[0] }
        return .success(WarmSandbox(pid: pid, pidfd: pidfd, control: pair[0], cgroup: cgroup, limits: limits))
    }
}
