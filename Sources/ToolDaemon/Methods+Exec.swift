import Foundation
import ToolEngine
import ToolProtocol
import ToolRecords

extension Dispatcher {
    /// `exec` and `exec.cancel`. Streamed executions send `exec.started`, then `exec.output` in order.
    /// `exec` is policy's built-in tool `exec` (its category and risk), in the requested mode.
    static func execRoutes(executions: ExecutionService, registry: ToolRegistry) -> [String: MethodHandler] {
        [
            RPCMethod.exec: { params, context throws(RPCError) in
                let params = try ParamsDecoding.decode(ExecParams.self, from: params)
                return try await context.recordingRefusal(
                    .exec, tool: "exec", arguments: params.approvalView, executions: executions
                ) { () throws(RPCError) in
                    var facts =
                        registry.tool(named: "exec")?.policyFacts
                        ?? PolicyToolFacts(name: "exec", category: .system, risk: .high, mode: .sandbox, requiresApproval: false)
                    facts.mode = params.mode ?? .sandbox
                    let authorization = try await executions.policy.authorizeOffloading(context.caller, tool: facts) {
                        params.policyStrings
                    }
                    let (onStart, onOutput) = context.streamingCallbacks(enabled: params.stream == true)
                    let admission = Admission(
                        authorization: authorization, method: RPCMethod.exec, arguments: params.approvalView,
                        requestID: context.requestID, onPendingApproval: context.pendingApprovalCallback())
                    let (result, _) = try await executions.execute(
                        ExecutionRequest(params), caller: context.caller, admission: admission, onStart: onStart, onOutput: onOutput)
                    return try encodeResult(result)
                }
            },
            RPCMethod.execCancel: { params, context throws(RPCError) in
                let params = try ParamsDecoding.decode(ExecCancelParams.self, from: params)
                let cancelled = try executions.cancel(executionID: params.executionId, caller: context.caller)
                return try encodeResult(ExecCancelResult(cancelled: cancelled))
            },
        ]
    }
}

/// Sends a streamed execution's progress to its connection: `exec.started {execution_id}` first, then
/// `exec.output` chunks in order.
typealias StartCallback = @Sendable (String) -> Void
typealias OutputCallback = @Sendable (String, OutputStreamName, [UInt8]) -> Void

extension ExecParams {
    /// The strings deny patterns look at: argv, env (names and values), cwd, stdin.
    var policyStrings: [String] {
        var strings = argv
        for (k, v) in env ?? [:] { strings += [k, v] }
        if let cwd { strings.append(cwd) }
        if let stdin { strings.append(stdin) }
        if let data = stdinBase64.flatMap(Base64.decode), let text = String(validating: data, as: UTF8.self) { strings.append(text) }
        return strings
    }

    /// What an admin sees of the call in `approvals.list` (redacted on the way).
    var approvalView: JSONValue {
        var o: [String: JSONValue] = ["argv": .array(argv.map { .string($0) })]
        if let env { o["env"] = .object(env.mapValues { .string($0) }) }
        if let cwd { o["cwd"] = .string(cwd) }
        if let mode { o["mode"] = .string(mode.rawValue) }
        if let stdin { o["stdin_bytes"] = .int(Int64(stdin.utf8.count)) }
        return .object(o)
    }
}

extension RequestContext {
    /// The largest arguments (serialized JSON) a refused call's record keeps.
    static let refusedArgumentsBytes = 64 << 10

    /// About the size of `value` as JSON text (strings and keys unescaped), without writing it: this runs on
    /// the cooperative pool for every refusal, and arguments can be megabytes.
    static func textSize(_ value: JSONValue) -> Int {
        switch value {
        case .null, .bool, .int, .double: return 8
        case .string(let s): return s.utf8.count + 2
        case .array(let items): return items.reduce(2) { $0 + textSize($1) + 1 }
        case .object(let members): return members.reduce(2) { $0 + $1.key.utf8.count + 4 + textSize($1.value) }
        }
    }

    /// Runs an execution method; a refusal (an error answer) goes to the history, the audit and the
    /// journal, under the execution id the call had if it had one (at most
    /// `ExecutionRecorder.refusalsPerSecond` per uid after a burst; see there).
    func recordingRefusal(
        _ method: ExecutionMethod, tool: String, arguments: JSONValue, executions: ExecutionService,
        _ body: () async throws(RPCError) -> JSONValue
    ) async throws(RPCError) -> JSONValue {
        do {
            return try await body()
        } catch {
            let id = error.data?["execution_id"]?.stringValue ?? ExecutionService.newExecutionID()
            let redactor = executions.policy.effective(for: PolicySubject(caller)).redactor
            // Nothing ran and the caller chose the size: past a bound, the record says how big they were.
            let size = Self.textSize(arguments)
            let kept: JSONValue =
                size > Self.refusedArgumentsBytes
                ? .string("about \(size) bytes of arguments, not kept: a refused call keeps at most \(Self.refusedArgumentsBytes)")
                : await redactor.redactOffloading(arguments)
            let start = ExecutionStart(
                executionID: id, requestID: requestID, method: method, tool: tool, caller: caller, startedAt: .now(),
                arguments: kept, decision: error.code == RPCErrorCode.permissionDenied ? "deny" : nil,
                rule: error.data?["rule"]?.stringValue)
            executions.recorder.refused(start, error: error)
            throw error
        }
    }

    /// Tells the caller its call waits for an admin: `exec.pending_approval` (none for a notification).
    func pendingApprovalCallback() -> (@Sendable (PendingApprovalNote) -> Void)? {
        guard !isNotification else { return nil }
        let connection = self.connection
        return { note in
            connection.sendNotification(
                method: RPCMethod.execPendingApproval,
                params: [
                    "execution_id": .string(note.executionID), "tool": .string(note.tool), "rule": .string(note.rule),
                    "expires_in_ms": .int(Int64(note.expiresInMs)),
                ])
        }
    }

    /// The callbacks for `stream: true` (none for a notification: nobody would read them).
    func streamingCallbacks(enabled: Bool) -> (StartCallback?, OutputCallback?) {
        guard enabled && !isNotification else { return (nil, nil) }
        let connection = self.connection
        return (
            { id in connection.sendNotification(method: RPCMethod.execStarted, params: ["execution_id": .string(id)]) },
            { id, stream, bytes in
                let note = ExecOutputNotification(executionId: id, stream: stream, bytes: bytes)
                var params: [String: JSONValue] = ["execution_id": .string(id), "stream": .string(stream.rawValue)]
                if let text = note.data { params["data"] = .string(text) }
                if let encoded = note.dataBase64 { params["data_base64"] = .string(encoded) }
                connection.sendNotification(method: RPCMethod.execOutput, params: .object(params))
            }
        )
    }
}
