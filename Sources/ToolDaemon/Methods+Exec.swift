import Foundation
import ToolEngine
import ToolProtocol

extension Dispatcher {
    /// `exec` and `exec.cancel`. Streamed executions send `exec.started`, then `exec.output` in order.
    static func execRoutes(executions: ExecutionService) -> [String: MethodHandler] {
        [
            RPCMethod.exec: { params, context throws(RPCError) in
                let params = try ParamsDecoding.decode(ExecParams.self, from: params)
                let (onStart, onOutput) = context.streamingCallbacks(enabled: params.stream == true)
                let result = try await executions.execute(params, caller: context.caller, onStart: onStart, onOutput: onOutput)
                return try encodeResult(result)
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

extension RequestContext {
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
