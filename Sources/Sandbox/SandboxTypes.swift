// The values the daemon exchanges with the sandbox runtime: what to run and
// under which limits (SandboxSpec, SandboxLimits), how to set the runtime up
// (SandboxConfiguration), and what happened (SandboxOutcome).

/// Resource limits of one execution. Every field is enforced by the kernel:
/// memory, pids and CPU by the execution's cgroup, file size by RLIMIT_FSIZE,
/// tmpfs sizes by the mounts, output by the runtime reading the pipes.
public struct SandboxLimits: Sendable, Equatable {
    /// Memory (RAM + page cache + tmpfs pages) of the whole sandbox; no swap.
    public var memoryBytes: UInt64
    /// Maximum number of processes and threads in the sandbox, init included.
    public var pids: Int
    /// CPU bandwidth in thousandths of a core (1000 = one full core); <= 0 is unlimited.
    public var cpuMillicores: Int
    /// Bytes kept per stream; more ends the execution with `output_limit`.
    public var outputBytes: Int
    /// Largest file the sandbox may write (RLIMIT_FSIZE).
    public var fileBytes: UInt64
    /// Size of each of the /tmp and /workspace tmpfs mounts.
    public var tmpBytes: UInt64

    public init(
        memoryBytes: UInt64 = 512 << 20,
        pids: Int = 256,
        cpuMillicores: Int = 1000,
        outputBytes: Int = 1 << 20,
        fileBytes: UInt64 = 64 << 20,
        tmpBytes: UInt64 = 64 << 20
    ) {
        self.memoryBytes = memoryBytes
        self.pids = pids
        self.cpuMillicores = cpuMillicores
        self.outputBytes = outputBytes
        self.fileBytes = fileBytes
        self.tmpBytes = tmpBytes
    }
}

/// How much of the host an execution may see.
public enum IsolationMode: String, Sendable {
    /// Every namespace, private mount tree, loopback-only network.
    case sandbox
    /// As `sandbox`, with /workspace read-only.
    case readOnly = "read_only"
    /// As `sandbox`, but in the host's network namespace.
    case network
    /// The host's whole tree read-only (every submount, nosuid, nodev) and
    /// the host network; still its own user/PID/mount/IPC/UTS/cgroup
    /// namespaces, fresh /proc, minimal /dev, scratch /tmp and /workspace,
    /// no capabilities, cgroup limits and seccomp.
    case trusted
}

/// One command to run.
public struct SandboxSpec: Sendable {
    /// The daemon's id of the execution; used in cgroup names and logs.
    public var executionID: String
    /// Command and arguments; argv[0] is looked up on the sandbox's PATH
    /// (from `environment`) when it has no slash.
    public var argv: [String]
    /// The complete environment of the command (defaults already merged).
    public var environment: [String: String]
    /// Working directory inside the sandbox.
    public var workingDirectory: String
    /// Bytes fed to stdin, then EOF; nil connects /dev/null.
    public var stdin: [UInt8]?
    public var limits: SandboxLimits
    /// Wall-clock limit; the whole sandbox is killed when it passes.
    public var timeout: Duration
    public var mode: IsolationMode

    public init(
        executionID: String,
        argv: [String],
        environment: [String: String] = [:],
        workingDirectory: String = "/workspace",
        stdin: [UInt8]? = nil,
        limits: SandboxLimits = SandboxLimits(),
        timeout: Duration = .seconds(30),
        mode: IsolationMode = .sandbox
    ) {
        self.executionID = executionID
        self.argv = argv
        self.environment = environment
        self.workingDirectory = workingDirectory
        self.stdin = stdin
        self.limits = limits
        self.timeout = timeout
        self.mode = mode
    }
}

/// Which output stream a chunk came from.
public enum SandboxStream: String, Sendable {
    case stdout, stderr
}

/// How an execution ended.
public enum SandboxStatus: String, Sendable {
    /// The command exited; `exitCode` is set.
    case exited
    /// The command was killed by a signal; `signal` is set.
    case signaled
    /// The wall-clock limit passed; the whole sandbox was killed.
    case timeout
    /// The kernel's OOM killer acted inside the sandbox's cgroup.
    case oom
    /// A stream passed `outputBytes`; the sandbox was killed.
    case outputLimit = "output_limit"
    /// The caller cancelled; the sandbox was killed.
    case cancelled
    /// The command never ran; `failure` says which step failed.
    case failedToStart = "failed_to_start"
}

/// Why an execution failed to start: the setup step and its errno.
public struct SandboxFailure: Sendable, Equatable {
    /// The step that failed: a syscall name ("execve", "pivot_root") or a
    /// runtime stage ("cgroup", "mode", "pipe", "clone", "runtime").
    public var stage: String
    public var errno: Int32
    /// "execve: No such file or directory".
    public var message: String

    public init(stage: String, errno: Int32, message: String) {
        self.stage = stage
        self.errno = errno
        self.message = message
    }
}

/// Everything known about a finished execution.
public struct SandboxOutcome: Sendable {
    public var status: SandboxStatus
    public var exitCode: Int32?
    public var signal: Int32?
    /// At most `limits.outputBytes` bytes each.
    public var stdout: [UInt8]
    public var stderr: [UInt8]
    public var stdoutTruncated: Bool
    public var stderrTruncated: Bool
    /// Wall-clock time from spawn to the sandbox being gone.
    public var durationMs: Int
    /// User + system CPU time of the whole sandbox, from its cgroup.
    public var cpuMs: Int
    /// Peak memory of the sandbox's cgroup.
    public var memoryPeakBytes: UInt64
    /// Names of the limits that were hit: "pids", "memory_bytes",
    /// "output_bytes", "file_bytes", "tmp_bytes" (a scratch tmpfs full when
    /// the command ended), "timeout_ms".
    public var violations: [String]
    /// Set when `status` is `failedToStart`.
    public var failure: SandboxFailure?
    /// Diagnostics, not on the wire: the name of the execution's cgroup
    /// (removed once the sandbox is gone), and whether the command ran in a
    /// sandbox prepared ahead of demand (see SandboxConfiguration.warmPoolSize).
    public var cgroupName: String?
    public var prepared = false

    public init(
        status: SandboxStatus,
        exitCode: Int32? = nil,
        signal: Int32? = nil,
        stdout: [UInt8] = [],
        stderr: [UInt8] = [],
        stdoutTruncated: Bool = false,
        stderrTruncated: Bool = false,
        durationMs: Int = 0,
        cpuMs: Int = 0,
        memoryPeakBytes: UInt64 = 0,
        violations: [String] = [],
        failure: SandboxFailure? = nil
    ) {
        self.status = status
        self.exitCode = exitCode
        self.signal = signal
        self.stdout = stdout
        self.stderr = stderr
        self.stdoutTruncated = stdoutTruncated
        self.stderrTruncated = stderrTruncated
        self.durationMs = durationMs
        self.cpuMs = cpuMs
        self.memoryPeakBytes = memoryPeakBytes
        self.violations = violations
        self.failure = failure
    }

    static func failedToStart(_ failure: SandboxFailure, durationMs: Int = 0) -> SandboxOutcome {
        SandboxOutcome(status: .failedToStart, durationMs: durationMs, failure: failure)
    }
}

/// The cgroup hierarchy the runtime found at start.
public enum CgroupLayout: String, Sendable {
    /// Unified hierarchy only (systemd with Delegate=yes in production).
    case v2
    /// Legacy per-controller hierarchies only.
    case v1
    /// Legacy controllers plus an (unused) cgroup2 tree at /sys/fs/cgroup/unified.
    case hybrid
    /// No usable cgroup filesystem.
    case none
}

/// How the runtime is set up; a plain value, validated by SandboxRuntime.init.
public struct SandboxConfiguration: Sendable {
    /// Directory owned by the daemon; the runtime keeps `sandbox/` in it
    /// (the /etc skeleton, the root mount point, a lock). Never visible inside.
    public var stateDirectory: String
    /// Host user (and group of the same name) the sandbox runs as; must not be root.
    public var sandboxUser: String = "toold-sandbox"
    /// The uid and gid the command sees for itself.
    public var insideUID: UInt32 = 1000
    /// Network namespaces prepared ahead of demand; 0 creates one per call.
    public var netnsPoolSize: Int = 4
    /// When true, a run fails with `failed_to_start` (stage "cgroup") if the
    /// memory or pids controller is unusable.
    public var requireCgroupLimits: Bool = true
    /// Cgroup path (relative to each hierarchy's root, e.g. "/toold") under
    /// which sandbox cgroups are created, instead of one derived from the
    /// daemon's own cgroup.
    public var cgroupRootOverride: String?
    /// RLIMIT_NOFILE of sandboxed processes.
    public var maxOpenFiles: UInt64 = 4096
    /// Hostname seen inside.
    public var hostname: String = "sandbox"
    /// Clone sandboxes from a small zygote process (this executable re-run
    /// as "toold-sandbox-zygote") instead of from the daemon itself, which
    /// would copy the daemon's whole address space per execution. Falls back
    /// to direct clone when the zygote cannot start.
    public var useZygote: Bool = true
    /// The zygote executable; nil finds toold-sandbox-zygote beside the daemon (tests stand in for it).
    var zygoteExecutable: String?
    /// Sandboxes prepared ahead of demand, each used by exactly one command:
    /// namespaces, cgroup, mount tree, credentials and seccomp set up, init
    /// waiting for its command. Serves mode `sandbox` calls whose tmp size is
    /// `warmLimits.tmpBytes`; others (and calls finding the pool empty) set
    /// up a sandbox on the spot. 0 disables; needs the zygote.
    public var warmPoolSize: Int = 4
    /// What prepared sandboxes are set up with: their cgroup limits (changed
    /// to the call's before its command starts, where they differ) and the
    /// size of /tmp and /workspace (which a call must match to use one).
    public var warmLimits = SandboxLimits()
    /// How long (ms) a pool that is at least half full waits for running executions to end before it
    /// replaces what they took, so that preparing does not compete with them for a core while fewer run
    /// than there are CPUs (RefillPacing.swift). 0 prepares at once.
    public var refillWaitMs: Int = 10

    public init(
        stateDirectory: String,
        sandboxUser: String = "toold-sandbox",
        insideUID: UInt32 = 1000,
        netnsPoolSize: Int = 4,
        requireCgroupLimits: Bool = true,
        cgroupRootOverride: String? = nil,
        maxOpenFiles: UInt64 = 4096,
        hostname: String = "sandbox",
        useZygote: Bool = true,
        warmPoolSize: Int = 4,
        warmLimits: SandboxLimits = SandboxLimits(),
        refillWaitMs: Int = 10
    ) {
        self.stateDirectory = stateDirectory
        self.sandboxUser = sandboxUser
        self.insideUID = insideUID
        self.netnsPoolSize = netnsPoolSize
        self.requireCgroupLimits = requireCgroupLimits
        self.cgroupRootOverride = cgroupRootOverride
        self.maxOpenFiles = maxOpenFiles
        self.hostname = hostname
        self.useZygote = useZygote
        self.warmPoolSize = warmPoolSize
        self.warmLimits = warmLimits
        self.refillWaitMs = refillWaitMs
    }
}

/// Why the runtime could not start.
public enum SandboxRuntimeError: Error, CustomStringConvertible, Sendable {
    case sandboxUserMissing(String)
    case sandboxUserIsRoot(String)
    case stateDirectory(path: String, operation: String, errno: Int32)
    case stateDirectoryInUse(String)
    case seccompCompile(errno: Int32)

    public var description: String {
        switch self {
        case .sandboxUserMissing(let name):
            return "sandbox user `\(name)` does not exist (create it: useradd --system --no-create-home --shell /usr/sbin/nologin \(name), or via sysusers.d)"
        case .sandboxUserIsRoot(let name):
            return "sandbox user `\(name)` has uid or gid 0; sandboxes must not run as host root"
        case .stateDirectory(let path, let operation, let errno):
            return "\(operation) `\(path)`: \(errnoString(errno))"
        case .stateDirectoryInUse(let path):
            return "state directory `\(path)` is in use by another sandbox runtime"
        case .seccompCompile(let errno):
            return "compiling the seccomp filter: \(errnoString(errno))"
        }
    }
}
