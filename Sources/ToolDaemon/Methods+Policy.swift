import Foundation
import ToolEngine
import ToolProtocol

extension Dispatcher {
    /// `policy.get` (anyone for themselves; admins for any user or group), `approvals.list` and
    /// `approvals.decide` (admins).
    static func policyRoutes(policy: PolicyService, registry: ToolRegistry, recorder: ExecutionRecorder) -> [String: MethodHandler] {
        [
            RPCMethod.policyGet: { params, context throws(RPCError) in
                let params = try ParamsDecoding.decode(PolicyGetParams.self, from: params)
                let caller = context.caller
                if params.user != nil && params.group != nil {
                    throw .invalidParams(path: "/group", "give user or group, not both")
                }
                let subject: PolicySubject
                if caller.admin && (params.user != nil || params.group != nil) {
                    // NSS lookups (a named user or group) may block: on a lookup thread.
                    subject = try await BlockingThreads.lookups.run { () -> Result<PolicySubject, RPCError> in
                        Result { () throws(RPCError) in try namedPolicySubject(params, caller: caller) }
                    }.get()
                } else {
                    // Everyone else asks about itself: no lookup (a caller cannot queue lookups for others).
                    subject = try ownPolicySubject(params, caller: caller)
                }
                let view = policy.effective(for: subject).view(source: policy.source, tools: registry.tools.map(\.policyFacts))
                return try encodeResult(view)
            },
            RPCMethod.approvalsList: { params, context throws(RPCError) in
                _ = try ParamsDecoding.decode(ApprovalsListParams.self, from: params)
                guard context.caller.admin else { throw .permissionDenied("only admins may list approvals") }
                return try encodeResult(ApprovalsListResult(approvals: policy.approvals.list()))
            },
            RPCMethod.approvalsDecide: { params, context throws(RPCError) in
                let params = try ParamsDecoding.decode(ApprovalsDecideParams.self, from: params)
                let result = try policy.approvals.decide(params, by: context.caller)
                var details: [String: JSONValue] = ["approved": .bool(params.approve)]
                if let reason = params.reason { details["reason"] = .string(reason) }
                context.audit(
                    recorder, method: RPCMethod.approvalsDecide, action: "approval_decided", executionID: params.executionId,
                    details: .object(details))
                return try encodeResult(result)
            },
        ]
    }

    /// `policy.get` for a caller about itself (any caller) — its own user, or a group it is in — decided
    /// from its identity alone, without the user database. At most one of `user` and `group` is given.
    static func ownPolicySubject(_ params: PolicyGetParams, caller: CallerIdentity) throws(RPCError) -> PolicySubject {
        if let group = params.group {
            // The primary group by number is the first of the caller's group names.
            let name = UInt32(group) == caller.gid ? caller.groups.first ?? group : group
            guard caller.groups.contains(name) else {
                throw .permissionDenied("only admins may see the policy of a group they are not in")
            }
            return PolicySubject(user: "", uid: nil, groups: [name], label: "group:\(name)")
        }
        if let user = params.user, user != caller.user && UInt32(user) != caller.uid {
            throw .permissionDenied("only admins may see another user's policy")
        }
        return PolicySubject(caller)
    }

    /// `policy.get` for an admin naming a user or a group (exactly one): looked up in the user database,
    /// which may block — call it on a lookup thread.
    static func namedPolicySubject(_ params: PolicyGetParams, caller: CallerIdentity) throws(RPCError) -> PolicySubject {
        if let group = params.group {
            let name = UInt32(group).flatMap(UserDatabase.groupName) ?? group
            return PolicySubject(user: "", uid: nil, groups: [name], label: "group:\(name)")
        }
        let user = params.user ?? caller.user
        guard let uid = UInt32(user) ?? UserDatabase.userID(user) else { throw .notFound("no user \"\(user)\"") }
        if uid == caller.uid { return PolicySubject(caller) }
        let name = UserDatabase.userName(uid) ?? user
        let gid = UserDatabase.primaryGroup(uid) ?? uid
        let groups = UserDatabase.groups(user: name, gid: gid).map { UserDatabase.groupName($0) ?? String($0) }
        return PolicySubject(user: name, uid: uid, groups: groups)
    }

    static let maxClockAdvanceMs = 365 * 86_400_000

    /// `testing.clock.advance`, only when the daemon runs with `--manual-clock` (tests).
    static func testingRoutes(manualClock: ManualPolicyClock?) -> [String: MethodHandler] {
        guard let manualClock else { return [:] }
        return [
            RPCMethod.testingClockAdvance: { params, context throws(RPCError) in
                let params = try ParamsDecoding.decode(ClockAdvanceParams.self, from: params)
                guard context.caller.admin else { throw .permissionDenied("only admins may move the clock") }
                // Bounded so the clock can never overflow, however often it is moved.
                guard (0...Self.maxClockAdvanceMs).contains(params.ms) else {
                    throw .invalidParams(path: "/ms", "must be between 0 and \(Self.maxClockAdvanceMs) (one year)")
                }
                return try encodeResult(ClockAdvanceResult(nowMs: manualClock.advance(byMs: Int64(params.ms))))
            }
        ]
    }
}
