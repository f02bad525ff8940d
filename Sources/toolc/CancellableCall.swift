import ArgumentParser
import ToolClient
import ToolProtocol

/// A call that may take long (`exec`, `tools.call`): it may wait for an admin's approval, for a sandbox
/// in the queue, and then run. While it waits for approval the person is told so on stderr
/// (`exec.pending_approval`); Ctrl-C (SIGINT/SIGTERM) cancels it with `exec.cancel` and the execution id
/// the daemon announced (`exec.pending_approval` or `exec.started`). Without an id yet, toolc just leaves:
/// closing the connection cancels whatever it started.
struct CancellableCall {
    let client: ToolClient
    let method: String
    let params: JSONValue

    /// Sends the call and returns its result. Other notifications go to `onNotification`. Errors become
    /// toolc's exit codes (with the daemon's reason on stderr; with `reportingArgumentErrors`, every
    /// `data.errors` entry on its own line); after Ctrl-C it always exits `cancelled`.
    func run(reportingArgumentErrors: Bool = false, onNotification: @escaping (RPCRequest) -> Void = { _ in }) throws -> JSONValue {
        client.interruptFD = InterruptPipe.install()
        var executionID: String?
        client.onNotification = { note in
            switch note.method {
            case RPCMethod.execStarted:
                executionID = note.params?["execution_id"]?.stringValue
            case RPCMethod.execPendingApproval:
                executionID = note.params?["execution_id"]?.stringValue
                printError(Self.pendingLine(note.params))
            default:
                break
            }
            onNotification(note)
        }
        let id: JSONValue
        do {
            id = try client.send(method, params: params)
        } catch {
            throw report(error, reportingArgumentErrors)
        }
        do {
            return try client.wait(for: id)
        } catch .interrupted {
            client.interruptFD = -1
        } catch {
            throw report(error, reportingArgumentErrors)
        }
        try cancel(id, executionID)
    }

    private func report(_ error: ClientError, _ argumentErrors: Bool) -> ExitCode {
        if argumentErrors, case .rpc(let rpc) = error, let details = rpc.data?["errors"]?.arrayValue, details.count > 1 {
            // The one-line message names three; a person fixing arguments wants every one.
            printError("toolc: \(rpc.message)")
            for d in details { printError("  \(d["path"]?.stringValue ?? ""): \(d["message"]?.stringValue ?? "")") }
            return ExitCode(ExitCodes.rejected)
        }
        return fail(error)
    }

    /// Ctrl-C: asks the daemon to cancel, waits for the call's answer, and exits `cancelled`. A call still
    /// waiting (for approval, in the queue) answers with the daemon's reason, which is printed.
    private func cancel(_ id: JSONValue, _ executionID: String?) throws -> Never {
        var message = "cancelled"
        if let executionID {
            _ = try? client.send(RPCMethod.execCancel, params: ["execution_id": .string(executionID)])
            do {
                _ = try client.wait(for: id)
            } catch .rpc(let error) where error.code == RPCErrorCode.cancelled {
                message = error.message
            } catch {}
        }
        printError("toolc: \(message)")
        throw ExitCode(ExitCodes.cancelled)
    }

    /// "waiting for an admin's approval (rule …); execution id …; expires in …s — Ctrl-C cancels"
    static func pendingLine(_ params: JSONValue?) -> String {
        let rule = params?["rule"]?.stringValue ?? "?"
        let id = params?["execution_id"]?.stringValue ?? "?"
        let seconds = ((params?["expires_in_ms"]?.int64Value ?? 0) + 999) / 1000
        return "toolc: waiting for an admin's approval (rule \(rule)); execution id \(id); expires in \(seconds)s — Ctrl-C cancels"
    }
}
