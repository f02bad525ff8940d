import Foundation
import Logging
import ToolEngine
import ToolProtocol

/// What a method handler gets besides its params: who is calling, and the connection (for notifications).
struct RequestContext: Sendable {
    let caller: CallerIdentity
    let connection: Connection
    /// True for a JSON-RPC notification (nobody will read a result).
    let isNotification: Bool
    /// The request's id (nil for a notification), for the records.
    let requestID: JSONValue?
}

/// One method: decodes its params, does its work, returns its result as JSON.
typealias MethodHandler = @Sendable (_ params: JSONValue?, _ context: RequestContext) async throws(RPCError) -> JSONValue

/// Routes each request to its method and maps every failure to a JSON-RPC error in one place.
/// Handlers receive the caller's identity; there is no anonymous path. Each feature contributes its
/// routes from its own file (`Methods+Exec.swift`, …), assembled in `init`.
final class Dispatcher: Sendable {
    let executions: ExecutionService
    let startedAt: ContinuousClock.Instant
    let logger: Logger
    private let drainingCheck: @Sendable () -> Bool
    private let routes: [String: MethodHandler]

    init(
        executions: ExecutionService, tools: ToolCallService, manualClock: ManualPolicyClock?, logger: Logger,
        draining: @escaping @Sendable () -> Bool
    ) {
        self.executions = executions
        self.startedAt = .now
        self.logger = logger
        self.drainingCheck = draining
        var routes: [String: MethodHandler] = [:]
        for (name, handler) in Self.statusRoutes(startedAt: startedAt, executions: executions)
            .merging(Self.execRoutes(executions: executions, registry: tools.registry), uniquingKeysWith: { a, _ in a })
            .merging(Self.toolRoutes(tools: tools), uniquingKeysWith: { a, _ in a })
            .merging(Self.policyRoutes(policy: executions.policy, registry: tools.registry, recorder: executions.recorder), uniquingKeysWith: { a, _ in a })
            .merging(Self.testingRoutes(manualClock: manualClock), uniquingKeysWith: { a, _ in a })
            .merging(Self.recordRoutes(recorder: executions.recorder), uniquingKeysWith: { a, _ in a })
        {
            routes[name] = handler
        }
        self.routes = routes
    }

    /// The response for one member of a frame; nil for notifications.
    func respond(to member: RPCRequestOrError, caller: CallerIdentity, connection: Connection) async -> RPCResponse? {
        switch member {
        case .invalid(let response):
            return response
        case .request(let request):
            let outcome = await handle(request, caller: caller, connection: connection)
            guard let id = request.id else { return nil }
            return RPCResponse(id: id, outcome: outcome)
        }
    }

    func handle(_ request: RPCRequest, caller: CallerIdentity, connection: Connection) async -> Result<JSONValue, RPCError> {
        if drainingCheck() { return .failure(.shuttingDown()) }
        guard let handler = routes[request.method] else { return .failure(.methodNotFound(request.method)) }
        let context = RequestContext(
            caller: caller, connection: connection, isNotification: request.isNotification, requestID: request.id)
        // Matching work the request submits (BlockingThreads) takes turns with other callers'.
        return await BlockingThreads.$owner.withValue(caller.uid) { () async -> Result<JSONValue, RPCError> in
            do throws(RPCError) {
                return .success(try await handler(request.params, context))
            } catch {
                return .failure(error)
            }
        }
    }
}

/// Result types always encode; a failure here is a bug, reported without a stack trace.
func encodeResult<T: Encodable>(_ value: T) throws(RPCError) -> JSONValue {
    do {
        return try JSONCoding.toJSON(value)
    } catch {
        throw .internalError("the result could not be encoded: \(error)")
    }
}
