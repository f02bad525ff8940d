import Foundation
import Logging
import ToolEngine
import ToolProtocol

/// Routes each request to its method and maps every failure to a JSON-RPC error in one place.
/// Handlers receive the caller's identity; there is no anonymous path.
final class Dispatcher: Sendable {
    let executions: ExecutionService
    let startedAt: ContinuousClock.Instant
    let logger: Logger
    /// Set once the server exists; used to refuse new work while draining.
    private let drainingCheck: @Sendable () -> Bool

    init(executions: ExecutionService, logger: Logger, draining: @escaping @Sendable () -> Bool) {
        self.executions = executions
        self.startedAt = .now
        self.logger = logger
        self.drainingCheck = draining
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
        do {
            switch request.method {
            case RPCMethod.daemonStatus:
                _ = try ParamsDecoding.decode(NoParams.self, from: request.params)
                return .success(try encode(status(caller: caller)))
            case RPCMethod.exec:
                let params = try ParamsDecoding.decode(ExecParams.self, from: request.params)
                let stream = params.stream == true && !request.isNotification
                var onOutput: (@Sendable (String, OutputStreamName, [UInt8]) -> Void)? = nil
                var onStart: (@Sendable (String) -> Void)? = nil
                if stream {
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
                let result = try await executions.execute(params, caller: caller, onStart: onStart, onOutput: onOutput)
                return .success(try encode(result))
            case RPCMethod.execCancel:
                let params = try ParamsDecoding.decode(ExecCancelParams.self, from: request.params)
                let cancelled = try executions.cancel(executionID: params.executionId, caller: caller)
                return .success(try encode(ExecCancelResult(cancelled: cancelled)))
            default:
                return .failure(.methodNotFound(request.method))
            }
        } catch {
            return .failure(error)
        }
    }

    func status(caller: CallerIdentity) -> DaemonStatusResult {
        let runtime = executions.runtime
        return DaemonStatusResult(
            version: TooldVersion.current,
            uptimeMs: Int64((ContinuousClock.now - startedAt) / .milliseconds(1)),
            pid: getpid(),
            caller: caller,
            cgroup: CgroupStatus(layout: runtime.cgroupLayout.rawValue, controllers: runtime.usableControllers),
            sandbox: SandboxFeatures(userNamespaces: runtime.userNamespacesAvailable, seccomp: runtime.seccompAvailable),
            executions: executions.counts)
    }

    /// Result types always encode; a failure here is a bug, reported without a stack trace.
    private func encode<T: Encodable>(_ value: T) throws(RPCError) -> JSONValue {
        do {
            return try JSONCoding.toJSON(value)
        } catch {
            logger.error("cannot encode a result", metadata: ["toold.error": "\(error)"])
            throw .internalError("the result could not be encoded")
        }
    }
}
