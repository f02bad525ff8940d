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

    /// Checks a request and resolves it into what the sandbox runs. Throws invalid-params errors naming
    /// the field, and for limits above their maximum, the maximum.
    public func resolve(_ params: ExecParams, executionID: String) throws(RPCError) -> SandboxSpec {
        var errors: [ParamError] = []
        if params.argv.isEmpty { errors.append(ParamError(path: "/argv", message: "must hold at least the command")) }
        for (i, arg) in params.argv.enumerated() where arg.utf8.contains(0) {
            errors.append(ParamError(path: "/argv/\(i)", message: "must not contain a NUL byte"))
        }
        if params.argv.first?.isEmpty == true { errors.append(ParamError(path: "/argv/0", message: "must not be empty")) }
        var environment = Self.baseEnvironment
        for (key, value) in params.env ?? [:] {
            let path = "/env/" + ParamsDecoding.escape(key)
            if key.isEmpty || key.contains("=") || key.utf8.contains(0) {
                errors.append(ParamError(path: path, message: "variable names must be non-empty, without '=' or NUL"))
            } else if value.utf8.contains(0) {
                errors.append(ParamError(path: path, message: "must not contain a NUL byte"))
            } else {
                environment[key] = value
            }
        }
        let cwd = params.cwd ?? "/workspace"
        if !cwd.hasPrefix("/") || cwd.utf8.contains(0) {
            errors.append(ParamError(path: "/cwd", message: "must be an absolute path inside the sandbox"))
        }
        var stdin: [UInt8]? = nil
        switch (params.stdin, params.stdinBase64) {
        case (let text?, nil): stdin = Array(text.utf8)
        case (nil, let encoded?):
            stdin = Base64.decode(encoded)
            if stdin == nil { errors.append(ParamError(path: "/stdin_base64", message: "is not valid base64")) }
        case (.some, .some): errors.append(ParamError(path: "/stdin", message: "give stdin or stdin_base64, not both"))
        case (nil, nil): break
        }
        let config = limits.withLock { $0 }
        let requested = params.limits ?? ExecLimits()
        func pick<T: BinaryInteger & Sendable>(
            _ name: String, _ path: String, _ value: T?, _ limit: ExecLimitsConfiguration.Limit<T>, minimum: T
        ) -> T {
            guard let value else { return limit.defaultValue }
            if value > limit.maximum {
                errors.append(ParamError(path: path, message: "\(name) \(value) is above the maximum of \(limit.maximum)"))
            } else if value < minimum {
                errors.append(ParamError(path: path, message: "\(name) \(value) is below the minimum of \(minimum)"))
            }
            return value
        }
        let timeoutMs = pick("timeout_ms", "/timeout_ms", params.timeoutMs, config.timeoutMs, minimum: 1)
        let resolved = SandboxLimits(
            memoryBytes: pick("memory_bytes", "/limits/memory_bytes", requested.memoryBytes, config.memoryBytes, minimum: 4 << 20),
            pids: pick("pids", "/limits/pids", requested.pids, config.pids, minimum: 1),
            cpuMillicores: pick("cpu_millicores", "/limits/cpu_millicores", requested.cpuMillicores, config.cpuMillicores, minimum: 10),
            outputBytes: pick("output_bytes", "/limits/output_bytes", requested.outputBytes, config.outputBytes, minimum: 0),
            fileBytes: pick("file_bytes", "/limits/file_bytes", requested.fileBytes, config.fileBytes, minimum: 0),
            tmpBytes: pick("tmp_bytes", "/limits/tmp_bytes", requested.tmpBytes, config.tmpBytes, minimum: 1 << 20)
        )
        if !errors.isEmpty { throw .invalidParams(errors) }
        return SandboxSpec(
            executionID: executionID, argv: params.argv, environment: environment, workingDirectory: cwd,
            stdin: stdin, limits: resolved, timeout: .milliseconds(timeoutMs), mode: .sandbox)
    }

    /// Runs one request to its result. `onStart` receives the execution id once the request is accepted;
    /// `onOutput` receives output as it arrives (for `stream: true`).
    /// Cancelling the calling task cancels the execution (the result then says `cancelled`).
    public func execute(
        _ params: ExecParams, caller: CallerIdentity,
        onStart: (@Sendable (String) -> Void)? = nil,
        onOutput: (@Sendable (String, OutputStreamName, [UInt8]) -> Void)?
    ) async throws(RPCError) -> ExecResult {
        let executionID = Self.newExecutionID()
        let spec = try resolve(params, executionID: executionID)
        onStart?(executionID)
        let runtime = self.runtime
        let sink: @Sendable (SandboxStream, [UInt8]) -> Void = { stream, bytes in
            onOutput?(executionID, stream == .stdout ? .stdout : .stderr, bytes)
        }
        let run = Task { await runtime.run(spec, onOutput: sink) }
        running.withLock { $0[executionID] = RunningExecution(ownerUID: caller.uid, cancel: { run.cancel() }) }
        defer { _ = running.withLock { $0.removeValue(forKey: executionID) } }
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
        return Self.result(executionID: executionID, outcome)
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
