import Foundation
import Logging
import Sandbox
import Synchronization
import ToolProtocol
import ToolRecords

/// Runs admitted requests: checks and resolves them into a `SandboxSpec` (limits clamped to the
/// configured defaults, the daemon's maxima and the caller's policy maxima), waits for an admin's approval
/// when policy asks for one, waits for a slot in the scheduler, runs them in the sandbox, redacts the
/// outputs, and turns the outcome into the wire result. Keeps the table of calls in progress (waiting for
/// approval, queued or running) for `exec.cancel`.
public final class ExecutionService: Sendable {
    public let runtime: SandboxRuntime
    public let policy: PolicyService
    public let scheduler: Scheduler
    public let recorder: ExecutionRecorder
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

    public init(
        runtime: SandboxRuntime, limits: ExecLimitsConfiguration, policy: PolicyService, scheduler: Scheduler,
        recorder: ExecutionRecorder, logger: Logger
    ) {
        self.runtime = runtime
        self.recorder = recorder
        self.limits = Mutex(limits)
        self.policy = policy
        self.scheduler = scheduler
        self.logger = logger
    }

    public func updateLimits(_ newLimits: ExecLimitsConfiguration) { limits.withLock { $0 = newLimits } }

    /// Running, queued and approval-waiting calls; per user for admins.
    public func counts(perUser: Bool) -> ExecutionCounts {
        let scheduled = scheduler.counts()
        let waiting = policy.approvals.counts()
        var users: [UserExecutionCounts]? = nil
        if perUser {
            var byUID: [UInt32: UserExecutionCounts] = [:]
            for (uid, c) in scheduled.perUser {
                byUID[uid] = UserExecutionCounts(uid: uid, user: c.user, running: c.running, queued: c.queued, pendingApproval: 0)
            }
            for (uid, w) in waiting {
                byUID[uid, default: UserExecutionCounts(uid: uid, user: w.user, running: 0, queued: 0, pendingApproval: 0)]
                    .pendingApproval = w.count
            }
            users = byUID.values.sorted { $0.uid < $1.uid }
        }
        return ExecutionCounts(
            running: scheduled.running, queued: scheduled.queued, pendingApproval: waiting.values.reduce(0) { $0 + $1.count },
            perUser: users)
    }

    /// Checks a request (from `exec` or a tool call) and resolves it into what the sandbox runs: the
    /// environment laid over the base one, and each limit the smallest of what the request asks, the
    /// tool's own value, the policy maximum and the daemon's maximum — else the daemon's default (within
    /// the policy maximum). Asking above the daemon's or the policy's maximum is refused naming it.
    public func resolve(
        _ request: ExecutionRequest, executionID: String, caps: PolicyLimitCaps = PolicyLimitCaps()
    ) throws(RPCError) -> SandboxSpec {
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
            let cap = caps.caps[name]
            var maximum = limit.maximum
            if let cap, cap.value < UInt64(maximum) { maximum = T(cap.value) }
            guard let value else {
                // A tool's own limit was written against whatever maxima applied then: clamp, never refuse.
                if let fallback { return min(max(fallback, minimum), maximum) }
                return min(limit.defaultValue, maximum)
            }
            if value > limit.maximum {
                errors.append(ParamError(path: path, message: "\(name) \(value) is above the maximum of \(limit.maximum)"))
            } else if let cap, UInt64(value) > cap.value {
                errors.append(
                    ParamError(path: path, message: "\(name) \(value) is above the policy maximum of \(cap.value) (\(cap.rule))"))
            } else if value < minimum {
                errors.append(ParamError(path: path, message: "\(name) \(value) is below the minimum of \(minimum)"))
            }
            // The tool's own limit caps what a caller asks for.
            if let fallback { return min(value, max(fallback, minimum)) }
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

    /// Runs one admitted request (from `exec` or a tool call attempt) to its result, with the raw
    /// (redacted) stdout for callers that type it. In order: resolve (limits, validation), approval when
    /// `admission` asks for it, a scheduler slot, the sandbox, redaction. `onStart` receives the id when
    /// the execution starts (after approval and queueing); `onOutput` receives output as it arrives,
    /// redacted. `exec.cancel` or cancelling the calling task cancels at any stage: waiting calls fail
    /// `cancelled`; a running one ends with status `cancelled`.
    public func execute(
        _ request: ExecutionRequest, caller: CallerIdentity, admission: Admission,
        onStart: (@Sendable (String) -> Void)? = nil,
        onOutput: (@Sendable (String, OutputStreamName, [UInt8]) -> Void)?
    ) async throws(RPCError) -> (result: ExecResult, stdout: [UInt8]) {
        let executionID = Self.newExecutionID()
        let authorization = admission.authorization
        let spec = try resolve(request, executionID: executionID, caps: authorization.policy.limitCaps)
        // Registered before the client can learn the id (exec.pending_approval, exec.started), so an
        // immediate exec.cancel finds it.
        let handle = RunHandle()
        running.withLock { $0[executionID] = RunningExecution(ownerUID: caller.uid, cancel: { handle.cancel() }) }
        defer { _ = running.withLock { $0.removeValue(forKey: executionID) } }
        let pipeline = Task { () async -> Result<(ExecResult, [UInt8]), RPCError> in
            do throws(RPCError) {
                return .success(
                    try await self.admitAndRun(
                        spec, caller: caller, admission: admission, onStart: onStart, onOutput: onOutput))
            } catch {
                return .failure(error)
            }
        }
        handle.attach(pipeline)
        let outcome = await withTaskCancellationHandler {
            await pipeline.value
        } onCancel: {
            pipeline.cancel()
        }
        // A refusal after the id existed (approval, queue, records) names it: the caller may have seen it.
        return try outcome.mapError { $0.with(executionID: executionID) }.get()
    }

    private func admitAndRun(
        _ spec: SandboxSpec, caller: CallerIdentity, admission: Admission,
        onStart: (@Sendable (String) -> Void)?,
        onOutput: (@Sendable (String, OutputStreamName, [UInt8]) -> Void)?
    ) async throws(RPCError) -> (ExecResult, [UInt8]) {
        let executionID = spec.executionID
        let authorization = admission.authorization
        var log = logger
        log[metadataKey: "toold.execution_id"] = "\(executionID)"
        if admission.askApproval, let rule = authorization.approvalRule {
            let redactor = authorization.policy.redactor
            let request = ApprovalBook.Request(
                executionID: executionID, method: admission.method, tool: authorization.tool, caller: caller,
                arguments: await redactor.redactOffloading(admission.arguments), rule: rule)
            log.info("waiting for approval", metadata: ["toold.uid": "\(caller.uid)", "toold.tool": "\(authorization.tool)", "toold.rule": "\(rule)"])
            try await policy.approvals.wait(request, timeoutMs: policy.approvalTimeoutMs) { expiresInMs in
                admission.onPendingApproval?(PendingApprovalNote(executionID: executionID, tool: authorization.tool, rule: rule, expiresInMs: expiresInMs))
            }
        }
        // A `parallel: false` tool's gate is taken after approval, so a call waiting for an admin holds
        // nobody else up.
        guard let gate = admission.gate else {
            return try await scheduleAndRun(spec, caller: caller, admission: admission, onStart: onStart, onOutput: onOutput)
        }
        await gate.acquire()
        let outcome: Result<(ExecResult, [UInt8]), RPCError>
        do {
            outcome = .success(
                try await scheduleAndRun(spec, caller: caller, admission: admission, onStart: onStart, onOutput: onOutput))
        } catch {
            outcome = .failure(error)
        }
        await gate.release()
        return try outcome.get()
    }

    private func scheduleAndRun(
        _ spec: SandboxSpec, caller: CallerIdentity, admission: Admission,
        onStart: (@Sendable (String) -> Void)?,
        onOutput: (@Sendable (String, OutputStreamName, [UInt8]) -> Void)?
    ) async throws(RPCError) -> (ExecResult, [UInt8]) {
        let executionID = spec.executionID
        let authorization = admission.authorization
        var log = logger
        log[metadataKey: "toold.execution_id"] = "\(executionID)"
        let slot = try await scheduler.acquire(
            uid: caller.uid, user: caller.user, concurrency: authorization.policy.concurrency?.value)
        defer { slot.release() }
        if Task.isCancelled { throw .cancelled("cancelled before it started") }

        let redactor = authorization.policy.redactor
        // In the history before anything runs; a call that cannot be recorded does not run.
        let start = await admission.start(executionID: executionID, caller: caller)
        // Redacting the arguments may have waited for a redaction thread.
        if Task.isCancelled { throw .cancelled("cancelled before it started") }
        try recorder.started(start)
        let streams = onOutput.map { _ in (StreamRedactor(redactor), StreamRedactor(redactor)) }
        let sink: @Sendable (SandboxStream, [UInt8]) -> Void = { stream, bytes in
            guard let onOutput else { return }
            guard let (out, err) = streams, !redactor.isEmpty else {
                onOutput(executionID, stream == .stdout ? .stdout : .stderr, bytes)
                return
            }
            let released = (stream == .stdout ? out : err).feed(bytes)
            if !released.isEmpty { onOutput(executionID, stream == .stdout ? .stdout : .stderr, released) }
        }
        onStart?(executionID)
        log.debug("execution started", metadata: ["toold.uid": "\(caller.uid)", "toold.argv0": "\(spec.argv[0])", "toold.queued_ms": "\(slot.queuedMs)"])
        let runtime = self.runtime
        let run = Task { await runtime.run(spec, onOutput: sink) }
        let outcome = await withTaskCancellationHandler {
            await run.value
        } onCancel: {
            run.cancel()
        }
        if let onOutput, let (out, err) = streams, !redactor.isEmpty {
            // What a multi-line pattern held back goes out before the response.
            for (name, filter) in [(OutputStreamName.stdout, out), (.stderr, err)] {
                let rest = await redactor.offloading(bytes: filter.heldBytes) { filter.rest(redactedWith: $0) }
                if !rest.isEmpty { onOutput(executionID, name, rest) }
            }
        }
        let (out, err) = await redactor.offloading(bytes: outcome.stdout.count + outcome.stderr.count) { redactor in
            (redactor.redact(outcome.stdout), redactor.redact(outcome.stderr))
        }
        let (stdout, stdoutHits) = out
        let (stderr, stderrHits) = err
        var result = Self.result(executionID: executionID, outcome, stdout: stdout, stderr: stderr)
        result.queuedMs = slot.queuedMs
        let hits = stdoutHits + stderrHits.filter { !stdoutHits.contains($0) }
        result.redacted = hits.isEmpty ? nil : hits
        if admission.recordsFinish {
            recorder.finished(executionID, ExecutionOutcome(result, status: ExecutionStatus(result.status), attempts: admission.attempt))
        }
        log.info(
            "execution finished",
            metadata: [
                "toold.uid": "\(caller.uid)", "toold.status": "\(outcome.status.rawValue)", "toold.tool": "\(authorization.tool)",
                "toold.duration_ms": "\(outcome.durationMs)", "toold.queued_ms": "\(slot.queuedMs)",
            ])
        return (result, stdout)
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

    /// A fresh execution id: `ex_` + 32 hex digits.
    /// `ex_` and 128 random bits in hex, from getrandom(2) through SystemRandomNumberGenerator (Foundation's
    /// UUID() opens and reads /dev/urandom on every call, tens of microseconds on a call's path).
    public static func newExecutionID() -> String {
        var generator = SystemRandomNumberGenerator()
        var id = "ex_"
        for _ in 0..<2 {
            let hex = String(generator.next() as UInt64, radix: 16)
            id += String(repeating: "0", count: 16 - hex.count) + hex
        }
        return id
    }

    static func result(executionID: String, _ outcome: SandboxOutcome, stdout: [UInt8], stderr: [UInt8]) -> ExecResult {
        let (stdout, stdoutEncoding) = encode(stdout)
        let (stderr, stderrEncoding) = encode(stderr)
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

    /// An `exec` request: stdin from `stdin` or `stdin_base64`, in the requested mode (default `sandbox`).
    public init(_ params: ExecParams) {
        self.init(
            argv: params.argv, environment: params.env ?? [:], workingDirectory: params.cwd,
            timeoutMs: params.timeoutMs, limits: params.limits ?? ExecLimits(), mode: IsolationMode(params.mode ?? .sandbox))
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
    private let state = Mutex<(task: (any CancellableTask)?, cancelled: Bool)>((nil, false))

    func attach(_ task: some CancellableTask) {
        let cancelled = state.withLock { s -> Bool in
            s.task = task
            return s.cancelled
        }
        if cancelled { task.cancel() }
    }

    func cancel() {
        let task = state.withLock { s -> (any CancellableTask)? in
            s.cancelled = true
            return s.task
        }
        task?.cancel()
    }
}

/// A task that can be cancelled, whatever it returns.
protocol CancellableTask: Sendable {
    func cancel()
}
extension Task: CancellableTask {}

/// What policy decided for a call, and how to ask for approval when it must.
public struct Admission: Sendable {
    public var authorization: Authorization
    /// Ask an admin before running (the first attempt of a call that needs approval; never a retry).
    public var askApproval: Bool
    /// `exec` or `tools.call`, for `approvals.list`.
    public var method: String
    /// The call's arguments as an admin should see them (redacted on the way).
    public var arguments: JSONValue
    /// Tells the caller it waits for an admin.
    public var onPendingApproval: (@Sendable (PendingApprovalNote) -> Void)?
    /// A `parallel: false` tool's gate: taken after approval, released when the execution ends.
    var gate: SerialGate?
    /// The JSON-RPC id of the request, for the records.
    public var requestID: JSONValue?
    /// Which attempt of the call this is (tool retries), for the records.
    public var attempt = 1
    /// Whether `execute` records the end; false when the caller records it itself (a tool call records
    /// its own status, e.g. `invalid_output`).
    public var recordsFinish = true

    public init(
        authorization: Authorization, askApproval: Bool = true, method: String, arguments: JSONValue,
        requestID: JSONValue?, onPendingApproval: (@Sendable (PendingApprovalNote) -> Void)?
    ) {
        self.authorization = authorization
        self.askApproval = askApproval
        self.method = method
        self.arguments = arguments
        self.requestID = requestID
        self.onPendingApproval = onPendingApproval
    }

    /// The history's start record of this call under `executionID` (arguments redacted).
    public func start(executionID: String, caller: CallerIdentity) async -> ExecutionStart {
        let arguments = await authorization.policy.redactor.redactOffloading(arguments)
        return ExecutionStart(
            executionID: executionID, requestID: requestID, method: ExecutionMethod(rawValue: method) ?? .exec,
            tool: authorization.tool, caller: caller, startedAt: .now(),
            arguments: arguments, decision: authorization.decision.verdict.rawValue,
            rule: authorization.approvalRule ?? authorization.decision.rule)
    }
}

/// What `exec.pending_approval` tells the caller.
public struct PendingApprovalNote: Sendable {
    public var executionID: String
    /// The tool's canonical name (not a provider alias the caller may have used).
    public var tool: String
    public var rule: String
    public var expiresInMs: Int
}
