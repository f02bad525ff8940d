import Foundation
import ToolEngine
import ToolProtocol
import ToolRecords

extension Dispatcher {
    /// `tools.list`, `tools.get`, `tools.schemas`, `tools.register`, `tools.unregister` (admins only) and
    /// `tools.call` (streamed calls send `exec.started` and `exec.output` per attempt, as `exec` does).
    static func toolRoutes(tools: ToolCallService) -> [String: MethodHandler] {
        let registry = tools.registry
        return [
            RPCMethod.toolsList: { params, context throws(RPCError) in
                let filter = try ParamsDecoding.decode(ToolsListParams.self, from: params)
                // Only the tools the caller may call (allowed, possibly after approval, in a permitted mode).
                let policy = tools.executions.policy.effective(for: PolicySubject(context.caller))
                let summaries = registry.tools.filter { tool in
                    let decision = policy.decide(tool.policyFacts)
                    guard decision.verdict != .deny, decision.modeAllowed else { return false }
                    let m = tool.manifest
                    return (filter.category.map { $0 == m.category } ?? true) && (filter.risk.map { $0 == m.risk } ?? true)
                        && (filter.tag.map { (m.tags ?? []).contains($0) } ?? true)
                }.map(\.summary)
                // Which files failed and why is for the people who can fix them.
                return try encodeResult(ToolsListResult(tools: summaries, skipped: context.caller.admin ? registry.skipped : nil))
            },
            RPCMethod.toolsGet: { params, _ throws(RPCError) in
                let params = try ParamsDecoding.decode(ToolNameParams.self, from: params)
                try ToolName.require(params.name)
                guard let tool = registry.tool(named: params.name) else { throw .notFound("no tool named \"\(params.name)\"") }
                return tool.json
            },
            RPCMethod.toolsSchemas: { params, _ throws(RPCError) in
                let params = try ParamsDecoding.decode(ToolsSchemasParams.self, from: params)
                return try encodeResult(
                    ToolsSchemasResult(format: params.format, tools: ToolSchemaFormats.definitions(registry.tools, format: params.format)))
            },
            RPCMethod.toolsRegister: { params, context throws(RPCError) in
                guard context.caller.admin else { throw .permissionDenied("only admins may register tools") }
                let params = try ParamsDecoding.decode(ToolsRegisterParams.self, from: params)
                let registered = try registry.register(params.manifest)
                tools.invalidateStaleCache()
                context.audit(tools.executions.recorder, method: RPCMethod.toolsRegister, action: "tool_registered", tool: registered.name)
                return try encodeResult(registered)
            },
            RPCMethod.toolsUnregister: { params, context throws(RPCError) in
                guard context.caller.admin else { throw .permissionDenied("only admins may unregister tools") }
                let params = try ParamsDecoding.decode(ToolNameParams.self, from: params)
                try registry.unregister(name: params.name)
                tools.invalidateCache(tool: params.name)
                context.audit(tools.executions.recorder, method: RPCMethod.toolsUnregister, action: "tool_unregistered", tool: params.name)
                return try encodeResult(ToolsUnregisterResult(unregistered: true))
            },
            RPCMethod.toolsCall: { params, context throws(RPCError) in
                let params = try ParamsDecoding.decode(ToolCallParams.self, from: params)
                try ToolName.require(params.name)
                return try await context.recordingRefusal(
                    .toolsCall, tool: params.name, arguments: params.arguments ?? .object([:]), executions: tools.executions
                ) { () throws(RPCError) in
                    let (onStart, onOutput) = context.streamingCallbacks(enabled: params.stream == true)
                    return try encodeResult(
                        try await tools.call(
                            params, caller: context.caller, requestID: context.requestID,
                            onPendingApproval: context.pendingApprovalCallback(), onStart: onStart,
                            onOutput: onOutput))
                }
            },
        ]
    }
}

extension RequestContext {
    /// Records an admin action of this request in the audit.
    func audit(
        _ recorder: ExecutionRecorder, method: String, action: String, tool: String? = nil, executionID: String? = nil,
        details: JSONValue = .object([:])
    ) {
        recorder.admin(
            AdminAction(
                at: .now(), requestID: requestID, caller: caller, method: method, action: action, tool: tool,
                executionID: executionID, details: details))
    }
}
