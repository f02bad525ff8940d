import Foundation
import JSONSchema
import ToolProtocol

/// Whom a policy is evaluated for: a caller, or a user or group an admin asks about.
public struct PolicySubject: Sendable, Hashable {
    /// `user:<name>` or `group:<name>`, as `policy.get` names it.
    public var label: String
    public var user: String
    public var uid: UInt32?
    /// Group names (numeric strings for groups without a name).
    public var groups: [String]
    public init(user: String, uid: UInt32?, groups: [String], label: String? = nil) {
        self.label = label ?? "user:\(user)"
        self.user = user
        self.uid = uid
        self.groups = groups
    }
    public init(_ caller: CallerIdentity) {
        self.init(user: caller.user, uid: caller.uid, groups: caller.groups)
    }
}

/// What policy says about one tool for one subject.
public struct ToolDecision: Sendable, Equatable {
    public var verdict: PolicyVerdict
    /// The rule that decided, e.g. `group:dev deny "net.*"`, or why nothing allowed it.
    public var rule: String
    /// For `.approval`: the rule that asks for it.
    public var approvalRule: String?
    public var modeAllowed: Bool
}

/// The policy of one subject, merged from every principal that applies.
///
/// Precedence (documented in the README, tested in PolicyTests):
/// - allow/deny: the most specific level with a rule matching the tool decides — the user's own entries,
///   then the entries of all the subject's groups, then `*`; within a level `deny` beats `allow`. No
///   matching rule: denied.
/// - modes: the most specific level that lists `modes` decides (the union of that level's lists);
///   without any, `sandbox` and `read_only`.
/// - limits, rates, concurrency: the smallest of every matching principal; cooldown: the longest.
/// - require_approval, deny_patterns, redact: the union of every matching principal.
public struct EffectivePolicy: Sendable {
    public let subject: PolicySubject
    /// Matching principals, most specific first: (level, entry).
    let matched: [(level: Int, entry: PolicyEntry)]
    public let modes: PolicySetting<[String]>
    let allowedModes: Set<ToolMode>
    /// Per limit name: the policy maximum and its rule (absent: only the daemon's maximum applies).
    public let limits: [String: PolicySetting<UInt64>]
    public let rates: PolicyRatesView
    public let concurrency: PolicySetting<Int>?
    public let cooldownMs: PolicySetting<Int>?
    let requireApproval: [(selector: ToolSelector, rule: String)]
    public let denyPatterns: [(pattern: PolicyPattern, rule: String)]
    public let redactor: Redactor
    let redactRules: [String]

    static let defaultModes: [ToolMode] = [.sandbox, .readOnly]

    init(document: PolicyDocument, subject: PolicySubject) {
        self.subject = subject
        let matched = document.entries.compactMap { entry in entry.level(for: subject).map { (level: $0, entry: entry) } }
            .sorted { $0.level < $1.level }
        self.matched = matched

        var modes: (values: [ToolMode], rules: [String])? = nil
        for level in 0...2 {
            let listing = matched.filter { $0.level == level && $0.entry.rules.modes != nil }
            guard !listing.isEmpty else { continue }
            var union: [ToolMode] = []
            for m in listing.flatMap({ $0.entry.rules.modes ?? [] }) where !union.contains(m) { union.append(m) }
            modes = (union, listing.map { $0.entry.principal.description })
            break
        }
        let modeValues = modes?.values ?? Self.defaultModes
        self.modes = PolicySetting(
            value: modeValues.map(\.rawValue), rule: modes?.rules.joined(separator: ", ") ?? "default")
        allowedModes = Set(modeValues)

        func smallest<T: Comparable>(_ value: (PolicyRules) -> T?) -> PolicySetting<T>? {
            var best: PolicySetting<T>? = nil
            for (_, entry) in matched {
                guard let v = value(entry.rules) else { continue }
                if best == nil || v < best!.value { best = PolicySetting(value: v, rule: entry.principal.description) }
            }
            return best
        }
        var limits: [String: PolicySetting<UInt64>] = [:]
        for name in ExecLimitsConfiguration.names {
            limits[name] = smallest { $0.limits[name] }
        }
        self.limits = limits
        rates = PolicyRatesView(
            perMinute: smallest(\.perMinute), perHour: smallest(\.perHour),
            perToolPerMinute: smallest(\.perToolPerMinute), perToolPerHour: smallest(\.perToolPerHour))
        concurrency = smallest(\.concurrency)
        var longest: PolicySetting<Int>? = nil
        for (_, entry) in matched {
            guard let v = entry.rules.cooldownMs else { continue }
            if longest == nil || v > longest!.value { longest = PolicySetting(value: v, rule: entry.principal.description) }
        }
        cooldownMs = longest
        requireApproval = matched.flatMap { m in m.entry.rules.requireApproval.map { ($0, "\(m.entry.principal) require_approval \"\($0)\"") } }
        denyPatterns = matched.flatMap { m in m.entry.rules.denyPatterns.map { ($0, "\(m.entry.principal) deny_patterns \"\($0.name)\"") } }
        let redact = matched.flatMap { m in m.entry.rules.redact.map { ($0, m.entry.principal.description) } }
        redactor = Redactor(redact.map(\.0))
        redactRules = redact.map(\.1)
    }

    /// The principals that apply, most specific first.
    public var principals: [String] { matched.map { $0.entry.principal.description } }

    /// Whether the subject may call the tool (in the tool's mode), and whether an admin must approve.
    public func decide(_ tool: PolicyToolFacts) -> ToolDecision {
        var verdict = PolicyVerdict.deny
        var rule = "no rule allows \"\(tool.name)\" (nothing is allowed unless a rule allows it)"
        for level in 0...2 {
            let entries = matched.filter { $0.level == level }.map(\.entry)
            if let (entry, selector) = Self.first(in: entries, \.deny, matching: tool) {
                rule = "\(entry.principal) deny \"\(selector)\""
                break
            }
            if let (entry, selector) = Self.first(in: entries, \.allow, matching: tool) {
                verdict = .allow
                rule = "\(entry.principal) allow \"\(selector)\""
                break
            }
        }
        var approvalRule: String? = nil
        if verdict == .allow {
            if let hit = requireApproval.first(where: { $0.selector.matches(tool) }) {
                approvalRule = hit.rule
            } else if tool.requiresApproval {
                approvalRule = "manifest of \"\(tool.name)\" requires_approval"
            }
            if approvalRule != nil { verdict = .approval }
        }
        return ToolDecision(verdict: verdict, rule: rule, approvalRule: approvalRule, modeAllowed: allowedModes.contains(tool.mode))
    }

    public func allows(mode: ToolMode) -> Bool { allowedModes.contains(mode) }

    private static func first(
        in entries: [PolicyEntry], _ list: KeyPath<PolicyRules, [ToolSelector]>, matching tool: PolicyToolFacts
    ) -> (PolicyEntry, ToolSelector)? {
        for entry in entries {
            if let selector = entry.rules[keyPath: list].first(where: { $0.matches(tool) }) { return (entry, selector) }
        }
        return nil
    }

    /// Checks the call's strings against the deny patterns, within `budget` (`RegexBudget`, shared by
    /// every pattern and string of the call): the first pattern that matches one, or the first that
    /// cannot decide one within the budget.
    public func denyCheck(_ strings: [String], budget: RegexBudget) -> DenyCheck {
        for (pattern, rule) in denyPatterns {
            for text in strings {
                switch pattern.regex.search(text, budget: budget) {
                case .noMatch: continue
                case .match: return .matched(name: pattern.name, rule: rule)
                case .gaveUp: return .undecided(name: pattern.name, rule: rule)
                }
            }
        }
        return .clear
    }

    /// The limits this policy caps, as `ExecutionService.resolve` takes them.
    public var limitCaps: PolicyLimitCaps { PolicyLimitCaps(limits) }

    /// This policy as `policy.get` shows it.
    public func view(source: String, tools: [PolicyToolFacts]) -> PolicyView {
        PolicyView(
            subject: subject.label,
            uid: subject.uid, groups: subject.groups, source: source, principals: principals, modes: modes, limits: limits,
            rate: rates, concurrency: concurrency, cooldownMs: cooldownMs,
            requireApproval: requireApproval.map { PolicySetting(value: $0.selector.description, rule: $0.rule) },
            denyPatterns: denyPatterns.map { PolicyPatternView(name: $0.pattern.name, pattern: $0.pattern.pattern, rule: $0.rule) },
            redact: zip(redactor.patterns, redactRules).map { PolicyPatternView(name: $0.name, pattern: $0.pattern, rule: $1) },
            tools: tools.map { tool in
                let d = decide(tool)
                return ToolDecisionView(
                    tool: tool.name, verdict: d.verdict, rule: d.rule, approvalRule: d.approvalRule, mode: tool.mode.rawValue,
                    modeAllowed: d.modeAllowed)
            })
    }
}

/// Policy maxima of the execution limits, by limit name, each with its rule.
public struct PolicyLimitCaps: Sendable {
    public var caps: [String: PolicySetting<UInt64>]
    public init(_ caps: [String: PolicySetting<UInt64>] = [:]) { self.caps = caps }
}

/// What checking a call's strings against its deny patterns found.
public enum DenyCheck: Sendable, Equatable {
    case clear
    /// The pattern `name` (from `rule`) matches one of the strings.
    case matched(name: String, rule: String)
    /// The pattern `name` could not decide one of the strings within the budget (it backtracks on it):
    /// with the full budget, refused like a match (closed).
    case undecided(name: String, rule: String)
}
