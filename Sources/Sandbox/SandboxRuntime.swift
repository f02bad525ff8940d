// SandboxRuntime: prepared once at daemon start (cgroup backend, seccomp
// program, /etc skeleton, crash leftovers removed, network namespace pool),
// then runs any number of executions concurrently, each on its own thread.
#if canImport(Glibc)
import Glibc
#endif
import CSandbox
import Foundation
import Logging
import Synchronization

/// Runs commands in sandboxes. Thread-safe; one per daemon (it locks its
/// state directory). See docs/SECURITY.md for what a sandbox is made of.
public final class SandboxRuntime: Sendable {
    let core: RuntimeCore
    private let registry = Mutex(Registry())

    struct Registry {
        var shutDown = false
        var running: [UInt64: CancelSignal] = [:]
        /// Execution threads not yet finished: an execution answers before it has torn its sandbox
        /// down (`Execution.settle`), so this outlives its `running` entry.
        var threads = 0
    }

    /// Detects cgroups, compiles the seccomp filter, prepares the /etc
    /// skeleton, kills and removes what a crashed predecessor left, and
    /// starts the network namespace pool. Throws when sandboxes could not be
    /// made safe (no sandbox user, seccomp unavailable, state dir unusable).
    public init(configuration: SandboxConfiguration, logger: Logger) throws {
        core = try RuntimeCore(configuration: configuration, logger: logger)
        userNamespacesAvailable = Self.detectUserNamespaces()
        if !userNamespacesAvailable {
            logger.error("user namespaces are disabled for unprivileged users; every execution will fail to start")
        }
    }

    /// The kernel switches that decide whether an unprivileged process (the sandbox user, after the
    /// credential drop) may create a user namespace: the namespace count limit, Debian's
    /// `unprivileged_userns_clone`, and Ubuntu's AppArmor restriction.
    static func detectUserNamespaces() -> Bool {
        func read(_ path: String) -> Int? {
            guard let bytes = try? Posix.readFile(path) else { return nil }
            return Int(String(decoding: bytes.filter { $0 != 10 && $0 != 32 }, as: UTF8.self))
        }
        if let max = read("/proc/sys/user/max_user_namespaces"), max == 0 { return false }
        if let allowed = read("/proc/sys/kernel/unprivileged_userns_clone"), allowed == 0 { return false }
        if let restricted = read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns"), restricted != 0 { return false }
        return true
    }

    /// The layout found at start.
    public var cgroupLayout: CgroupLayout { core.cgroups.layout }
    /// Controllers limits are set with (e.g. memory, pids, cpu, cpuacct).
    public var usableControllers: [String] { core.cgroups.usableControllers }
    /// Whether the kernel lets the sandbox user create its user namespace (detected at start; every
    /// sandbox needs one, so when this is false executions fail at stage "unshare").
    public let userNamespacesAvailable: Bool
    /// The prepared-sandbox pool: its size (0 when off), how many are ready, and how many calls since start
    /// used one or found none ready.
    public var preparedSandboxes: (poolSize: Int, ready: Int, used: Int, missed: Int) {
        guard let pool = core.warmPool else { return (0, 0, 0, 0) }
        let counts = pool.counts
        return (pool.capacity, counts.ready, counts.hits, counts.misses)
    }
    /// Always true once init succeeded: the filter compiled and loads per sandbox.
    public var seccompAvailable: Bool { core.seccomp != nil }

    /// Runs one command to completion. Calls onOutput in order, from one
    /// thread at a time, as output arrives. Honours Swift task cancellation
    /// (→ status .cancelled, tree killed). Never blocks a cooperative thread:
    /// the execution runs on a dedicated thread that resumes the continuation.
    public func run(
        _ spec: SandboxSpec,
        onOutput: @escaping @Sendable (SandboxStream, [UInt8]) -> Void
    ) async -> SandboxOutcome {
        guard let cancel = CancelSignal() else {
            return .failedToStart(SandboxFailure(stage: "eventfd", errno: errno, message: "eventfd: \(errnoString(errno))"))
        }
        let serial = core.nextSerial()
        let admitted = registry.withLock { state -> Bool in
            guard !state.shutDown else { return false }
            state.running[serial] = cancel
            state.threads += 1
            return true
        }
        guard admitted else {
            cancel.close()
            return .failedToStart(SandboxFailure(stage: "runtime", errno: ESHUTDOWN,
                                                 message: "runtime: the sandbox runtime is shut down"))
        }
        defer {
            _ = registry.withLock { $0.running.removeValue(forKey: serial) }
            cancel.close()
        }
        let core = self.core
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<SandboxOutcome, Never>) in
                let r = startDedicatedThread {
                    let execution = Execution(core: core, spec: spec, serial: serial, cancel: cancel, onOutput: onOutput)
                    execution.run { continuation.resume(returning: $0) }
                    self.registry.withLock { $0.threads -= 1 }
                }
                if r != 0 {
                    self.registry.withLock { $0.threads -= 1 }
                    continuation.resume(returning: .failedToStart(
                        SandboxFailure(stage: "pthread_create", errno: r, message: "pthread_create: \(errnoString(r))")))
                }
            }
        } onCancel: {
            cancel.fire()
        }
    }

    /// Stops the pools and kills every running sandbox (their runs return `cancelled`), waits (up to
    /// 10 s) for every execution to finish tearing its sandbox down, kills and removes whatever is still
    /// in this daemon's sandbox cgroups, and removes their parent. Later runs fail to start.
    public func shutdown() {
        let running = registry.withLock { state -> [CancelSignal] in
            state.shutDown = true
            return Array(state.running.values)
        }
        for cancel in running { cancel.fire() }
        core.refillPacing.stop()
        core.warmPool?.stop()
        core.netnsPool.stop()
        let deadline = Posix.monotonicNs() + 10_000_000_000
        while registry.withLock({ $0.threads }) > 0 && Posix.monotonicNs() < deadline { Posix.sleepMs(10) }
        // Normally nothing: every execution removed its own cgroup. What is left (a teardown still stuck
        // after 10 s) would otherwise keep the parent, and the next daemon on another state directory
        // would never find it.
        let left = core.cgroups.removeLeftovers()
        if left > 0 {
            core.logger.warning("removed sandbox cgroups still present at stop", metadata: ["toold.count": "\(left)"])
        }
        core.cgroups.releaseParent()
    }
}

/// An eventfd the execution loop polls; fired by task cancellation or shutdown.
final class CancelSignal: Sendable {
    private let fd: Mutex<Int32>

    init?() {
        let fd = cs_eventfd()
        guard fd >= 0 else { return nil }
        self.fd = Mutex(fd)
    }

    /// The fd to poll, valid until close().
    var descriptor: Int32 { fd.withLock { $0 } }

    func fire() {
        fd.withLock { fd in
            guard fd >= 0 else { return }
            var one: UInt64 = 1
            _ = write(fd, &one, 8)
        }
    }

    var isFired: Bool {
        fd.withLock { fd in
            guard fd >= 0 else { return false }
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            return poll(&pfd, 1, 0) == 1
        }
    }

    func close() {
        fd.withLock { fd in
            if fd >= 0 { Glibc.close(fd) }
            fd = -1
        }
    }
}

/// The runtime's immutable state, shared by every execution.
final class RuntimeCore: @unchecked Sendable {
    // @unchecked: every stored property is immutable after init; `seccomp`
    // points to a program that is only read (by cs_spawn) until deinit, and
    // NetnsPool and RefillPacing are thread-safe; `serial` is atomic.
    let configuration: SandboxConfiguration
    let logger: Logger
    let hostUID: UInt32
    let hostGID: UInt32
    let cgroups: any CgroupBackend
    let seccomp: UnsafeMutableRawPointer?
    let host: HostLayout
    let etcSkeleton: String
    let rootMountPoint: String
    let capLastCap: Int32
    let netnsPool: NetnsPool
    /// What the pools pace their refills by: the executions running.
    let refillPacing: RefillPacing
    /// Sandboxes prepared ahead of demand; nil without the zygote or with a size of 0.
    private(set) var warmPool: WarmPool?
    /// The process sandboxes are cloned from (see Zygote.swift), or nil: clone directly.
    let zygote: Zygote?
    private let lockFD: Int32
    private let serial = Atomic<UInt64>(0)
    /// Whether the first v2 placement was logged (see notePlacement).
    private let placementLogged = Atomic<Bool>(false)

    init(configuration: SandboxConfiguration, logger: Logger) throws {
        self.configuration = configuration
        self.logger = logger

        // The sandbox user: a dedicated, unprivileged host account.
        guard let pw = getpwnam(configuration.sandboxUser) else {
            throw SandboxRuntimeError.sandboxUserMissing(configuration.sandboxUser)
        }
        hostUID = pw.pointee.pw_uid
        hostGID = getgrnam(configuration.sandboxUser)?.pointee.gr_gid ?? pw.pointee.pw_gid
        guard hostUID != 0, hostGID != 0 else { throw SandboxRuntimeError.sandboxUserIsRoot(configuration.sandboxUser) }

        // State: <state>/sandbox/{lock, etc, root}; one runtime per directory.
        let base = normalize(configuration.stateDirectory) + "/sandbox"
        do {
            try Posix.makeDirectories(base, mode: 0o711)
        } catch {
            throw SandboxRuntimeError.stateDirectory(path: error.path, operation: error.call, errno: error.errno)
        }
        let lockPath = base + "/lock"
        lockFD = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard lockFD >= 0 else { throw SandboxRuntimeError.stateDirectory(path: lockPath, operation: "open", errno: errno) }
        guard flock(lockFD, LOCK_EX | LOCK_NB) == 0 else {
            close(lockFD)
            throw SandboxRuntimeError.stateDirectoryInUse(base)
        }
        etcSkeleton = base + "/etc"
        rootMountPoint = base + "/root"
        do {
            try EtcSkeleton.build(at: etcSkeleton, insideUID: configuration.insideUID, hostname: configuration.hostname)
            // The root mount point must be an empty directory; a crash leaves
            // nothing here (every mount lived in a sandbox's namespace).
            rmdir(rootMountPoint)
            try Posix.makeDirectory(rootMountPoint, mode: 0o700)
        } catch {
            close(lockFD)
            throw SandboxRuntimeError.stateDirectory(path: error.path, operation: error.call, errno: error.errno)
        }

        var prog: UnsafeMutableRawPointer?
        let r = cs_seccomp_compile(&prog)
        guard r == 0, let prog else {
            close(lockFD)
            throw SandboxRuntimeError.seccompCompile(errno: -r)
        }
        seccomp = prog

        host = HostLayout.probe()
        capLastCap = cs_cap_last_cap()

        // Sandbox cgroups are named after the state directory, so two
        // runtimes with different state directories never clean up each
        // other's sandboxes, and a restarted daemon finds its predecessor's.
        var notes: [String] = []
        cgroups = CgroupDetection.detect(
            sandboxParentName: "toold-sandboxes-" + stableHash(base),
            override: configuration.cgroupRootOverride,
            notes: &notes
        )
        for note in notes { logger.warning("cgroup detection", metadata: ["toold.note": "\(note)"]) }
        let leftovers = cgroups.removeLeftovers()
        if leftovers > 0 {
            logger.warning("removed sandbox cgroups left by a previous run", metadata: ["toold.count": "\(leftovers)"])
        }
        if configuration.useZygote {
            let helper = configuration.zygoteExecutable ?? Self.zygoteExecutable()
            if helper == nil {
                logger.notice("toold-sandbox-zygote is not installed beside toold; the zygote re-runs toold (clones copy more)")
            }
            zygote = Zygote(executable: helper, logger: logger)
        } else {
            zygote = nil
        }
        // The CPUs toold may use (affinity and quota, as the scheduler counts them), at least two: on one,
        // a refill beside the running execution competes with it all the same.
        refillPacing = RefillPacing(
            busyAt: max(2, ProcessInfo.processInfo.activeProcessorCount), maxWaitMs: configuration.refillWaitMs)
        netnsPool = NetnsPool(capacity: max(0, configuration.netnsPoolSize), pacing: refillPacing, logger: logger)
        if zygote != nil && configuration.warmPoolSize > 0 {
            let limits = configuration.warmLimits
            warmPool = WarmPool(
                capacity: configuration.warmPoolSize, limits: limits, cgroups: cgroups, pacing: refillPacing,
                logger: logger
            ) { [weak self] in
                guard let self else {
                    return .failure(WarmPoolError(message: "runtime: shut down"))
                }
                return self.prepareWarm(limits: limits)
            }
        }
        logger.info(
            "sandbox runtime ready",
            metadata: [
                "toold.cgroup_layout": "\(cgroups.layout.rawValue)",
                "toold.cgroup_controllers": "\(cgroups.usableControllers.joined(separator: ","))",
                "toold.seccomp_instructions": "\(cs_seccomp_length(prog))",
                "toold.sandbox_uid": "\(hostUID)",
                "toold.netns_pool": "\(configuration.netnsPoolSize)",
                "toold.zygote_pid": "\(zygote?.status.pid ?? 0)",
                "toold.warm_pool": "\(warmPool?.capacity ?? 0)",
            ]
        )
    }

    /// The small zygote executable: beside the daemon's (a build directory, or an install's bin/) or in
    /// ../libexec/toold/ (an install). Used only when owned by root (or us) and writable by nobody else.
    static func zygoteExecutable() -> String? {
        guard let exe = Posix.readLink("/proc/self/exe") else { return nil }
        let dir = exe.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        for candidate in [dir + "/toold-sandbox-zygote", dir + "/../libexec/toold/toold-sandbox-zygote"] {
            var st = stat()
            guard stat(candidate, &st) == 0, st.st_mode & S_IFMT == S_IFREG, st.st_mode & 0o111 != 0,
                st.st_uid == 0 || st.st_uid == geteuid(), st.st_mode & 0o022 == 0
            else { continue }
            return candidate
        }
        return nil
    }

    /// Says once, on cgroup v2, how sandboxes enter their cgroup: placed by clone3(CLONE_INTO_CGROUP), or
    /// (kernels without it) by writing cgroup.procs, a migration that can wait for an RCU grace period.
    func notePlacement(_ placed: Bool, wanted: Bool) {
        guard wanted, !placementLogged.exchange(true, ordering: .relaxed) else { return }
        if placed {
            logger.info("sandboxes are placed in their cgroup by clone3(CLONE_INTO_CGROUP)")
        } else {
            logger.notice("clone3(CLONE_INTO_CGROUP) is unavailable; sandboxes join their cgroup through cgroup.procs")
        }
    }

    func nextSerial() -> UInt64 {
        serial.wrappingAdd(1, ordering: .relaxed).newValue
    }

    deinit {
        refillPacing.stop()
        warmPool?.stop()
        zygote?.stop()
        netnsPool.stop()
        cs_seccomp_free(seccomp)
        close(lockFD)
    }
}

/// FNV-1a, 8 hex digits: stable across runs (unlike Hasher).
func stableHash(_ s: String) -> String {
    var h: UInt32 = 0x811c_9dc5
    for b in s.utf8 {
        h ^= UInt32(b)
        h = h &* 0x0100_0193
    }
    let hex = String(h, radix: 16)
    return String(repeating: "0", count: 8 - hex.count) + hex
}
