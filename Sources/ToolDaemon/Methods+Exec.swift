import Foundation
import ToolEngine
import ToolProtocol

extension Dispatcher {
    /// `exec` and `exec.cancel`. Streamed executions send `exec.started`, then `exec.output` in order.
    static func execRoutes(executions: ExecutionService) -> [String: MethodHandler] {
        [
            RPCMethod.exec: { params, context throws(RPCError) in
                let params = try ParamsDecoding.decode(ExecParams.self, from: params)
                let connection = context.connection
                var onStart: (@Sendable (String) -> Void)? = nil
                var onOutput: (@Sendable (String, OutputStreamName, [UInt8]) -> Void)? = nil
                if params.stream == true && !context.isNotification {
                    onStart = { id in
                        connection.sendNotification(method: RPCMethod.execStarted, params: ["execution_id": .string(id)])
                    }
                    onOutput = { id, name, bytes in
                        let note = ExecOutputNotification(executionId: id, stream: name, bytes: bytes)
                        if let json = try? JSONCoding.toJSON(note) {
                            connection.sendNotification(method: RPCMethod.execOutput, params: json)
                        }
                    }
                }
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
