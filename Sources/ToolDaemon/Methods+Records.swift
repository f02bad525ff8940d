import Foundation
import ToolEngine
import ToolProtocol
import ToolRecords

extension Dispatcher {
    /// `executions.list`, `executions.get`, `metrics.get`: the history and the figures. Users see their own
    /// records; admins see everyone's (the store enforces it). SQLite reads block: they run off the
    /// cooperative pool, on the records queue.
    static func recordRoutes(recorder: ExecutionRecorder) -> [String: MethodHandler] {
        let store: @Sendable () throws(RPCError) -> RecordStore = { () throws(RPCError) in
            guard let store = recorder.store else {
                throw .internalError("records are off on this daemon (records.enabled is false)")
            }
            return store
        }
        return [
            RPCMethod.executionsList: { params, context throws(RPCError) in
                let params = try ParamsDecoding.decode(ExecutionsListParams.self, from: params)
                let store = try store()
                return try await RecordsQueue.run { () throws(RPCError) in
                    try encodeResult(try answering { () throws(RecordError) in try store.list(params, viewer: context.caller) })
                }
            },
            RPCMethod.executionsGet: { params, context throws(RPCError) in
                let params = try ParamsDecoding.decode(ExecutionsGetParams.self, from: params)
                let store = try store()
                return try await RecordsQueue.run { () throws(RPCError) in
                    try encodeResult(try answering { () throws(RecordError) in try store.get(params.executionId, viewer: context.caller) })
                }
            },
            RPCMethod.metricsGet: { params, context throws(RPCError) in
                let params = try ParamsDecoding.decode(MetricsGetParams.self, from: params)
                let store = try store()
                return try await RecordsQueue.run { () throws(RPCError) in
                    try encodeResult(try answering { () throws(RecordError) in try store.metrics(params, viewer: context.caller, now: .now()) })
                }
            },
        ]
    }
}

/// Where blocking record reads run: a concurrent dispatch queue, so a slow query never holds one of the
/// few cooperative threads that every request shares.
enum RecordsQueue {
    static let queue = DispatchQueue(label: "toold.records", qos: .utility, attributes: .concurrent)

    static func run(_ body: @escaping @Sendable () throws(RPCError) -> JSONValue) async throws(RPCError) -> JSONValue {
        let result: Result<JSONValue, RPCError> = await withCheckedContinuation { continuation in
            queue.async {
                do throws(RPCError) {
                    continuation.resume(returning: .success(try body()))
                } catch {
                    continuation.resume(returning: .failure(error))
                }
            }
        }
        return try result.get()
    }
}

/// A store call with its error as the JSON-RPC error a client gets (`RecordError.rpcError`, one mapping).
func answering<T>(_ body: () throws(RecordError) -> T) throws(RPCError) -> T {
    do {
        return try body()
    } catch {
        throw error.rpcError
    }
}
