import Foundation
import Logging
import Sandbox
import Synchronization
import ToolProtocol

/// Runs `exec` requests: checks and resolves them into a `SandboxSpec` (limits clamped to the configured
/// defaults and maxima), runs them in the sandbox, and turns the outcome into the wire result. Keeps the
/// table of running executions for `exec.cancel` and `daemon.status`.
public final class ExecutionService: Sendable {
    public let runtime: SandboxRuntime
    private let limits: Mutex<ExecLimitsConfiguration>
    private let running = Mutex<[String: RunningExecution]>([:])
    private let logger: Logger

    struct RunningExecution: Sendable {
        var ownerUID: UInt32
        var cancel: @Sendable () -> Void
    }

    /// The environment every command starts from; the request's `env` is laid over it.
    public static let baseEnvironment: [String: String] = [
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": "/workspace",
        "LANG": "C.UTF-8",
        "TMPDIR": "/tmp",
    ]

    public init(runtime: SandboxRuntime, limits: ExecLimitsConfiguration, logger: Logger) {
        self.runtime = runtime
        self.limits = Mutex(limits)
        self.logger = logger
    }

    public func updateLimits(_ newLimits: ExecLimitsConfiguration) { limits.withLock { $0 = newLimits } }

    public var counts: ExecutionCounts {
        ExecutionCounts(running: running.withLock { $0.count }, queued: 0)
    }

    /// Checks an `exec` request and resolves it into what the sandbox runs. Throws invalid-params errors
    /// naming the field, and for limits above their maximum, the maximum.
    public func resolve(_ params: ExecParams, executionID: String) throws(RPCError) -> SandboxSpec {
        try resolve(ExecutionRequest(params), executionID: executionID)
    }

    /// Checks a request (from `exec` or a tool call) and resolves it into what the sandbox runs: the
    /// environment laid over the base one, each limit the request's (refused above its maximum), else the
    /// request's fallback (clamped to the maximum), else the configured default.
    public func resolve(_ request: ExecutionRequest, executionID: String) throws(RPCError) -> SandboxSpec {
        var errors: [ParamError] = []
        if request.argv.isEmpty { errors.append(ParamError(path: "/argv", message: "must hold at least the command")) }
        for (i, arg) in request.argv.enumerated() where arg.utf8.contains(0) {
            errors.append(ParamError(path: "/argv/\(i)", message: "must not contain a NUL byte"))
        }
        if request.argv.first?.isEmpty == true { errors.append(ParamError(path: "/argv/0", message: "must not be empty")) }
        var environment = Self.baseEnvironment
        for (key, value) in request.environment {
            let path = "/env/" + ParamsDecoding.escape(key)
            if key.isEmpty || key.contains("=") || key.utf8.contains(0) {
                errors.append(ParamError(path: path, message: "variable names must be non-empty, without '=' or NUL"))
            } else if value.utf8.contains(0) {
                errors.append(ParamError(path: path, message: "must not contain a NUL byte"))
            } else {
                environment[key] = value
            }
        }
        let cwd = request.workingDirectory ?? "/workspace"
        if !cwd.hasPrefix("/") || cwd.utf8.contains(0) {
            errors.append(ParamError(path: "/cwd", message: "must be an absolute path inside the sandbox"))
        }
        if let problem = request.stdinProblem { errors.append(problem) }
        let config = limits.withLock { $0 }
        let requested = request.limits
        let fallback = request.fallbackLimits
        func pick<T: BinaryInteger & Sendable>(
            _ name: String, _ path: String, _ value: T?, _ fallback: T?, _ limit: ExecLimitsConfiguration.Limit<T>,
            minimum: T
        ) -> T {
            guard let value else {
                // A tool's own limit was written against whatever maxima applied then: clamp, never refuse.
                if let fallback { return min(max(fallback, minimum), limit.maximum) }
                return limit.defaultValue
            }
            if value > limit.maximum {
                errors.append(ParamError(path: path, message: "\(name) \(value) is above the maximum of \(limit.maximum)"))
            } else if value < minimum {
                errors.append(ParamError(path: path, message: "\(name) \(value) is below the minimum of \(minimum)"))
            }
            return value
        }
        let timeoutMs = pick("timeout_ms", "/timeout_ms", request.timeoutMs, request.fallbackTimeoutMs, config.timeoutMs, minimum: 1)
        let resolved = SandboxLimits(
            memoryBytes: pick(
                "memory_bytes", "/limits/memory_bytes", requested.memoryBytes, fallback.memoryBytes, config.memoryBytes,
                minimum: 4 << 20),
            pids: pick("pids", "/limits/pids", requested.pids, fallback.pids, config.pids, minimum: 1),
            cpuMillicores: pick(
                "cpu_millicores", "/limits/cpu_millicores", requested.cpuMillicores, fallback.cpuMillicores,
                config.cpuMillicores, minimum: 10),
            outputBytes: pick(
                "output_bytes", "/limits/output_bytes", requested.outputBytes, fallback.outputBytes, config.outputBytes,
                minimum: 0),
            fileBytes: pick(
                "file_bytes", "/limits/file_bytes", requested.fileBytes, fallback.fileBytes, config.fileBytes, minimum: 0),
            tmpBytes: pick(
                "tmp_bytes", "/limits/tmp_bytes", requested.tmpBytes, fallback.tmpBytes, config.tmpBytes, minimum: 1 << 20)
        )
        if !errors.isEmpty { throw .invalidParams(errors) }
        return SandboxSpec(
            executionID: executionID, argv: request.argv, environment: environment, workingDirectory: cwd,
            stdin: request.stdin, limits: resolved, timeout: .milliseconds(timeoutMs), mode: request.mode)
    }

    /// Runs one `exec` request to its result. `onStart` receives the execution id once the request is
    /// accepted; `onOutput` receives output as it arrives (for `stream: true`).
    /// Cancelling the calling task cancels the execution (the result then says `cancelled`).
    public func execute(
        _ params: ExecParams, caller: CallerIdentity,
        onStart: (@Sendable (String) -> Void)? = nil,
        onOutput: (@Sendable (String, OutputStreamName, [UInt8]) -> Void)?
    ) async throws(RPCError) -> ExecResult {
        try await execute(ExecutionRequest(params), caller: caller, onStart: onStart, onOutput: onOutput).result
    }

    /// Runs one request (from `exec` or a tool call) to its result, with the raw stdout for callers that
    /// type it (tool calls). Same callbacks and cancellation as for `exec`.
    public func execute(
        _ request: ExecutionRequest, caller: CallerIdentity,
        onStart: (@Sendable (String) -> Void)? = nil,
        onOutput: (@Sendable (String, OutputStreamName, [UInt8]) -> Void)?
    ) async throws(RPCError) -> (result: ExecResult, stdout: [UInt8]) {
        let executionID = Self.newExecutionID()
        let spec = try resolve(request, executionID: executionID)
        let runtime = self.runtime
        let sink: @Sendable (SandboxStream, [UInt8]) -> Void = { stream, bytes in
            onOutput?(executionID, stream == .stdout ? .stdout : .stderr, bytes)
        }
        // Registered before the client learns the id (exec.started), so an immediate exec.cancel finds it;
        // started after, so no output can precede exec.started.
        let handle = RunHandle()
        running.withLock { $0[executionID] = RunningExecution(ownerUID: caller.uid, cancel: { handle.cancel() }) }
        defer { _ = running.withLock { $0.removeValue(forKey: executionID) } }
        onStart?(executionID)
        let run = Task { await runtime.run(spec, onOutput: sink) }
        handle.attach(run)
        var log = logger
        log[metadataKey: "toold.execution_id"] = "\(executionID)"
        log.debug("execution started", metadata: ["toold.uid": "\(caller.uid)", "toold.argv0": "\(spec.argv[0])"])
        let outcome = await withTaskCancellationHandler {
            await run.value
        } onCancel: {
            run.cancel()
        }
        log.info(
            "execution finished",
            metadata: [
                "toold.uid": "\(caller.uid)", "toold.status": "\(outcome.status.rawValue)",
                "toold.duration_ms": "\(outcome.durationMs)",
            ])
        return (Self.result(executionID: executionID, outcome), outcome.stdout)
    }

    /// Cancels a running execution. Only its owner or an admin may.
    public func cancel(executionID: String, caller: CallerIdentity) throws(RPCError) -> Bool {
        guard let execution = running.withLock({ $0[executionID] }) else {
            throw .notFound("no running execution \(executionID)")
        }
        guard execution.ownerUID == caller.uid || caller.admin else {
            throw .permissionDenied("execution \(executionID) belongs to another user")
        }
        execution.cancel()
        return true
    }

    /// Cancels everything running (daemon stop).
    public func cancelAll() {
        let all = running.withLock { Array($0.values) }
        for execution in all { execution.cancel() }
    }

    static func newExecutionID() -> String {
        "ex_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
    }

    static func result(executionID: String, _ outcome: SandboxOutcome) -> ExecResult {
        let (stdout, stdoutEncoding) = encode(outcome.stdout)
        let (stderr, stderrEncoding) = encode(outcome.stderr)
        return ExecResult(
            executionId: executionID,
            status: ExecStatus(rawValue: outcome.status.rawValue) ?? .failedToStart,
            exitCode: outcome.exitCode, signal: outcome.signal,
            stdout: stdout, stdoutEncoding: stdoutEncoding, stderr: stderr, stderrEncoding: stderrEncoding,
            stdoutTruncated: outcome.stdoutTruncated, stderrTruncated: outcome.stderrTruncated,
            durationMs: outcome.durationMs, cpuMs: outcome.cpuMs, memoryPeakBytes: outcome.memoryPeakBytes,
            violations: outcome.violations,
            failure: outcome.failure.map { ExecFailure(stage: $0.stage, errno: $0.errno, message: $0.message) })
    }

    static func encode(_ bytes: [UInt8]) -> (String, OutputEncoding) {
        if let text = String(validating: bytes, as: UTF8.self) { return (text, .utf8) }
        return (Base64.encode(bytes), .base64)
    }
}

/// What to run, before the daemon's defaults and maxima apply. `exec` params and tool calls both become
/// one, so both are checked and clamped by the same `ExecutionService.resolve`.
public struct ExecutionRequest: Sendable {
    public var argv: [String]
    /// Laid over `ExecutionService.baseEnvironment`.
    public var environment: [String: String]
    /// Default `/workspace`.
    public var workingDirectory: String?
    /// Bytes fed to stdin; nil connects /dev/null.
    public var stdin: [UInt8]?
    /// Asked for by the caller: refused above the maximum.
    public var timeoutMs: Int?
    public var limits: ExecLimits
    /// Used where the caller asked for nothing, before the daemon's defaults (a tool's own values):
    /// clamped to the maximum, never refused.
    public var fallbackTimeoutMs: Int?
    public var fallbackLimits: ExecLimits
    public var mode: IsolationMode
    /// A problem found while building the request (undecodable stdin), reported with the others.
    var stdinProblem: ParamError?

    public init(
        argv: [String], environment: [String: String] = [:], workingDirectory: String? = nil, stdin: [UInt8]? = nil,
        timeoutMs: Int? = nil, limits: ExecLimits = ExecLimits(), fallbackTimeoutMs: Int? = nil,
        fallbackLimits: ExecLimits = ExecLimits(), mode: IsolationMode = .sandbox
    ) {
        self.argv = argv
        self.environment = environment
        self.workingDirectory = workingDirectory
        self.stdin = stdin
        self.timeoutMs = timeoutMs
        self.limits = limits
        self.fallbackTimeoutMs = fallbackTimeoutMs
        self.fallbackLimits = fallbackLimits
        self.mode = mode
    }

    /// An `exec` request: stdin from `stdin` or `stdin_base64`, always in the full sandbox.
    public init(_ params: ExecParams) {
        self.init(
            argv: params.argv, environment: params.env ?? [:], workingDirectory: params.cwd,
            timeoutMs: params.timeoutMs, limits: params.limits ?? ExecLimits())
        switch (params.stdin, params.stdinBase64) {
        case (let text?, nil): stdin = Array(text.utf8)
        case (nil, let encoded?):
            stdin = Base64.decode(encoded)
            if stdin == nil { stdinProblem = ParamError(path: "/stdin_base64", message: "is not valid base64") }
        case (.some, .some): stdinProblem = ParamError(path: "/stdin", message: "give stdin or stdin_base64, not both")
        case (nil, nil): break
        }
    }
}

/// The task of one execution, cancellable before it exists: a cancel that arrives first is applied on attach.
final class RunHandle: Sendable {
    private let state = Mutex<(task: Task<SandboxOutcome, Never>?, cancelled: Bool)>((nil, false))

    func attach(_ task: Task<SandboxOutcome, Never>) {
        let cancelled = state.withLock { s -> Bool in
            s.task = task
            return s.cancelled
        }
        if cancelled { task.cancel() }
    }

    func cancel() {
        let task = state.withLock { s -> Task<SandboxOutcome, Never>? in
            s.cancelled = true
            return s.task
        }
        task?.cancel()
    }
}
