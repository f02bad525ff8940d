import Foundation
import JSONSchema
import Logging
import Sandbox
import ToolProtocol
import ToolRecords

/// Runs `tools.call`: checks the arguments against the tool's compiled input schema, expands its command
/// (placeholders become whole argv elements or env values; the arguments go to stdin as JSON by default),
/// runs it through `ExecutionService` in the tool's isolation mode with the tool's limits as fallbacks,
/// types the output, checks it against the output schema, and retries idempotent tools as their manifest
/// says.
public final class ToolCallService: Sendable {
    public let registry: ToolRegistry
    public let executions: ExecutionService
    private let logger: Logger

    public init(registry: ToolRegistry, executions: ExecutionService, logger: Logger) {
        self.registry = registry
        self.executions = executions
        self.logger = logger
    }

    /// Runs one call to its result. Unknown tool → `-32004`; policy refusals → `-32001`/`-32002` (before
    /// anything else looks at the arguments); arguments that fail the schema → `-32602` with every error's
    /// path (`/arguments/...`); limits above the daemon's or the policy's maxima → `-32602` as for `exec`.
    /// Drops cached results of tools whose manifest changed (after a load or a registration). Entries of
    /// an old manifest can never hit (its digest is in the key); this frees their space at once.
    /// Tools no longer cacheable lose all their entries.
    public func invalidateStaleCache() {
        guard let store = executions.recorder.store else { return }
        for tool in registry.tools {
            _ = try? store.cacheInvalidate(tool: tool.name, exceptDigest: tool.manifest.cacheable == true ? tool.digest : nil)
        }
    }

    /// Drops every cached result of a tool (unregistered).
    public func invalidateCache(tool: String) {
        _ = try? executions.recorder.store?.cacheInvalidate(tool: tool, exceptDigest: nil)
    }

    /// Cacheable tools (`cacheable: true`) answer a repeated call (same tool version and manifest, same
    /// canonical arguments, same caller unless `cache_shared`) from the result cache while it is fresh,
    /// without running — checked after policy and validation, before approval and the queue.
    public func call(
        _ params: ToolCallParams, caller: CallerIdentity, requestID: JSONValue? = nil,
        onPendingApproval: (@Sendable (PendingApprovalNote) -> Void)? = nil,
        onStart: (@Sendable (String) -> Void)? = nil,
        onOutput: (@Sendable (String, OutputStreamName, [UInt8]) -> Void)? = nil
    ) async throws(RPCError) -> ToolCallResult {
        guard let tool = registry.tool(named: params.name) else {
            throw .notFound("no tool named \"\(params.name)\" (tools.list shows the tools)")
        }
        let arguments = params.arguments ?? .object([:])
        let authorization = try await executions.policy.authorizeOffloading(caller, tool: tool.policyFacts) {
            arguments.allStrings
        }
        let argumentErrors = await Self.validate(arguments, against: tool.inputSchema)
        if !argumentErrors.isEmpty {
            throw .invalidParams(argumentErrors.map { ParamError(path: "/arguments" + $0.instancePath, message: $0.message) })
        }
        var request = try tool.request(for: arguments)
        request.timeoutMs = params.timeoutMs
        request.limits = params.limits ?? ExecLimits()
        request.fallbackTimeoutMs = tool.manifest.timeoutMs
        request.fallbackLimits = tool.manifest.limits ?? ExecLimits()
        request.mode = IsolationMode(tool.mode)
        var admission = Admission(
            authorization: authorization, method: RPCMethod.toolsCall, arguments: arguments, requestID: requestID,
            onPendingApproval: onPendingApproval)
        admission.recordsFinish = false  // recorded below, with the tool's own status

        // Calls that need an admin's approval always run (and ask): a cached answer must not skip it.
        let cache =
            params.cache == false || authorization.approvalRule != nil
            ? nil : ResultCache(tool: tool, arguments: arguments, caller: caller, store: executions.recorder.store)
        if let cache, let hit = cache.lookup() {
            // The same checks as a run: limits above a maximum are refused even when nothing would run.
            _ = try executions.resolve(request, executionID: "", caps: authorization.policy.limitCaps)
            let executionID = ExecutionService.newExecutionID()
            // Redacted again with this caller's rules (a shared entry, or rules added since it was stored).
            var result = await authorization.policy.redactor.offloading(
                bytes: hit.stdout.utf8.count + hit.stderr.utf8.count
            ) { redactor in hit.redacted(with: redactor) }
            result.cachedFrom = hit.executionId
            result.executionId = executionID
            result.cached = true
            result.queuedMs = 0
            logger.info(
                "execution answered from the cache",
                metadata: [
                    "toold.execution_id": "\(executionID)", "toold.tool": "\(tool.name)", "toold.uid": "\(caller.uid)",
                    "toold.status": "\(result.status.rawValue)", "toold.cached_from": "\(hit.executionId)",
                ])
            executions.recorder.completed(
                await admission.start(executionID: executionID, caller: caller),
                ExecutionOutcome(result.execResult, status: ExecutionStatus(result.status), attempts: 1).markedCached())
            return result
        }

        admission.gate = tool.manifest.parallel == false ? registry.gate(for: tool.name) : nil
        let outcome: Result<ToolCallResult, RPCError>
        do {
            outcome = .success(try await run(tool, request, caller: caller, admission: admission, onStart: onStart, onOutput: onOutput))
        } catch {
            outcome = .failure(error)
        }
        if case .success(let result) = outcome { cache?.store(result) }
        return try outcome.get()
    }

    private func run(
        _ tool: Tool, _ request: ExecutionRequest, caller: CallerIdentity, admission: Admission,
        onStart: (@Sendable (String) -> Void)?,
        onOutput: (@Sendable (String, OutputStreamName, [UInt8]) -> Void)?
    ) async throws(RPCError) -> ToolCallResult {
        let policy = RetryPolicy(tool.manifest)
        var attempt = 1
        var admission = admission
        while true {
            let (exec, stdout) = try await executions.execute(
                request, caller: caller, admission: admission, onStart: onStart, onOutput: onOutput)
            admission.askApproval = false  // approved once for the call, not per attempt
            let output = ToolOutput(typing: stdout, truncated: exec.stdoutTruncated)
            var outputErrors: [ToolOutputError]? = nil
            // Only a successful run promises its output; a failed one is reported as its status.
            if let schema = tool.outputSchema, exec.status == .exited, exec.exitCode == 0 {
                let value = output.value
                let errors = await Self.validate(value, against: schema, maxErrors: 50, bytes: stdout.count)
                if !errors.isEmpty {
                    outputErrors = errors.map { ToolOutputError(path: $0.instancePath, schemaPath: $0.schemaPath, message: $0.message) }
                }
            }
            let result = ToolCallResult(tool: tool.name, exec: exec, attempts: attempt, output: output, outputErrors: outputErrors)
            executions.recorder.finished(
                exec.executionId, ExecutionOutcome(exec, status: ExecutionStatus(result.status), attempts: attempt))
            guard attempt < policy.maxAttempts, policy.retries(result), !Task.isCancelled else { return result }
            let delay = policy.delay(beforeAttempt: attempt + 1)
            logger.info(
                "tool attempt failed; retrying",
                metadata: [
                    "toold.tool": "\(tool.name)", "toold.execution_id": "\(exec.executionId)",
                    "toold.status": "\(result.status.rawValue)", "toold.attempt": "\(attempt)", "toold.backoff_ms": "\(delay)",
                ])
            do {
                try await Task.sleep(for: .milliseconds(delay))
            } catch {
                return result  // cancelled while backing off: the last attempt's result stands
            }
            attempt += 1
            admission.attempt = attempt
        }
    }
}

/// When and how long to wait before another attempt: only idempotent tools with `retry`; exponential
/// backoff from `initial_backoff_ms` (default 100), doubling, capped at `max_backoff_ms` (default 5000),
/// with "equal jitter" (half the delay fixed, half random) so simultaneous failures do not retry in step.
struct RetryPolicy {
    var maxAttempts = 1
    var initialMs = 100
    var capMs = 5000
    var on: Set<ToolCallStatus> = [.exited, .timeout]

    init(_ manifest: ToolManifest) {
        guard manifest.idempotent == true, let retry = manifest.retry else { return }
        maxAttempts = retry.maxAttempts
        initialMs = retry.initialBackoffMs ?? initialMs
        capMs = retry.maxBackoffMs ?? max(capMs, initialMs)
        if let statuses = retry.on { on = Set(statuses.compactMap(ToolCallStatus.init(rawValue:))) }
    }

    func retries(_ result: ToolCallResult) -> Bool {
        switch result.status {
        case .exited: return on.contains(.exited) && result.exitCode != 0
        case .cancelled: return false
        default: return on.contains(result.status)
        }
    }

    /// Milliseconds to wait before attempt `n` (n >= 2).
    func delay(beforeAttempt n: Int) -> Int {
        let exponent = min(n - 2, 30)
        let base = min(capMs, initialMs.multipliedReportingOverflow(by: 1 << exponent).overflow ? capMs : initialMs << exponent)
        let half = base / 2
        return half + Int.random(in: 0...(base - half))
    }
}

extension ToolOutput {
    /// Types stdout: one JSON text (surrounding whitespace allowed) → `json` with the parsed value; other
    /// UTF-8 → `text`; anything else → `binary` as base64. Size and digest are of the bytes as captured.
    init(typing stdout: [UInt8], truncated: Bool) {
        let type: ToolOutputType
        let value: JSONValue
        if let text = String(validating: stdout, as: UTF8.self) {
            // A truncated stream is never parsed: half a JSON text must not pass as a smaller one.
            if !truncated, !text.allSatisfy(\.isWhitespace), let parsed = try? JSONCoding.parse(stdout) {
                (type, value) = (.json, parsed)
            } else {
                (type, value) = (.text, .string(text))
            }
        } else {
            (type, value) = (.binary, .string(Base64.encode(stdout)))
        }
        self.init(type: type, value: value, sizeBytes: stdout.count, sha256: SHA256.hex(stdout), truncated: truncated)
    }
}

extension Tool {
    /// The execution request for checked arguments: argv and env with placeholders replaced, stdin per the
    /// command. Values are never split or re-parsed: a string is passed as it is; numbers, booleans,
    /// arrays and objects as their compact JSON text; an absent or null argument drops its argv element
    /// (and leaves its variable unset). Strings with NUL bytes cannot be argv or env and are refused.
    func request(for arguments: JSONValue) throws(RPCError) -> ExecutionRequest {
        let values = arguments.objectValue ?? [:]
        guard let command else {
            // The built-in `exec`: the arguments are exec params (already checked against its schema).
            do {
                var params = try JSONCoding.fromJSON(ExecParams.self, arguments)
                params.timeoutMs = nil
                params.limits = nil
                return ExecutionRequest(params)
            } catch {
                throw .invalidParams(path: "/arguments", "not valid exec params: \(error)")
            }
        }
        var errors: [ParamError] = []
        func text(_ name: String) -> String? {
            guard let value = values[name], value != .null else { return nil }
            if case .string(let s) = value {
                if s.utf8.contains(0) {
                    errors.append(
                        ParamError(
                            path: "/arguments/" + ParamsDecoding.escape(name),
                            message: "must not contain a NUL byte (it is passed as a command-line argument or variable)"))
                }
                return s
            }
            return JSONCoding.serializeString(value)
        }
        var argv: [String] = []
        for part in command.argv {
            switch part {
            case .literal(let s): argv.append(s)
            case .argument(let name): if let value = text(name) { argv.append(value) }
            }
        }
        var environment: [String: String] = [:]
        for (key, part) in command.env {
            switch part {
            case .literal(let s): environment[key] = s
            case .argument(let name): if let value = text(name) { environment[key] = value }
            }
        }
        var stdin: [UInt8]? = nil
        switch command.stdin {
        case .json: stdin = JSONCoding.serialize(arguments)
        case .none: stdin = nil
        case .argument(let name):
            // stdin may hold any bytes, NUL included: no check needed.
            if let value = values[name], value != .null {
                stdin = value.stringValue.map { Array($0.utf8) } ?? JSONCoding.serialize(value)
            }
        }
        if !errors.isEmpty { throw .invalidParams(errors) }
        return ExecutionRequest(argv: argv, environment: environment, workingDirectory: command.cwd, stdin: stdin)
    }
}

extension Tool {
    /// What policy needs to know of this tool.
    public var policyFacts: PolicyToolFacts {
        PolicyToolFacts(
            name: name, category: manifest.category, risk: manifest.risk, mode: mode,
            requiresApproval: manifest.requiresApproval == true)
    }
}

extension JSONValue {
    /// Every string inside (object keys included), for deny patterns.
    public var allStrings: [String] {
        switch self {
        case .string(let s): return [s]
        case .array(let items): return items.flatMap(\.allStrings)
        case .object(let o): return o.flatMap { [$0.key] + $0.value.allStrings }
        default: return []
        }
    }
}

extension ExecutionOutcome {
    /// A cache hit: nothing ran, so its time, CPU and memory are not counted as work.
    func markedCached() -> ExecutionOutcome {
        var outcome = self
        outcome.cached = true
        outcome.durationMs = 0
        outcome.cpuMs = 0
        outcome.memoryPeakBytes = 0
        return outcome
    }
}

/// The result cache of one call of a cacheable tool. The key is the SHA-256 of the canonical JSON of the
/// tool's name, version and manifest digest, the arguments, and the caller's uid (none when the manifest
/// says `cache_shared`), so a changed manifest or another caller never hits. Only successful results
/// (exit 0, output valid) are stored, for `cache_ttl_s` (default 3600). Any store error reads as a miss.
struct ResultCache {
    let key: String
    let tool: String
    let digest: String
    let ttlS: Int
    let store: RecordStore

    static let defaultTTLSeconds = 3600

    init?(tool: Tool, arguments: JSONValue, caller: CallerIdentity, store: RecordStore?) {
        guard tool.manifest.cacheable == true, let store else { return nil }
        ttlS = tool.manifest.cacheTtlS ?? Self.defaultTTLSeconds
        guard ttlS > 0 else { return nil }
        digest = tool.digest
        key = SHA256.hex(
            CacheKey.material(
                tool: tool.name, toolVersion: tool.manifest.version, manifestDigest: digest, arguments: arguments,
                uid: tool.manifest.cacheShared == true ? nil : caller.uid))
        self.tool = tool.name
        self.store = store
    }

    func lookup() -> ToolCallResult? {
        guard let entry = try? store.cacheGet(key: key, now: .now()) else { return nil }
        return try? JSONCoding.fromJSON(ToolCallResult.self, JSONCoding.parse(entry.result))
    }

    func store(_ result: ToolCallResult) {
        guard result.status == .exited, result.exitCode == 0, !result.stdoutTruncated else { return }
        guard let json = try? JSONCoding.toJSON(result) else { return }
        let now = Timestamp.now()
        _ = try? store.cachePut(
            key: key, tool: tool, manifestDigest: digest, result: JSONCoding.serialize(json), now: now,
            expiresAt: now.adding(milliseconds: Int64(ttlS) * 1000))
    }
}

extension Tool {
    /// SHA-256 of the manifest's canonical JSON: changes whenever anything in the manifest does.
    public var digest: String { SHA256.hex(CanonicalJSON.serialize(json)) }
}

extension ToolCallService {
    /// `schema.validate(value)`, never long on the cooperative pool (`BlockingThreads.matchingBounded`):
    /// a small value is validated inline within 5 ms; if a pattern gives up there (one that backtracks on
    /// it), or the value is large, on a matching thread with the full budget. `bytes` is the value's text
    /// size when the caller has it at hand (a tool's raw stdout).
    static func validate(
        _ value: JSONValue, against schema: CompiledSchema, maxErrors: Int = 100, bytes: Int? = nil
    ) async -> [ValidationError] {
        await BlockingThreads.matchingBounded(bytes: bytes ?? value.textBytes) {
            let quick = BlockingThreads.inlineBudget()
            let errors = schema.validate(value, maxErrors: maxErrors, budget: quick)
            // A valid answer needs no pattern to have given up; an invalid one within the budget stands.
            return errors.isEmpty || !quick.isSpent ? errors : nil
        } full: {
            schema.validate(value, maxErrors: maxErrors)
        }
    }
}

extension ToolCallResult {
    /// This result with `redactor` applied to its outputs (text and typed value).
    func redacted(with redactor: Redactor) -> ToolCallResult {
        guard !redactor.isEmpty else { return self }
        var copy = self
        var hits = redacted ?? []
        func apply(_ text: String, _ encoding: OutputEncoding) -> String {
            guard encoding == .utf8 else { return text }
            let (out, matched) = redactor.redact(text)
            for name in matched where !hits.contains(name) { hits.append(name) }
            return out
        }
        copy.stdout = apply(stdout, stdoutEncoding)
        copy.stderr = apply(stderr, stderrEncoding)
        copy.output.value = redactor.redact(output.value)
        copy.redacted = hits.isEmpty ? nil : hits
        return copy
    }
}
