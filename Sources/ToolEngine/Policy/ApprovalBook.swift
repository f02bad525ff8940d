import Synchronization
import ToolProtocol

/// Calls waiting for an admin's approval. A waiting call is listed by `approvals.list`, decided by
/// `approvals.decide` (by an admin other than its caller: nobody approves their own call), expires after
/// the policy's `approval_timeout_ms`, and leaves when its task is cancelled (`exec.cancel`, disconnect).
public final class ApprovalBook: Sendable {
    /// What an admin sees of a waiting call.
    public struct Request: Sendable {
        public var executionID: String
        public var method: String
        public var tool: String
        public var caller: CallerIdentity
        /// Redacted.
        public var arguments: JSONValue
        public var rule: String
        public init(executionID: String, method: String, tool: String, caller: CallerIdentity, arguments: JSONValue, rule: String) {
            self.executionID = executionID
            self.method = method
            self.tool = tool
            self.caller = caller
            self.arguments = arguments
            self.rule = rule
        }
    }

    private struct Pending {
        var request: Request
        var requestedAt: Int64
        var expiresAt: Int64
        var continuation: CheckedContinuation<Void, any Error>?
        var timer: Task<Void, Never>?
        /// A decision that arrived before the waiting task parked.
        var early: Result<Void, any Error>?
    }
    private enum Outcome: Error {
        case denied(by: String, reason: String?)
        case expired
        case cancelled
    }

    private let pending = Mutex<[String: Pending]>([:])
    private let clock: any PolicyClock

    public init(clock: any PolicyClock) { self.clock = clock }

    /// Waits until an admin approves. `onPending` runs once the call is listed (tell the caller).
    /// Throws `approval denied` (denied or expired) or `cancelled`.
    public func wait(
        _ request: Request, timeoutMs: Int, onPending: @Sendable (Int) -> Void
    ) async throws(RPCError) {
        let now = clock.nowMs
        let id = request.executionID
        let expiresAt = now + Int64(timeoutMs)
        pending.withLock { $0[id] = Pending(request: request, requestedAt: now, expiresAt: expiresAt) }
        onPending(timeoutMs)
        do {
            try await withTaskCancellationHandler {
                try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                    let early = pending.withLock { p -> Result<Void, any Error>? in
                        guard let entry = p[id] else { return .failure(Outcome.cancelled) }
                        if let decided = entry.early {
                            p.removeValue(forKey: id)
                            return decided
                        }
                        if Task.isCancelled {
                            p.removeValue(forKey: id)
                            return .failure(Outcome.cancelled)
                        }
                        p[id]?.continuation = continuation
                        return nil
                    }
                    switch early {
                    case .some(let outcome): continuation.resume(with: outcome)
                    case .none:
                        let timer = Task { [clock] in
                            guard (try? await clock.sleep(untilMs: expiresAt)) != nil else { return }
                            self.finish(id, .failure(Outcome.expired))
                        }
                        let keep = pending.withLock { p -> Bool in
                            guard p[id] != nil else { return false }
                            p[id]?.timer = timer
                            return true
                        }
                        if !keep { timer.cancel() }
                    }
                }
            } onCancel: {
                finish(id, .failure(Outcome.cancelled))
            }
        } catch Outcome.denied(let by, let reason) {
            throw .approvalDenied("\(by) denied the call\(reason.map { ": \($0)" } ?? "")", expired: false, decidedBy: by)
        } catch Outcome.expired {
            throw .approvalDenied("nobody decided within \(timeoutMs) ms; the request expired", expired: true)
        } catch {
            throw .cancelled("cancelled while waiting for approval")
        }
    }

    /// An admin's decision. Unknown (or already decided/expired) ids are `not found`.
    public func decide(_ params: ApprovalsDecideParams, by admin: CallerIdentity) throws(RPCError) -> ApprovalsDecideResult {
        guard admin.admin else { throw .permissionDenied("only admins may decide approvals") }
        guard let entry = pending.withLock({ $0[params.executionId] }) else {
            throw .notFound("no call waits for approval with execution id \(params.executionId)")
        }
        guard entry.request.caller.uid != admin.uid else {
            throw .permissionDenied("a call cannot be approved or denied by its own caller; another admin must decide")
        }
        let outcome: Result<Void, any Error> =
            params.approve ? .success(()) : .failure(Outcome.denied(by: admin.user, reason: params.reason))
        guard finish(params.executionId, outcome) else {
            throw .notFound("the call \(params.executionId) was decided, expired or cancelled meanwhile")
        }
        return ApprovalsDecideResult(executionId: params.executionId, approved: params.approve)
    }

    /// Resolves a waiting call once; false when it already left.
    @discardableResult
    private func finish(_ id: String, _ outcome: Result<Void, any Error>) -> Bool {
        var parkedLater = false
        let entry = pending.withLock { p -> Pending? in
            guard let entry = p[id], entry.early == nil else { return nil }
            if entry.continuation == nil {
                p[id]?.early = outcome  // applied when the waiting task parks
                parkedLater = true
                return nil
            }
            return p.removeValue(forKey: id)
        }
        guard let entry, let continuation = entry.continuation else { return parkedLater }
        entry.timer?.cancel()
        continuation.resume(with: outcome)
        return true
    }

    /// Every waiting call, oldest first.
    public func list() -> [PendingApproval] {
        let now = clock.nowMs
        return pending.withLock { p in
            p.values.filter { $0.early == nil }.sorted { $0.requestedAt < $1.requestedAt }.map { e in
                PendingApproval(
                    executionId: e.request.executionID, method: e.request.method, tool: e.request.tool,
                    user: e.request.caller.user, uid: e.request.caller.uid, arguments: e.request.arguments,
                    rule: e.request.rule, waitedMs: Int(now - e.requestedAt), expiresInMs: Int(max(0, e.expiresAt - now)))
            }
        }
    }

    /// Waiting calls per uid.
    public func counts() -> [UInt32: (user: String, count: Int)] {
        pending.withLock { p in
            var result: [UInt32: (user: String, count: Int)] = [:]
            for e in p.values where e.early == nil { result[e.request.caller.uid, default: (e.request.caller.user, 0)].count += 1 }
            return result
        }
    }
}
