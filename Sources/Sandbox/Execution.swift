// Execution: one command, start to finish, on its own thread: cgroup, pipes,
// cs_spawn, then a poll loop over stdout/stderr, the report pipe, init's
// pidfd, stdin and the cancel eventfd, until the sandbox is gone; then
// accounting from the cgroup and cleanup.
#if canImport(Glibc)
import Glibc
#endif
import CSandbox
import Logging

final class Execution {
    /// How often the memory charge is looked at where the kernel can charge past the limit (v2).
    static let memoryLookMs: Int64 = 250
    /// How far past its memory limit a sandbox's charge may go before it is killed: an eighth of the limit, at
    /// least 4 MiB (the kernel's forced charges overshoot a little in ordinary use).
    static func memorySlack(_ limit: UInt64) -> UInt64 { max(4 << 20, limit / 8) }

    enum KillReason {
        /// memory: charged past the memory limit by more than the slack (v2's forced charges).
        case timeout, cancelled, outputLimit, memory
    }

    private let core: RuntimeCore
    private let spec: SandboxSpec
    private let serial: UInt64
    private let cancel: CancelSignal
    private let onOutput: @Sendable (SandboxStream, [UInt8]) -> Void
    private let logger: Logger

    init(
        core: RuntimeCore,
        spec: SandboxSpec,
        serial: UInt64,
        cancel: CancelSignal,
        onOutput: @escaping @Sendable (SandboxStream, [UInt8]) -> Void
    ) {
        self.core = core
        self.spec = spec
        self.serial = serial
        self.cancel = cancel
        self.onOutput = onOutput
        var logger = core.logger
        logger[metadataKey: "toold.execution_id"] = "\(spec.executionID)"
        self.logger = logger
    }

    private var cgroupName: String {
        let safe = spec.executionID.unicodeScalars.prefix(40).map {
            ($0.properties.isASCIIHexDigit || ($0 >= "a" && $0 <= "z") || ($0 >= "A" && $0 <= "Z") || $0 == "-"
                || $0 == "_") ? Character($0) : "_"
        }
        return "x\(serial)-" + String(safe)
    }

    private func failure(_ stage: String, _ code: Int32, _ message: String? = nil) -> SandboxOutcome {
        .failedToStart(SandboxFailure(stage: stage, errno: code, message: message ?? "\(stage): \(errnoString(code))"))
    }

    /// Runs the execution; calls `deliver` exactly once, as soon as the
    /// outcome is known, then finishes tearing the sandbox down (see `settle`).
    func run(deliver: (SandboxOutcome) -> Void) {
        // The pools wait (a little) for running executions to end before replacing what they took
        // (RefillPacing.swift).
        core.refillPacing.began()
        defer { core.refillPacing.ended() }
        let outcome = execute()
        deliver(outcome)
        settle()
    }

    private var pendingCgroup: SandboxCgroup?

    /// After delivery: wait for init to be reaped (it is already exiting:
    /// either it reported the command's exit or we SIGKILLed it), make sure
    /// the cgroup is empty, remove it. Init's exit tears down its mount
    /// namespace (an RCU grace period), which the caller need not wait for.
    private func settle() {
        if pidfd >= 0 {
            if !reaped {
                var pfd = pollfd(fd: pidfd, events: Int16(POLLIN), revents: 0)
                if poll(&pfd, 1, 5000) == 0 {
                    logger.error("sandbox init did not exit after reporting; killing it")
                    _ = cs_pidfd_send_signal(pidfd, SIGKILL)
                }
                var status: Int32 = 0
                if viaZygote {
                    _ = poll(&pfd, 1, -1)
                } else {
                    _ = cs_pidfd_wait(pidfd, 0, &status)
                }
                reaped = true
            }
            close(pidfd)
            pidfd = -1
        }
        guard let cgroup = pendingCgroup else { return }
        core.cgroups.killAll(cgroup)
        do {
            try core.cgroups.remove(cgroup)
        } catch {
            logger.error("removing a sandbox cgroup failed", metadata: ["toold.error": "\(error)"])
        }
        pendingCgroup = nil
    }

    private func execute() -> SandboxOutcome {
        // This thread takes no signals: a write to a closed stdin pipe must
        // return EPIPE, not kill the daemon with SIGPIPE.
        var all = sigset_t()
        sigfillset(&all)
        pthread_sigmask(SIG_SETMASK, &all, nil)

        guard !spec.argv.isEmpty else { return failure("argv", EINVAL, "argv: empty") }
        let controllers = core.cgroups.usableControllers
        if core.configuration.requireCgroupLimits && !(controllers.contains("memory") && controllers.contains("pids")) {
            return failure(
                "cgroup", ENOTSUP,
                "cgroup: memory and pids controllers are required but not usable (layout \(core.cgroups.layout.rawValue), usable: \(controllers.isEmpty ? "none" : controllers.joined(separator: ",")))"
            )
        }
        let t0 = Posix.monotonicNs()
        var outcome: SandboxOutcome?
        var cgroup: SandboxCgroup
        if let pool = core.warmPool, pool.fits(mode: spec.mode, limits: spec.limits), let warm = pool.take() {
            cgroup = warm.cgroup
            pendingCgroup = cgroup
            outcome = runPrepared(warm)
            pool.taken(served: outcome != nil)
            if outcome == nil {
                // It died before taking the command (killed from outside): set one up here instead.
                pendingCgroup = nil
                pool.discard(warm)
            }
        } else {
            cgroup = SandboxCgroup(name: "", directories: [])
        }
        let t1 = Posix.monotonicNs()
        if outcome == nil {
            do {
                cgroup = try core.cgroups.create(name: cgroupName, limits: spec.limits)
            } catch {
                return failure("cgroup", error.errno, "cgroup: \(error)")
            }
            pendingCgroup = cgroup
            outcome = spawnAndWait(cgroup: cgroup, warm: nil)
        }
        guard var outcome else { return failure("spawn", EIO) }
        outcome.cgroupName = cgroup.name
        let t2 = Posix.monotonicNs()
        // Accounting before anything else: the counters go with the cgroup.
        let stats = core.cgroups.stats(cgroup)
        let t3 = Posix.monotonicNs()
        if traceTimings {
            logger.notice(
                "sandbox timings",
                metadata: [
                    "toold.timings": "prepared=\(outcome.prepared) take=\((t1-t0)/1000)us run=\((t2-t1)/1000)us stats=\((t3-t2)/1000)us \(traceDetail)"
                ]
            )
        }
        if outcome.status != .failedToStart {
            classify(&outcome, stats: stats)
        }
        return outcome
    }

    /// TOOLD_SANDBOX_TRACE=1: log per-step timings of every execution (the
    /// child reports a timestamp after each setup step).
    private let traceTimings = getenv("TOOLD_SANDBOX_TRACE") != nil
    private var traceDetail = ""
    private var traceStartUs: UInt64 = 0
    // Raw result of the loop, classified afterwards with the cgroup's stats.
    private var exitStatus: Int32?
    /// From init's exit report: CS_SCRATCH_* bits of the tmpfs found full.
    private var scratchFull: Int32 = 0
    private var initStatus: Int32?
    /// Init's pidfd; owned here from the clone until `settle` closes it.
    private var pidfd: Int32 = -1
    private var reaped = false
    /// Init is the zygote's child: its exit shows on the pidfd, the kernel
    /// reaps it, and there is no wait status to collect.
    private var viaZygote = false
    private var killReason: KillReason?

    private func classify(_ outcome: inout SandboxOutcome, stats: CgroupStats) {
        outcome.cpuMs = stats.cpuMs
        outcome.memoryPeakBytes = stats.memoryPeakBytes
        var violations: [String] = []
        if stats.pidsLimitHits > 0 { violations.append("pids") }
        let oom = stats.oomKills > 0
        if let status = exitStatus {
            let exited = status & 0x7f == 0
            if exited {
                outcome.exitCode = (status >> 8) & 0xff
            } else {
                outcome.signal = status & 0x7f
            }
            if outcome.signal == SIGXFSZ { violations.append("file_bytes") }
            if scratchFull != 0 { violations.append("tmp_bytes") }
            if killReason == .outputLimit {
                outcome.status = .outputLimit
            } else if (killReason == .memory || oom) && !(exited && outcome.exitCode == 0) {
                // A command that had exited 0 when a kill for memory came (a background child still running)
                // is reported as it ended, as with the kernel's OOM kill.
                outcome.status = .oom
            } else {
                outcome.status = exited ? .exited : .signaled
            }
        } else if let killReason {
            switch killReason {
            case .timeout: outcome.status = .timeout
            case .cancelled: outcome.status = .cancelled
            case .outputLimit: outcome.status = .outputLimit
            case .memory: outcome.status = .oom
            }
        } else if oom {
            outcome.status = .oom
        } else {
            // Init itself died without reporting (killed from outside).
            outcome.status = .signaled
            outcome.signal = (initStatus ?? SIGKILL) & 0x7f
        }
        if outcome.status == .timeout { violations.append("timeout_ms") }
        if outcome.status == .oom { violations.append("memory_bytes") }
        if outcome.status == .outputLimit { violations.append("output_bytes") }
        outcome.violations = violations
    }

    /// Pipe with both ends O_CLOEXEC; the child's end moved to fd >= 3.
    private func makePipe(childReads: Bool) -> (parent: Int32, child: Int32)? {
        var fds: [Int32] = [-1, -1]
        guard cs_pipe_cloexec(&fds) == 0 else { return nil }
        var (parentEnd, childEnd) = childReads ? (fds[1], fds[0]) : (fds[0], fds[1])
        if childEnd < 3 {
            let moved = fcntl(childEnd, F_DUPFD_CLOEXEC, 3)
            close(childEnd)
            guard moved >= 0 else {
                close(parentEnd)
                return nil
            }
            childEnd = moved
        }
        if parentEnd < 3 {
            let moved = fcntl(parentEnd, F_DUPFD_CLOEXEC, 3)
            close(parentEnd)
            parentEnd = moved
        }
        _ = fcntl(parentEnd, F_SETFL, fcntl(parentEnd, F_GETFL) | O_NONBLOCK)
        return (parentEnd, childEnd)
    }

    private func execCandidates() -> [String] {
        let argv0 = spec.argv[0]
        if argv0.contains("/") { return [argv0] }
        let path = spec.environment["PATH"] ?? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        return path.split(separator: ":", omittingEmptySubsequences: false).map { dir in
            dir.isEmpty ? argv0 : (dir.hasSuffix("/") ? "\(dir)\(argv0)" : "\(dir)/\(argv0)")
        }
    }

    /// Runs the command in a prepared sandbox: its cgroup gets the call's limits, init gets the command.
    /// nil when the sandbox could not take it (it is gone); the caller discards it and sets one up.
    private func runPrepared(_ warm: WarmSandbox) -> SandboxOutcome? {
        // Killed while it waited (its exit shows on the pidfd): not usable. A kill from here on is one
        // during the run, like any sandbox's.
        var exited = pollfd(fd: warm.pidfd, events: Int16(POLLIN), revents: 0)
        if poll(&exited, 1, 0) != 0 { return nil }
        do {
            try core.cgroups.update(warm.cgroup, from: warm.limits, to: spec.limits)
        } catch {
            logger.error("setting a prepared sandbox's limits failed", metadata: ["toold.error": "\(error)"])
            return nil
        }
        // Ours from here: settle() waits for init's exit and closes the pidfd.
        pidfd = warm.pidfd
        viaZygote = true
        guard var outcome = spawnAndWait(cgroup: warm.cgroup, warm: warm) else {
            // Not handed over: the caller discards the sandbox (kills it, closes its pidfd and socket).
            pidfd = -1
            return nil
        }
        // Handed over, or a failure before the hand-over (pipes): at EOF an init still waiting exits.
        close(warm.control)
        outcome.prepared = true
        return outcome
    }

    /// The fields of a sandbox's configuration that do not depend on the command.
    static func baseConfig(
        core: RuntimeCore, arena: CArena, cgroup: SandboxCgroup, plan: [MountOp], limits: SandboxLimits
    ) -> cs_spawn_config {
        let ops = plan.map { op in
            cs_mount_op(
                kind: Int32(op.kind.rawValue),
                create: Int32(op.create.rawValue),
                flags: op.flags,
                mode: op.mode,
                source: arena.optionalString(op.source),
                target: arena.optionalString(op.target),
                data: arena.optionalString(op.data)
            )
        }
        let procs = cgroup.procsFiles.map { UnsafePointer(arena.string($0)) as UnsafePointer<CChar>? }
        let inside = core.configuration.insideUID
        var config = cs_spawn_config()
        config.cgroup_procs = UnsafePointer(arena.array(procs))
        config.cgroup_procs_count = Int32(procs.count)
        // v2: one directory, which the clone places the child in (CLONE_INTO_CGROUP).
        if core.cgroups.layout == .v2, cgroup.directories.count == 1 {
            config.cgroup_dir = UnsafePointer(arena.string(cgroup.directories[0]))
        }
        config.hostname = UnsafePointer(arena.string(core.configuration.hostname))
        config.root_dir = UnsafePointer(arena.string(core.rootMountPoint))
        config.mounts = UnsafePointer(arena.array(ops))
        config.mount_count = Int32(ops.count)
        config.host_uid = core.hostUID
        config.host_gid = core.hostGID
        config.uid_map = UnsafePointer(arena.string("\(inside) \(core.hostUID) 1\n"))
        config.gid_map = UnsafePointer(arena.string("\(inside) \(core.hostGID) 1\n"))
        config.cap_last_cap = core.capLastCap
        config.rlimit_nofile = core.configuration.maxOpenFiles
        config.rlimit_fsize = limits.fileBytes
        config.seccomp_prog = UnsafeRawPointer(core.seccomp)
        return config
    }

    /// nil only for a prepared sandbox that could not take the command.
    private func spawnAndWait(cgroup: SandboxCgroup, warm: WarmSandbox?) -> SandboxOutcome? {
        var toClose: [Int32] = []
        defer { for fd in toClose { close(fd) } }
        guard let out = makePipe(childReads: false) else { return failure("pipe2", errno) }
        toClose += [out.parent, out.child]
        guard let err = makePipe(childReads: false) else { return failure("pipe2", errno) }
        toClose += [err.parent, err.child]
        guard let report = makePipe(childReads: false) else { return failure("pipe2", errno) }
        toClose += [report.parent, report.child]
        var stdinParent: Int32 = -1
        var stdinChild: Int32
        if spec.stdin != nil {
            guard let pipe = makePipe(childReads: true) else { return failure("pipe2", errno) }
            (stdinParent, stdinChild) = pipe
            toClose += [pipe.parent, pipe.child]
        } else {
            stdinChild = open("/dev/null", O_RDONLY | O_CLOEXEC)
            guard stdinChild >= 0 else { return failure("open /dev/null", errno) }
            if stdinChild < 3 {
                let moved = fcntl(stdinChild, F_DUPFD_CLOEXEC, 3)
                close(stdinChild)
                stdinChild = moved
            }
            toClose.append(stdinChild)
        }

        let arena = CArena()
        let candidates = execCandidates()
        let env = spec.environment.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        let candidatePointers = candidates.map { UnsafePointer(arena.string($0)) as UnsafePointer<CChar>? }
        let start = Posix.monotonicNs()
        traceStartUs = start / 1000
        var plan: [MountOp] = []
        if let warm {
            var call = cs_call()
            call.stdin_fd = stdinChild
            call.stdout_fd = out.child
            call.stderr_fd = err.child
            call.report_fd = report.child
            call.rlimit_fsize = spec.limits.fileBytes
            call.exec_paths = UnsafePointer(arena.array(candidatePointers))
            call.exec_path_count = Int32(candidates.count)
            call.argv = UnsafePointer(arena.stringArray(spec.argv))
            call.envp = UnsafePointer(arena.stringArray(env))
            call.cwd = UnsafePointer(arena.string(spec.workingDirectory))
            let r = cs_warm_start(warm.control, &call)
            guard r == 0 else {
                logger.warning("a prepared sandbox did not take its command", metadata: ["toold.errno": "\(errnoString(-r))"])
                return nil
            }
            // The hand-over is done; from here the sandbox is this execution's, like a cloned one.
            for fd in [stdinChild, out.child, err.child, report.child] {
                close(fd)
                toClose.removeAll { $0 == fd }
            }
        } else {
            // network and trusted share the host's network namespace.
            let newNetns: Int32 = (spec.mode == .network || spec.mode == .trusted) ? 0 : 1
            let netns: Int32 = newNetns == 1 ? (core.netnsPool.take() ?? -1) : -1
            if netns >= 0 { toClose.append(netns) }
            plan = MountPlan.build(
                root: core.rootMountPoint,
                etcSkeleton: core.etcSkeleton,
                host: core.host,
                hostUID: core.hostUID,
                hostGID: core.hostGID,
                limits: spec.limits,
                mode: spec.mode
            )
            var config = Self.baseConfig(core: core, arena: arena, cgroup: cgroup, plan: plan, limits: spec.limits)
            config.stdin_fd = stdinChild
            config.stdout_fd = out.child
            config.stderr_fd = err.child
            config.report_fd = report.child
            config.netns_fd = netns
            config.new_netns = newNetns
            config.exec_paths = UnsafePointer(arena.array(candidatePointers))
            config.exec_path_count = Int32(candidates.count)
            config.argv = UnsafePointer(arena.stringArray(spec.argv))
            config.envp = UnsafePointer(arena.stringArray(env))
            config.cwd = UnsafePointer(arena.string(spec.workingDirectory))
            config.trace_steps = traceTimings ? 1 : 0

            var pid: pid_t = -ENOTCONN
            var placed: Int32 = 0
            defer { if pid > 0 { core.notePlacement(placed != 0, wanted: config.cgroup_dir != nil) } }
            if let zygote = core.zygote {
                pid = zygote.spawn(&config, pidfd: &pidfd, placed: &placed)
                viaZygote = pid > 0
            }
            // No zygote, or none now (gone, and not restarted): clone from the daemon.
            if !viaZygote && Zygote.isGone(pid) {
                config.exit_signal = 0
                pid = cs_spawn(&config, &pidfd, &placed)
            }
            // The child has its copies; ours of its ends would hide EOF.
            for fd in [stdinChild, out.child, err.child, report.child, netns] where fd >= 0 {
                close(fd)
                toClose.removeAll { $0 == fd }
            }
            guard pid > 0 else {
                pidfd = -1
                if pid == -EOWNERDEAD {
                    return failure(
                        "zygote", EOWNERDEAD,
                        "zygote: the sandbox zygote died while cloning this sandbox; not retried, since it may have started it")
                }
                return failure("clone", -pid)
            }
        }
        // From here the loop owns (and closes) the parent ends; settle() the pidfd.
        toClose = []
        withExtendedLifetime(arena) {}

        let spawned = Posix.monotonicNs()
        var outcome = SandboxOutcome(status: .exited)
        let failureRecord = loop(
            stdout: out.parent,
            stderr: err.parent,
            report: report.parent,
            stdinFD: stdinParent,
            outcome: &outcome,
            plan: plan
        )
        outcome.durationMs = Int((Posix.monotonicNs() - start) / 1_000_000)
        if traceTimings { traceDetail = "start=\((spawned - start)/1000)us loop=\((Posix.monotonicNs() - spawned)/1000)us" + traceDetail }
        if let failureRecord {
            var failed = SandboxOutcome.failedToStart(failureRecord, durationMs: outcome.durationMs)
            failed.stdout = outcome.stdout
            failed.stderr = outcome.stderr
            return failed
        }
        return outcome
    }

    private struct StreamState {
        var fd: Int32
        var stream: SandboxStream
        var bytes: [UInt8] = []
        var truncated = false
    }

    /// Returns the first failure the child reported, if any.
    private func loop(
        stdout: Int32,
        stderr: Int32,
        report: Int32,
        stdinFD: Int32,
        outcome: inout SandboxOutcome,
        plan: [MountOp]
    ) -> SandboxFailure? {
        let limit = max(0, spec.limits.outputBytes)
        var streams = [StreamState(fd: stdout, stream: .stdout), StreamState(fd: stderr, stream: .stderr)]
        var reportFD = report
        var reportBytes: [UInt8] = []
        var stdinFD = stdinFD
        let stdinData = spec.stdin ?? []
        var stdinOffset = 0
        let pidfd = self.pidfd
        var drainDeadline: Int64 = 0
        // Set once init's report of the command's exit has arrived.
        var exitReported = false
        var scanned = 0
        let recordSize = MemoryLayout<cs_report>.size
        let timeoutMs = Int64(spec.timeout.components.seconds) * 1000
            + Int64(spec.timeout.components.attoseconds / 1_000_000_000_000_000)
        let deadline = Posix.monotonicMs() + max(0, timeoutMs)
        let cancelFD = cancel.descriptor
        let chunkSize = 65536
        let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: chunkSize, alignment: 16)
        defer {
            chunk.deallocate()
            if stdinFD >= 0 { close(stdinFD) }
        }

        func killSandbox(_ reason: KillReason) {
            if killReason == nil { killReason = reason }
            guard !reaped else { return }
            let r = cs_pidfd_send_signal(pidfd, SIGKILL)
            if r < 0 {
                logger.warning("SIGKILL to the sandbox's init failed; killing through its cgroup",
                               metadata: ["toold.errno": "\(errnoString(-r))"])
            }
            // Also through the cgroup: it holds every process of the sandbox, whatever happened to init's
            // pidfd, so a kill can never be lost (the loop stops watching the cancel fd once it is set).
            if let cgroup = pendingCgroup { core.cgroups.killAll(cgroup) }
        }

        if stdinFD >= 0 && stdinData.isEmpty {
            close(stdinFD)
            stdinFD = -1
        }
        if cancel.isFired { killSandbox(.cancelled) }
        // Where the kernel can charge past the memory limit (v2), the charge is looked at four times a second
        // and the sandbox killed, as `oom`, once it is past the limit by more than the slack.
        let memoryCeiling = spec.limits.memoryBytes &+ Self.memorySlack(spec.limits.memoryBytes)
        var nextMemoryLook: Int64? = pendingCgroup.flatMap { core.cgroups.memoryOverLimitCharge($0) } != nil
            ? Posix.monotonicMs() + Self.memoryLookMs : nil

        while true {
            let streamsOpen = streams.contains { $0.fd >= 0 }
            if reaped && !streamsOpen && reportFD < 0 { break }
            // The command exited on its own and its output is complete: the
            // outcome is known. Init is exiting; settle() waits for it.
            if exitReported && killReason == nil && !streamsOpen { break }
            let now = Posix.monotonicMs()
            if reaped && now >= drainDeadline { break }
            var fds: [pollfd] = []
            for s in streams where s.fd >= 0 { fds.append(pollfd(fd: s.fd, events: Int16(POLLIN), revents: 0)) }
            if reportFD >= 0 { fds.append(pollfd(fd: reportFD, events: Int16(POLLIN), revents: 0)) }
            if !reaped { fds.append(pollfd(fd: pidfd, events: Int16(POLLIN), revents: 0)) }
            if stdinFD >= 0 { fds.append(pollfd(fd: stdinFD, events: Int16(POLLOUT), revents: 0)) }
            if killReason == nil { fds.append(pollfd(fd: cancelFD, events: Int16(POLLIN), revents: 0)) }
            var wait: Int64 = -1
            if reaped {
                wait = drainDeadline - now
            } else if killReason == nil {
                wait = max(0, deadline - now)
                if let look = nextMemoryLook {
                    if now >= look, let cgroup = pendingCgroup {
                        if let charged = core.cgroups.memoryOverLimitCharge(cgroup), charged > memoryCeiling {
                            logger.notice(
                                "sandbox killed: charged past its memory limit",
                                metadata: ["toold.charged_bytes": "\(charged)", "toold.limit_bytes": "\(spec.limits.memoryBytes)"])
                            killSandbox(.memory)
                            continue
                        }
                        nextMemoryLook = now + Self.memoryLookMs
                    }
                    wait = min(wait, max(0, (nextMemoryLook ?? now) - now))
                }
            }
            let n = poll(&fds, nfds_t(fds.count), Int32(clamping: wait))
            if n < 0 {
                if errno == EINTR { continue }
                logger.error("poll failed", metadata: ["toold.errno": "\(errnoString(errno))"])
                killSandbox(.cancelled)
                Posix.sleepMs(10)
                continue
            }
            if n == 0 {
                if !reaped && killReason == nil && Posix.monotonicMs() >= deadline { killSandbox(.timeout) }
                continue
            }
            for p in fds where p.revents != 0 {
                if p.fd == cancelFD {
                    killSandbox(.cancelled)
                } else if p.fd == pidfd {
                    var status: Int32 = 0
                    let r = viaZygote ? 0 : cs_pidfd_wait(pidfd, 1, &status)
                    if viaZygote { status = SIGKILL }
                    if r == 0 {
                        if traceTimings { traceDetail += " reaped@\(Posix.monotonicNs() / 1000 - traceStartUs)" }
                        reaped = true
                        initStatus = status
                        // Init's exit took the whole PID namespace with it; the
                        // pipes reach EOF as soon as the last writer is gone.
                        drainDeadline = Posix.monotonicMs() + 2000
                    } else if r < 0 {
                        // Cannot happen with a valid pidfd; never spin on it.
                        logger.error("waitid on init's pidfd failed", metadata: ["toold.errno": "\(errnoString(-r))"])
                        reaped = true
                        drainDeadline = Posix.monotonicMs() + 2000
                    }
                } else if p.fd == reportFD {
                    let r = read(reportFD, chunk.baseAddress, chunkSize)
                    if r > 0 {
                        if traceTimings && r % MemoryLayout<cs_report>.size == 0,
                            UnsafeRawBufferPointer(rebasing: chunk[(r - MemoryLayout<cs_report>.size)..<r]).loadUnaligned(as: cs_report.self).step
                                == Int32(CS_STEP_EXITED.rawValue)
                        {
                            traceDetail += " exited@\(Posix.monotonicNs() / 1000 - traceStartUs)"
                        }
                        reportBytes.append(contentsOf: UnsafeRawBufferPointer(rebasing: chunk[0..<r]))
                        while scanned + recordSize <= reportBytes.count {
                            let step = reportBytes[scanned..<scanned + recordSize].withUnsafeBytes {
                                $0.loadUnaligned(as: cs_report.self).step
                            }
                            if step == Int32(CS_STEP_EXITED.rawValue) { exitReported = true }
                            scanned += recordSize
                        }
                    } else if r == 0 || (errno != EAGAIN && errno != EINTR) {
                        close(reportFD)
                        reportFD = -1
                    }
                } else if p.fd == stdinFD {
                    let r = stdinData.withUnsafeBytes {
                        write(stdinFD, $0.baseAddress! + stdinOffset, min(65536, $0.count - stdinOffset))
                    }
                    if r > 0 { stdinOffset += r }
                    if stdinOffset >= stdinData.count || (r < 0 && errno != EAGAIN && errno != EINTR) {
                        close(stdinFD)
                        stdinFD = -1
                    }
                } else if let index = streams.firstIndex(where: { $0.fd == p.fd }) {
                    let r = read(p.fd, chunk.baseAddress, chunkSize)
                    if r > 0 {
                        var s = streams[index]
                        let room = limit - s.bytes.count
                        let accepted = min(room, r)
                        if accepted > 0 {
                            let data = [UInt8](UnsafeRawBufferPointer(rebasing: chunk[0..<accepted]))
                            s.bytes.append(contentsOf: data)
                            onOutput(s.stream, data)
                        }
                        if r > accepted && !s.truncated {
                            s.truncated = true
                            killSandbox(.outputLimit)
                        }
                        streams[index] = s
                    } else if r == 0 || (errno != EAGAIN && errno != EINTR) {
                        close(p.fd)
                        streams[index].fd = -1
                    }
                }
            }
        }
        for s in streams where s.fd >= 0 { close(s.fd) }
        if reportFD >= 0 { close(reportFD) }
        outcome.stdout = streams[0].bytes
        outcome.stderr = streams[1].bytes
        outcome.stdoutTruncated = streams[0].truncated
        outcome.stderrTruncated = streams[1].truncated

        // Records: the first failure wins; otherwise init's exit report.
        var failure: SandboxFailure?
        let size = MemoryLayout<cs_report>.size
        var offset = 0
        while offset + size <= reportBytes.count {
            let record = reportBytes[offset..<offset + size].withUnsafeBytes { $0.loadUnaligned(as: cs_report.self) }
            offset += size
            if record.step == Int32(CS_STEP_EXITED.rawValue) {
                exitStatus = record.value
                scratchFull = record.detail
            } else if record.step == Int32(CS_STEP_TRACE.rawValue) {
                traceDetail += " \(String(cString: cs_step_name(record.detail)))@\(record.value)"
            } else if failure == nil {
                let name = String(cString: cs_step_name(record.step))
                if record.step == Int32(CS_STEP_MOUNT.rawValue), record.detail >= 0, Int(record.detail) < plan.count {
                    let op = plan[Int(record.detail)]
                    failure = SandboxFailure(stage: "mount", errno: record.value,
                                             message: "mount \(op.insidePath): \(errnoString(record.value))")
                } else {
                    failure = SandboxFailure(stage: name, errno: record.value, message: "\(name): \(errnoString(record.value))")
                }
            }
        }
        return failure
    }
}
