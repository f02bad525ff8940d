/// Typed params and results of every method, with the field names of `protocol/PROTOCOL.md`.
/// toold, toolc and the tests all use these types; the JSON Schemas in `protocol/schema/` describe them.

/// Method and notification names.
public enum RPCMethod {
    public static let daemonStatus = "daemon.status"
    public static let exec = "exec"
    public static let execCancel = "exec.cancel"
    /// Server → client notification carrying streamed output.
    public static let execOutput = "exec.output"
    /// Server → client notification, first of a streamed execution: `{execution_id}` (for `exec.cancel`).
    public static let execStarted = "exec.started"
}

// MARK: daemon.status

/// The caller as the daemon sees it, from the kernel's peer credentials.
public struct CallerIdentity: Sendable, Equatable, Codable {
    public var uid: UInt32
    public var gid: UInt32
    public var pid: Int32
    public var user: String
    public var groups: [String]
    public var admin: Bool

    public init(uid: UInt32, gid: UInt32, pid: Int32, user: String, groups: [String], admin: Bool) {
        self.uid = uid
        self.gid = gid
        self.pid = pid
        self.user = user
        self.groups = groups
        self.admin = admin
    }
}

public struct CgroupStatus: Sendable, Equatable, Codable {
    /// `v2`, `v1`, `hybrid` or `none`.
    public var layout: String
    /// Controllers toold can use for sandbox limits (memory, pids, cpu, cpuacct).
    public var controllers: [String]
    public init(layout: String, controllers: [String]) {
        self.layout = layout
        self.controllers = controllers
    }
}

public struct SandboxFeatures: Sendable, Equatable, Codable {
    public var userNamespaces: Bool
    public var seccomp: Bool
    public var prepared: PreparedSandboxes
    public init(userNamespaces: Bool, seccomp: Bool, prepared: PreparedSandboxes = PreparedSandboxes()) {
        self.userNamespaces = userNamespaces
        self.seccomp = seccomp
        self.prepared = prepared
    }
    enum CodingKeys: String, CodingKey {
        case userNamespaces = "user_namespaces"
        case seccomp, prepared
    }
}

/// The pool of sandboxes prepared ahead of demand (`warm_pool_size`).
public struct PreparedSandboxes: Sendable, Equatable, Codable {
    /// How many the daemon keeps ready (0: the pool is off).
    public var poolSize: Int
    /// Ready now.
    public var ready: Int
    /// Calls, since start, that ran in a prepared sandbox.
    public var used: Int
    /// Calls, since start, that could have used one but found none ready.
    public var missed: Int
    public init(poolSize: Int = 0, ready: Int = 0, used: Int = 0, missed: Int = 0) {
        self.poolSize = poolSize
        self.ready = ready
        self.used = used
        self.missed = missed
    }
    enum CodingKeys: String, CodingKey {
        case poolSize = "pool_size"
        case ready, used, missed
    }
}

public struct ExecutionCounts: Sendable, Equatable, Codable {
    public var running: Int
    public var queued: Int
    public var pendingApproval: Int
    /// Per user, for admins only (absent for others).
    public var perUser: [UserExecutionCounts]?
    public init(running: Int, queued: Int, pendingApproval: Int = 0, perUser: [UserExecutionCounts]? = nil) {
        self.running = running
        self.queued = queued
        self.pendingApproval = pendingApproval
        self.perUser = perUser
    }
    enum CodingKeys: String, CodingKey {
        case running, queued
        case pendingApproval = "pending_approval"
        case perUser = "per_user"
    }
}

public struct DaemonStatusResult: Sendable, Equatable, Codable {
    public var version: String
    public var uptimeMs: Int64
    public var pid: Int32
    public var caller: CallerIdentity
    public var cgroup: CgroupStatus
    public var sandbox: SandboxFeatures
    public var executions: ExecutionCounts
    public var policy: PolicyStatus
    public var scheduler: SchedulerStatus

    public init(
        version: String, uptimeMs: Int64, pid: Int32, caller: CallerIdentity, cgroup: CgroupStatus,
        sandbox: SandboxFeatures, executions: ExecutionCounts, policy: PolicyStatus, scheduler: SchedulerStatus
    ) {
        self.version = version
        self.uptimeMs = uptimeMs
        self.pid = pid
        self.caller = caller
        self.cgroup = cgroup
        self.sandbox = sandbox
        self.executions = executions
        self.policy = policy
        self.scheduler = scheduler
    }

    enum CodingKeys: String, CodingKey {
        case version, pid, caller, cgroup, sandbox, executions, policy, scheduler
        case uptimeMs = "uptime_ms"
    }
}

// MARK: exec

/// Resource limits of one execution. Every field is optional in a request: absent means the daemon's default.
public struct ExecLimits: Sendable, Equatable, Codable {
    public var memoryBytes: UInt64?
    public var pids: Int?
    public var cpuMillicores: Int?
    public var outputBytes: Int?
    public var fileBytes: UInt64?
    public var tmpBytes: UInt64?

    public init(
        memoryBytes: UInt64? = nil, pids: Int? = nil, cpuMillicores: Int? = nil, outputBytes: Int? = nil,
        fileBytes: UInt64? = nil, tmpBytes: UInt64? = nil
    ) {
        self.memoryBytes = memoryBytes
        self.pids = pids
        self.cpuMillicores = cpuMillicores
        self.outputBytes = outputBytes
        self.fileBytes = fileBytes
        self.tmpBytes = tmpBytes
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case pids
        case memoryBytes = "memory_bytes"
        case cpuMillicores = "cpu_millicores"
        case outputBytes = "output_bytes"
        case fileBytes = "file_bytes"
        case tmpBytes = "tmp_bytes"
    }
}

public struct ExecParams: Sendable, Equatable, Codable {
    public var argv: [String]
    public var stdin: String?
    public var stdinBase64: String?
    public var env: [String: String]?
    public var cwd: String?
    public var timeoutMs: Int?
    public var limits: ExecLimits?
    public var stream: Bool?
    /// Isolation profile (default `sandbox`); `network` and `trusted` need policy's explicit permission.
    public var mode: ToolMode?

    public init(
        argv: [String], stdin: String? = nil, stdinBase64: String? = nil, env: [String: String]? = nil,
        cwd: String? = nil, timeoutMs: Int? = nil, limits: ExecLimits? = nil, stream: Bool? = nil, mode: ToolMode? = nil
    ) {
        self.argv = argv
        self.stdin = stdin
        self.stdinBase64 = stdinBase64
        self.env = env
        self.cwd = cwd
        self.timeoutMs = timeoutMs
        self.limits = limits
        self.stream = stream
        self.mode = mode
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case argv, stdin, env, cwd, limits, stream, mode
        case stdinBase64 = "stdin_base64"
        case timeoutMs = "timeout_ms"
    }
}

/// How an execution ended.
public enum ExecStatus: String, Sendable, Codable, CaseIterable {
    case exited, signaled, timeout, oom
    case outputLimit = "output_limit"
    case cancelled
    case failedToStart = "failed_to_start"
}

/// Where starting the command failed, for `failed_to_start`.
public struct ExecFailure: Sendable, Equatable, Codable {
    public var stage: String
    public var errno: Int32
    /// `stage: strerror(errno)`, e.g. "execve: No such file or directory".
    public var message: String
    public init(stage: String, errno: Int32, message: String) {
        self.stage = stage
        self.errno = errno
        self.message = message
    }
}

/// `utf-8` when the field holds the bytes as text, `base64` when they were not valid UTF-8.
public enum OutputEncoding: String, Sendable, Codable {
    case utf8 = "utf-8"
    case base64
}

public struct ExecResult: Sendable, Equatable, Codable {
    public var executionId: String
    public var status: ExecStatus
    public var exitCode: Int32?
    public var signal: Int32?
    public var stdout: String
    public var stdoutEncoding: OutputEncoding
    public var stderr: String
    public var stderrEncoding: OutputEncoding
    public var stdoutTruncated: Bool
    public var stderrTruncated: Bool
    public var durationMs: Int
    /// Time spent waiting for a slot in the scheduler's queue (not part of `duration_ms`).
    public var queuedMs: Int
    public var cpuMs: Int
    public var memoryPeakBytes: UInt64
    public var violations: [String]
    public var failure: ExecFailure?
    /// Names of the redaction rules that replaced something in the outputs; absent when none did.
    public var redacted: [String]?

    public init(
        executionId: String, status: ExecStatus, exitCode: Int32?, signal: Int32?, stdout: String,
        stdoutEncoding: OutputEncoding, stderr: String, stderrEncoding: OutputEncoding, stdoutTruncated: Bool,
        stderrTruncated: Bool, durationMs: Int, queuedMs: Int = 0, cpuMs: Int, memoryPeakBytes: UInt64,
        violations: [String], failure: ExecFailure?, redacted: [String]? = nil
    ) {
        self.executionId = executionId
        self.status = status
        self.exitCode = exitCode
        self.signal = signal
        self.stdout = stdout
        self.stdoutEncoding = stdoutEncoding
        self.stderr = stderr
        self.stderrEncoding = stderrEncoding
        self.stdoutTruncated = stdoutTruncated
        self.stderrTruncated = stderrTruncated
        self.durationMs = durationMs
        self.queuedMs = queuedMs
        self.cpuMs = cpuMs
        self.memoryPeakBytes = memoryPeakBytes
        self.violations = violations
        self.failure = failure
        self.redacted = redacted
    }

    enum CodingKeys: String, CodingKey {
        case status, signal, stdout, stderr, violations, failure, redacted
        case queuedMs = "queued_ms"
        case executionId = "execution_id"
        case exitCode = "exit_code"
        case stdoutEncoding = "stdout_encoding"
        case stderrEncoding = "stderr_encoding"
        case stdoutTruncated = "stdout_truncated"
        case stderrTruncated = "stderr_truncated"
        case durationMs = "duration_ms"
        case cpuMs = "cpu_ms"
        case memoryPeakBytes = "memory_peak_bytes"
    }

    /// The output bytes of a stream, decoded from text or base64.
    public func bytes(of stream: OutputStreamName) -> [UInt8] {
        let (text, encoding) = stream == .stdout ? (stdout, stdoutEncoding) : (stderr, stderrEncoding)
        return encoding == .utf8 ? Array(text.utf8) : (Base64.decode(text) ?? [])
    }
}

public enum OutputStreamName: String, Sendable, Codable {
    case stdout, stderr
}

/// `exec.output` notification: a chunk of output, in order per execution.
public struct ExecOutputNotification: Sendable, Equatable, Codable {
    public var executionId: String
    public var stream: OutputStreamName
    /// The chunk as text, when it is valid UTF-8 on its own.
    public var data: String?
    /// The chunk as base64, otherwise.
    public var dataBase64: String?

    public init(executionId: String, stream: OutputStreamName, bytes: [UInt8]) {
        self.executionId = executionId
        self.stream = stream
        if let text = String(validating: bytes, as: UTF8.self) {
            data = text
        } else {
            dataBase64 = Base64.encode(bytes)
        }
    }

    public var bytes: [UInt8] {
        if let data { return Array(data.utf8) }
        return dataBase64.flatMap(Base64.decode) ?? []
    }

    enum CodingKeys: String, CodingKey {
        case stream, data
        case executionId = "execution_id"
        case dataBase64 = "data_base64"
    }
}

public struct ExecCancelParams: Sendable, Equatable, Codable {
    public var executionId: String
    public init(executionId: String) { self.executionId = executionId }
    enum CodingKeys: String, CodingKey, CaseIterable { case executionId = "execution_id" }
}

public struct ExecCancelResult: Sendable, Equatable, Codable {
    /// True when the execution was running and is now being killed.
    public var cancelled: Bool
    public init(cancelled: Bool) { self.cancelled = cancelled }
}
