import Foundation
import JSONSchema
import Synchronization
import ToolProtocol

/// The policy in force and everything that enforces it per call: the allow/deny decision, modes, deny
/// patterns, rates and cooldowns (`authorize`), the approvals book, and the clock they all read.
/// Reloads are all-or-nothing: a policy that fails to load leaves the previous one in force, and the
/// error stays visible (`status`) until a load succeeds.
public final class PolicyService: Sendable {
    public let clock: any PolicyClock
    public let approvals: ApprovalBook
    private let rates = RateBook()
    private struct State {
        var document: PolicyDocument
        var loadedAt: Timestamp
        var error: String?
        /// Effective policies by subject, valid for this document only.
        var cache: [PolicySubject: EffectivePolicy] = [:]
    }
    private let state: Mutex<State>

    public init(document: PolicyDocument, clock: any PolicyClock) {
        self.clock = clock
        approvals = ApprovalBook(clock: clock)
        state = Mutex(State(document: document, loadedAt: .now()))
    }

    /// Where policy comes from: the file when it exists (or when it was named explicitly, which makes a
    /// missing file an error), the built-in default otherwise.
    public static func load(path: String, required: Bool) throws(ConfigurationError) -> PolicyDocument {
        if !required && !FileManager.default.fileExists(atPath: path) { return PolicyDocument.builtIn() }
        return try PolicyDocument.load(path: path)
    }

    /// Swaps in a new policy (SIGHUP), or keeps the old one and remembers why not.
    public func reload(_ next: Result<PolicyDocument, ConfigurationError>) {
        state.withLock { s in
            switch next {
            case .success(let document):
                s = State(document: document, loadedAt: .now())
            case .failure(let error):
                s.error = error.description
            }
        }
    }

    public var status: PolicyStatus {
        state.withLock { s in
            PolicyStatus(
                source: s.document.source, loadedAt: s.loadedAt.rfc3339, error: s.error,
                warnings: s.document.warnings.isEmpty ? nil : s.document.warnings)
        }
    }

    public var approvalTimeoutMs: Int { state.withLock { $0.document.approvalTimeoutMs } }
    public var source: String { state.withLock { $0.document.source } }
    /// What to fix in the policy in force although it loads (`PolicyDocument.warnings`).
    public var warnings: [String] { state.withLock { $0.document.warnings } }

    /// The merged policy of a subject (cached per subject until the next reload).
    public func effective(for subject: PolicySubject) -> EffectivePolicy {
        state.withLock { s in
            if let cached = s.cache[subject] { return cached }
            let policy = EffectivePolicy(document: s.document, subject: subject)
            if s.cache.count >= 4096 { s.cache.removeAll() }
            s.cache[subject] = policy
            return policy
        }
    }

    /// Decides one call before anything else looks at it: the tool must be allowed, its mode permitted,
    /// no argument may match a deny pattern, and the rates and cooldown must have room (the call is
    /// counted when admitted). Refusals are JSON-RPC errors naming the rule.
    /// `strings` are the call's argument strings (for `exec`: argv, env, cwd, stdin), a caller's, up to a
    /// frame's 16 MiB: the deny patterns never hold a cooperative thread for long on them
    /// (`BlockingThreads.matchingBounded`: inline within 5 ms when they are small, else on a matching
    /// thread with the full budget).
    public func authorizeOffloading(
        _ caller: CallerIdentity, tool: PolicyToolFacts, strings: () -> [String]
    ) async throws(RPCError) -> Authorization {
        let policy = effective(for: PolicySubject(caller))
        let decision = try decide(caller, tool: tool, policy: policy)
        if !policy.denyPatterns.isEmpty {
            let texts = strings()
            let check = await BlockingThreads.matchingBounded(bytes: texts.reduce(0) { $0 + $1.utf8.count }) {
                () -> DenyCheck? in
                let check = policy.denyCheck(texts, budget: BlockingThreads.inlineBudget())
                if case .undecided = check { return nil }
                return check
            } full: {
                policy.denyCheck(texts, budget: RegexBudget())
            }
            try Self.refuse(check)
            // The check may have waited for a matching thread: a caller gone meanwhile is not counted.
            if Task.isCancelled { throw .cancelled("cancelled before it was admitted") }
        }
        return try admit(caller, tool: tool, policy: policy, decision: decision)
    }

    /// `authorizeOffloading` on the calling thread, deny patterns with the full budget: for callers that
    /// are not on the cooperative pool, and the benchmark.
    public func authorize(
        _ caller: CallerIdentity, tool: PolicyToolFacts, strings: () -> [String]
    ) throws(RPCError) -> Authorization {
        let policy = effective(for: PolicySubject(caller))
        let decision = try decide(caller, tool: tool, policy: policy)
        if !policy.denyPatterns.isEmpty { try Self.refuse(policy.denyCheck(strings(), budget: RegexBudget())) }
        return try admit(caller, tool: tool, policy: policy, decision: decision)
    }

    /// The first two steps: the tool allowed, its mode permitted.
    private func decide(
        _ caller: CallerIdentity, tool: PolicyToolFacts, policy: EffectivePolicy
    ) throws(RPCError) -> ToolDecision {
        let decision = policy.decide(tool)
        guard decision.verdict != .deny else {
            throw .permissionDenied("\(caller.user) may not call \"\(tool.name)\" (\(decision.rule))", rule: decision.rule)
        }
        guard decision.modeAllowed else {
            let rule = "\(policy.modes.rule) modes"
            throw .permissionDenied(
                "\(caller.user) may not use the \(tool.mode.rawValue) mode (allowed: \(policy.modes.value.joined(separator: ", ")))",
                rule: rule)
        }
        return decision
    }

    /// The deny patterns' verdict: a match refuses; so does a pattern that could not decide (closed).
    private static func refuse(_ check: DenyCheck) throws(RPCError) {
        switch check {
        case .clear: return
        case .matched(let name, let rule):
            throw .permissionDenied("the arguments match the deny pattern \"\(name)\"", rule: rule)
        case .undecided(let name, let rule):
            throw .permissionDenied(
                "the arguments could not be checked against the deny pattern \"\(name)\" within its time limit (it backtracks too much on them): refused",
                rule: rule)
        }
    }

    /// The last step: the rates and the cooldown must have room; the call is counted.
    private func admit(
        _ caller: CallerIdentity, tool: PolicyToolFacts, policy: EffectivePolicy, decision: ToolDecision
    ) throws(RPCError) -> Authorization {
        if let refusal = rates.admit(uid: caller.uid, tool: tool.name, policy: policy, now: clock.nowMs) {
            throw .rateLimited(refusal.why, retryAfterMs: refusal.retryAfterMs, rule: refusal.rule)
        }
        return Authorization(policy: policy, decision: decision, tool: tool.name)
    }
}

/// A call that policy admitted: the subject's policy (limits, concurrency, redaction) and the decision
/// (whether an admin must approve, and by which rule).
public struct Authorization: Sendable {
    public let policy: EffectivePolicy
    public let decision: ToolDecision
    public let tool: String

    public var approvalRule: String? { decision.verdict == .approval ? decision.approvalRule : nil }
}
