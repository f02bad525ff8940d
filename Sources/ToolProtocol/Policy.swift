// Wire types of policy, approvals and scheduling: `policy.get`, `approvals.list`, `approvals.decide`,
// the `exec.pending_approval` notification, and the policy/scheduler parts of `daemon.status`.

extension RPCMethod {
    public static let policyGet = "policy.get"
    public static let approvalsList = "approvals.list"
    public static let approvalsDecide = "approvals.decide"
    /// Server → client notification: the call waits for an admin's approval `{execution_id, tool, rule, expires_in_ms}`.
    public static let execPendingApproval = "exec.pending_approval"
    /// Only with `toold --manual-clock` (tests): advances the policy clock `{ms}`; admins only.
    public static let testingClockAdvance = "testing.clock.advance"
}

extension RPCError {
    /// A rate limit or cooldown refused the call; `retry_after_ms` is exact (when the oldest counted call
    /// leaves its window, or the cooldown ends).
    public static func rateLimited(_ why: String, retryAfterMs: Int, rule: String) -> RPCError {
        RPCError(
            code: RPCErrorCode.rateLimited, message: "rate limited: \(why)",
            data: .object(["retry_after_ms": .int(Int64(retryAfterMs)), "rule": .string(rule)]))
    }

    /// An admin denied the call, or nobody decided before it expired (`data.expired`).
    public static func approvalDenied(_ why: String, expired: Bool, decidedBy: String? = nil) -> RPCError {
        var data: [String: JSONValue] = ["expired": .bool(expired)]
        if let decidedBy { data["decided_by"] = .string(decidedBy) }
        return RPCError(code: RPCErrorCode.approvalDenied, message: "approval denied: \(why)", data: .object(data))
    }
}

// MARK: policy.get

/// `policy.get` params: absent fields mean the caller. Admins may name any user or group.
public struct PolicyGetParams: Sendable, Equatable, Codable, ClosedWireType {
    /// A user name or numeric uid.
    public var user: String?
    /// A group name or numeric gid (the policy a member of only this group would get).
    public var group: String?
    public init(user: String? = nil, group: String? = nil) {
        self.user = user
        self.group = group
    }
    enum CodingKeys: String, CodingKey, CaseIterable { case user, group }
    public static var knownFields: [String] { CodingKeys.allCases.map(\.stringValue) }
}

/// One effective value and the principal it comes from (`user:alice`, `group:dev`, `*`; `default` for
/// the built-in modes when no principal lists any).
public struct PolicySetting<Value: Sendable & Equatable & Codable>: Sendable, Equatable, Codable {
    public var value: Value
    public var rule: String
    public init(value: Value, rule: String) {
        self.value = value
        self.rule = rule
    }
}

/// A named pattern of `deny_patterns` or `redact`, with the rule it comes from.
public struct PolicyPatternView: Sendable, Equatable, Codable {
    public var name: String
    public var pattern: String
    public var rule: String
    public init(name: String, pattern: String, rule: String) {
        self.name = name
        self.pattern = pattern
        self.rule = rule
    }
}

/// What policy says about one tool for the subject.
public enum PolicyVerdict: String, Sendable, Equatable, Codable {
    case allow
    /// Allowed once an admin approves each call.
    case approval
    case deny
}

public struct ToolDecisionView: Sendable, Equatable, Codable {
    public var tool: String
    public var verdict: PolicyVerdict
    /// The rule that decided (`user:alice deny "net.*"`), or why nothing allowed it.
    public var rule: String
    /// For `approval`: the `require_approval` rule (or the manifest's `requires_approval`).
    public var approvalRule: String?
    /// The tool's isolation mode and whether the subject may use it.
    public var mode: String
    public var modeAllowed: Bool
    public init(tool: String, verdict: PolicyVerdict, rule: String, approvalRule: String?, mode: String, modeAllowed: Bool) {
        self.tool = tool
        self.verdict = verdict
        self.rule = rule
        self.approvalRule = approvalRule
        self.mode = mode
        self.modeAllowed = modeAllowed
    }
    enum CodingKeys: String, CodingKey {
        case tool, verdict, rule, mode
        case approvalRule = "approval_rule"
        case modeAllowed = "mode_allowed"
    }
}

/// Rates of the subject: calls per minute/hour in all, and per tool. Absent: unlimited.
public struct PolicyRatesView: Sendable, Equatable, Codable {
    public var perMinute: PolicySetting<Int>?
    public var perHour: PolicySetting<Int>?
    public var perToolPerMinute: PolicySetting<Int>?
    public var perToolPerHour: PolicySetting<Int>?
    public init(
        perMinute: PolicySetting<Int>? = nil, perHour: PolicySetting<Int>? = nil,
        perToolPerMinute: PolicySetting<Int>? = nil, perToolPerHour: PolicySetting<Int>? = nil
    ) {
        self.perMinute = perMinute
        self.perHour = perHour
        self.perToolPerMinute = perToolPerMinute
        self.perToolPerHour = perToolPerHour
    }
    enum CodingKeys: String, CodingKey {
        case perMinute = "per_minute"
        case perHour = "per_hour"
        case perToolPerMinute = "per_tool_per_minute"
        case perToolPerHour = "per_tool_per_hour"
    }
}

/// `policy.get` result: the effective policy of one user (or group), each value with its rule.
public struct PolicyView: Sendable, Equatable, Codable {
    /// `user:<name>` or `group:<name>`.
    public var subject: String
    public var uid: UInt32?
    public var groups: [String]
    /// Where the policy came from: its file, or `built-in default`.
    public var source: String
    /// The principals that apply, most specific first (`user:alice`, `group:dev`, `*`).
    public var principals: [String]
    public var modes: PolicySetting<[String]>
    /// Per limit name (`timeout_ms`, `memory_bytes`, …): the maximum a call may ask for.
    public var limits: [String: PolicySetting<UInt64>]
    public var rate: PolicyRatesView
    public var concurrency: PolicySetting<Int>?
    public var cooldownMs: PolicySetting<Int>?
    public var requireApproval: [PolicySetting<String>]
    public var denyPatterns: [PolicyPatternView]
    public var redact: [PolicyPatternView]
    /// Every tool of the registry and what policy says about it.
    public var tools: [ToolDecisionView]

    public init(
        subject: String, uid: UInt32?, groups: [String], source: String, principals: [String],
        modes: PolicySetting<[String]>, limits: [String: PolicySetting<UInt64>], rate: PolicyRatesView,
        concurrency: PolicySetting<Int>?, cooldownMs: PolicySetting<Int>?, requireApproval: [PolicySetting<String>],
        denyPatterns: [PolicyPatternView], redact: [PolicyPatternView], tools: [ToolDecisionView]
    ) {
        self.subject = subject
        self.uid = uid
        self.groups = groups
        self.source = source
        self.principals = principals
        self.modes = modes
        self.limits = limits
        self.rate = rate
        self.concurrency = concurrency
        self.cooldownMs = cooldownMs
        self.requireApproval = requireApproval
        self.denyPatterns = denyPatterns
        self.redact = redact
        self.tools = tools
    }

    enum CodingKeys: String, CodingKey {
        case subject, uid, groups, source, principals, modes, limits, rate, concurrency, redact, tools
        case cooldownMs = "cooldown_ms"
        case requireApproval = "require_approval"
        case denyPatterns = "deny_patterns"
    }
}

// MARK: approvals

/// `approvals.list` params: none.
public typealias ApprovalsListParams = NoParams

/// A call waiting for an admin's decision.
public struct PendingApproval: Sendable, Equatable, Codable {
    public var executionId: String
    public var method: String
    public var tool: String
    public var user: String
    public var uid: UInt32
    /// The call's arguments (for `exec`: its argv, env, cwd), redacted.
    public var arguments: JSONValue
    /// The rule that asked for approval.
    public var rule: String
    public var waitedMs: Int
    public var expiresInMs: Int
    public init(
        executionId: String, method: String, tool: String, user: String, uid: UInt32, arguments: JSONValue, rule: String,
        waitedMs: Int, expiresInMs: Int
    ) {
        self.executionId = executionId
        self.method = method
        self.tool = tool
        self.user = user
        self.uid = uid
        self.arguments = arguments
        self.rule = rule
        self.waitedMs = waitedMs
        self.expiresInMs = expiresInMs
    }
    enum CodingKeys: String, CodingKey {
        case method, tool, user, uid, arguments, rule
        case executionId = "execution_id"
        case waitedMs = "waited_ms"
        case expiresInMs = "expires_in_ms"
    }
}

public struct ApprovalsListResult: Sendable, Equatable, Codable {
    public var approvals: [PendingApproval]
    public init(approvals: [PendingApproval]) { self.approvals = approvals }
}

public struct ApprovalsDecideParams: Sendable, Equatable, Codable, ClosedWireType {
    public var executionId: String
    public var approve: Bool
    public var reason: String?
    public init(executionId: String, approve: Bool, reason: String? = nil) {
        self.executionId = executionId
        self.approve = approve
        self.reason = reason
    }
    enum CodingKeys: String, CodingKey, CaseIterable {
        case approve, reason
        case executionId = "execution_id"
    }
    public static var knownFields: [String] { CodingKeys.allCases.map(\.stringValue) }
}

public struct ApprovalsDecideResult: Sendable, Equatable, Codable {
    public var executionId: String
    public var approved: Bool
    public init(executionId: String, approved: Bool) {
        self.executionId = executionId
        self.approved = approved
    }
    enum CodingKeys: String, CodingKey {
        case approved
        case executionId = "execution_id"
    }
}

/// `testing.clock.advance` params (only with `--manual-clock`).
public struct ClockAdvanceParams: Sendable, Equatable, Codable, ClosedWireType {
    public var ms: Int
    public init(ms: Int) { self.ms = ms }
    enum CodingKeys: String, CodingKey, CaseIterable { case ms }
    public static var knownFields: [String] { CodingKeys.allCases.map(\.stringValue) }
}

public struct ClockAdvanceResult: Sendable, Equatable, Codable {
    /// The clock after the advance, in ms since the daemon started.
    public var nowMs: Int64
    public init(nowMs: Int64) { self.nowMs = nowMs }
    enum CodingKeys: String, CodingKey { case nowMs = "now_ms" }
}

// MARK: daemon.status parts

/// Which policy is in force, and why a reload was refused if it was.
public struct PolicyStatus: Sendable, Equatable, Codable {
    public var source: String
    /// RFC 3339 time the policy in force was loaded.
    public var loadedAt: String
    /// The last reload's error (the previous policy stayed in force); absent when the last load worked.
    public var error: String?
    /// What to fix in the policy in force although it loads (a redaction rule an earlier toold shipped
    /// and later replaced); absent when there is nothing.
    public var warnings: [String]?
    public init(source: String, loadedAt: String, error: String?, warnings: [String]? = nil) {
        self.source = source
        self.loadedAt = loadedAt
        self.error = error
        self.warnings = warnings
    }
    enum CodingKeys: String, CodingKey {
        case source, error, warnings
        case loadedAt = "loaded_at"
    }
}

/// The scheduler's settings.
public struct SchedulerStatus: Sendable, Equatable, Codable {
    public var maxRunning: Int
    public var maxQueued: Int
    public var maxQueuedPerUser: Int
    public var queueTimeoutMs: Int
    public init(maxRunning: Int, maxQueued: Int, maxQueuedPerUser: Int, queueTimeoutMs: Int) {
        self.maxRunning = maxRunning
        self.maxQueued = maxQueued
        self.maxQueuedPerUser = maxQueuedPerUser
        self.queueTimeoutMs = queueTimeoutMs
    }
    enum CodingKeys: String, CodingKey {
        case maxRunning = "max_running"
        case maxQueued = "max_queued"
        case maxQueuedPerUser = "max_queued_per_user"
        case queueTimeoutMs = "queue_timeout_ms"
    }
}

/// Running, queued and approval-waiting calls of one user (admins see every user's).
public struct UserExecutionCounts: Sendable, Equatable, Codable {
    public var uid: UInt32
    public var user: String
    public var running: Int
    public var queued: Int
    public var pendingApproval: Int
    public init(uid: UInt32, user: String, running: Int, queued: Int, pendingApproval: Int) {
        self.uid = uid
        self.user = user
        self.running = running
        self.queued = queued
        self.pendingApproval = pendingApproval
    }
    enum CodingKeys: String, CodingKey {
        case uid, user, running, queued
        case pendingApproval = "pending_approval"
    }
}
