import ToolProtocol

/// What is known of an execution when it starts (or, for a cache hit, when it is answered). The caller has
/// already redacted `arguments`; the store records them as given.
public struct ExecutionStart: Sendable, Equatable {
    /// `ex_` + 32 hex digits, unique; the primary key of the history.
    public var executionID: String
    /// The JSON-RPC id of the request (string, number or null).
    public var requestID: JSONValue?
    public var method: ExecutionMethod
    /// The tool; `exec` for the `exec` method.
    public var tool: String
    public var caller: CallerIdentity
    public var startedAt: Timestamp
    public var arguments: JSONValue
    /// Policy's decision (`allow`, `approval`, `deny`) and the rule behind it, when policy decided.
    public var decision: String?
    public var rule: String?

    public init(
        executionID: String, requestID: JSONValue?, method: ExecutionMethod, tool: String, caller: CallerIdentity,
        startedAt: Timestamp, arguments: JSONValue, decision: String? = nil, rule: String? = nil
    ) {
        self.executionID = executionID
        self.requestID = requestID
        self.method = method
        self.tool = tool
        self.caller = caller
        self.startedAt = startedAt
        self.arguments = arguments
        self.decision = decision
        self.rule = rule
    }
}

/// One output stream of a finished execution. `bytes` (already redacted) is what may be stored, cut to the
/// configured size; `sizeBytes`, `sha256` and `truncated` describe the stream as the execution captured it
/// and are recorded whatever is stored. The caller computes `sha256` (lowercase hex).
public struct CapturedOutput: Sendable, Equatable {
    public var bytes: [UInt8]
    public var sizeBytes: Int
    public var sha256: String?
    /// The execution's output limit cut the stream.
    public var truncated: Bool

    public init(bytes: [UInt8], sizeBytes: Int? = nil, sha256: String? = nil, truncated: Bool = false) {
        self.bytes = bytes
        self.sizeBytes = sizeBytes ?? bytes.count
        self.sha256 = sha256
        self.truncated = truncated
    }

    public static let empty = CapturedOutput(bytes: [])
}

/// How an execution ended, as `executionFinished` and `recordCompleted` record it.
public struct ExecutionOutcome: Sendable, Equatable {
    /// An outcome status (`ExecutionStatus.isOutcome`): not `running`, not a refusal.
    public var status: ExecutionStatus
    public var finishedAt: Timestamp
    public var exitCode: Int32?
    public var signal: Int32?
    public var durationMs: Int
    /// Time spent waiting for a slot before running; nil when the call was never queued.
    public var queuedMs: Int?
    public var cpuMs: Int
    public var memoryPeakBytes: UInt64
    public var stdout: CapturedOutput
    public var stderr: CapturedOutput
    public var violations: [String]
    public var attempts: Int
    /// Answered from the result cache: nothing ran, so its duration, CPU and memory are not counted in metrics.
    public var cached: Bool
    /// Why the command failed to start (`failed_to_start`), for people.
    public var failure: String?

    public init(
        status: ExecutionStatus, finishedAt: Timestamp, exitCode: Int32? = nil, signal: Int32? = nil,
        durationMs: Int, queuedMs: Int? = nil, cpuMs: Int = 0, memoryPeakBytes: UInt64 = 0,
        stdout: CapturedOutput = .empty, stderr: CapturedOutput = .empty, violations: [String] = [],
        attempts: Int = 1, cached: Bool = false, failure: String? = nil
    ) {
        self.status = status
        self.finishedAt = finishedAt
        self.exitCode = exitCode
        self.signal = signal
        self.durationMs = durationMs
        self.queuedMs = queuedMs
        self.cpuMs = cpuMs
        self.memoryPeakBytes = memoryPeakBytes
        self.stdout = stdout
        self.stderr = stderr
        self.violations = violations
        self.attempts = attempts
        self.cached = cached
        self.failure = failure
    }
}

/// A call refused before anything ran (`denied`, `rate_limited`, `overloaded`, `approval_denied`,
/// `invalid_params`): it enters the history and the audit with the error the caller got.
public struct RefusedCall: Sendable, Equatable {
    public var start: ExecutionStart
    /// A refusal status (`ExecutionStatus.isRefusal`).
    public var status: ExecutionStatus
    public var error: RecordedError

    public init(start: ExecutionStart, status: ExecutionStatus, error: RecordedError) {
        self.start = start
        self.status = status
        self.error = error
    }
}

/// An administrative action for the audit: tools registered, approvals decided, policy reloaded. `action` is
/// its kind (`tool_registered`, `approval_decided`, `policy_reloaded`, …), `details` what a reader needs
/// (already redacted).
public struct AdminAction: Sendable, Equatable {
    public var at: Timestamp
    public var requestID: JSONValue?
    public var caller: CallerIdentity
    /// The method that carried it (`tools.register`), or `signal` / `startup` for actions without a request.
    public var method: String
    public var action: String
    public var tool: String?
    public var executionID: String?
    public var details: JSONValue

    public init(
        at: Timestamp, requestID: JSONValue?, caller: CallerIdentity, method: String, action: String,
        tool: String? = nil, executionID: String? = nil, details: JSONValue = .object([:])
    ) {
        self.at = at
        self.requestID = requestID
        self.caller = caller
        self.method = method
        self.action = action
        self.tool = tool
        self.executionID = executionID
        self.details = details
    }
}

/// Settings of the store that a configuration reload may change.
public struct RecordSettings: Sendable, Equatable {
    /// Bytes kept of each output stream per execution; 0 keeps no output. Default 64 KiB.
    public var outputBytesPerStream: Int
    /// Bounds of the result cache; least recently used entries are evicted beyond either.
    public var cacheMaxEntries: Int
    public var cacheMaxBytes: Int

    public init(outputBytesPerStream: Int = 64 * 1024, cacheMaxEntries: Int = 10_000, cacheMaxBytes: Int = 64 << 20) {
        self.outputBytesPerStream = outputBytesPerStream
        self.cacheMaxEntries = cacheMaxEntries
        self.cacheMaxBytes = cacheMaxBytes
    }
}
