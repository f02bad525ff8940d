import Foundation
import JSONSchema
import ToolProtocol

/// The policy file (`/etc/toold/policy.json`), parsed and checked: every principal's rules, every
/// selector and pattern compiled. Loading is all-or-nothing: a file with one bad field is refused with
/// the file, the field and the reason, and the policy in force stays (see `PolicyService.reload`).
///
/// ```json
/// {"approval_timeout_ms": 300000,
///  "principals": {"*": {...}, "group:dev": {...}, "user:alice": {...}}}
/// ```
/// A principal is `*`, `user:<name or uid>` or `group:<name or gid>`; its rules are `PolicyRules`.
public struct PolicyDocument: Sendable {
    /// The file it came from, or `built-in default`.
    public var source: String
    /// How long a call waits for an admin's decision before it expires.
    public var approvalTimeoutMs: Int = 300_000
    /// Every principal's rules, in file order of their keys (sorted).
    public var entries: [PolicyEntry] = []
    /// What the operator should fix although the file loads: redaction rules an earlier toold shipped and
    /// later replaced (`DefaultPolicy.superseded`), shipped rules without the `opens` they now ship with,
    /// and rules whose pattern does not begin with their `opens`. Logged at each load, shown in
    /// `daemon.status`.
    public var warnings: [String] = []

    public static let builtInSource = "built-in default"
    static let topLevelKeys: Set<String> = ["comment", "approval_timeout_ms", "principals"]

    /// Parses a policy document. `source` names the file in errors.
    public init(json bytes: [UInt8], source: String) throws(ConfigurationError) {
        self.source = source
        let value: JSONValue
        do {
            value = try JSONCoding.parse(bytes)
        } catch {
            throw ConfigurationError(file: source, reason: error.description)
        }
        guard case .object(let top) = value else {
            throw ConfigurationError(file: source, reason: "must hold a JSON object, got \(value.typeName)")
        }
        let reader = FieldReader(file: source, object: top)
        try reader.rejectUnknown(Self.topLevelKeys)
        try reader.integer("approval_timeout_ms", in: 1_000...86_400_000) { approvalTimeoutMs = $0 }
        guard case .object(let table)? = top["principals"] else {
            throw ConfigurationError(
                file: source, field: "principals", reason: "must be an object of principal → rules (e.g. {\"*\": {...}})")
        }
        for (key, rulesValue) in table.sorted(by: { $0.key < $1.key }) {
            let field = "principals.\(key)"
            guard let principal = PolicyPrincipal(key) else {
                throw ConfigurationError(
                    file: source, field: field, reason: "a principal is \"*\", \"user:<name or uid>\" or \"group:<name or gid>\"")
            }
            guard case .object(let o) = rulesValue else {
                throw ConfigurationError(file: source, field: field, reason: "must be an object of rules, got \(rulesValue.typeName)")
            }
            let rules = try PolicyRules(o, file: source, field: field)
            for (i, rule) in rules.redact.enumerated() {
                if let why = DefaultPolicy.superseded[rule.pattern] {
                    warnings.append(
                        "\(field).redact[\(i)] \"\(rule.name)\" is a rule an earlier toold shipped, since replaced: \(why); replace it with the current one (toold --print-default-policy)"
                    )
                } else if rule.opens == nil && DefaultPolicy.patternsWithOpens.contains(rule.pattern) {
                    warnings.append(
                        "\(field).redact[\(i)] \"\(rule.name)\" is a shipped rule without the opens it now ships with, so a stream matches it within one release only and can send part of a match that spans lines in clear (results and records are redacted whole); replace it with the current one (toold --print-default-policy)"
                    )
                } else if rule.opens != nil && !rule.opensStartsMatch {
                    warnings.append(
                        "\(field).redact[\(i)] \"\(rule.name)\": its pattern does not begin with its opens, so a stream may send the lines of a match that come before the opening in clear (results and records are redacted whole); write the pattern to begin with the opens regex"
                    )
                }
            }
            entries.append(PolicyEntry(principal: principal, rules: rules))
        }
    }

    /// Loads a policy file from disk.
    public static func load(path: String) throws(ConfigurationError) -> PolicyDocument {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigurationError(file: path, reason: "cannot be read (missing or no permission)")
        }
        return try PolicyDocument(json: Array(data), source: path)
    }

    /// The shipped default (also what `toold --print-default-policy` prints).
    public static func builtIn() -> PolicyDocument {
        do {
            return try PolicyDocument(json: Array(DefaultPolicy.json.utf8), source: builtInSource)
        } catch {
            preconditionFailure("the built-in default policy does not load: \(error)")  // a test loads it too
        }
    }
}

/// One principal's rules, with what it matches resolved once at load (a numeric group id is also
/// matched by the group's name, since callers' groups arrive as names).
public struct PolicyEntry: Sendable {
    public var principal: PolicyPrincipal
    public var rules: PolicyRules
    let groupNames: Set<String>

    init(principal: PolicyPrincipal, rules: PolicyRules) {
        self.principal = principal
        self.rules = rules
        if case .group(let g) = principal, let gid = UInt32(g), let name = UserDatabase.groupName(gid) {
            groupNames = [g, name]
        } else if case .group(let g) = principal {
            groupNames = [g]
        } else {
            groupNames = []
        }
    }

    /// Whether these rules are for a subject, and at which level (user 0, group 1, everyone 2).
    func level(for subject: PolicySubject) -> Int? {
        switch principal {
        case .everyone: return 2
        case .user(let u): return (u == subject.user || (subject.uid.map { UInt32(u) == $0 } ?? false)) ? 0 : nil
        case .group: return subject.groups.contains(where: groupNames.contains) ? 1 : nil
        }
    }
}

/// Who a set of rules is for.
public enum PolicyPrincipal: Hashable, Sendable, CustomStringConvertible {
    case everyone
    case user(String)
    case group(String)

    init?(_ key: String) {
        if key == "*" {
            self = .everyone
            return
        }
        let parts = key.split(separator: ":", maxSplits: 1).map(String.init)
        guard parts.count == 2, !parts[1].isEmpty else { return nil }
        switch parts[0] {
        case "user": self = .user(parts[1])
        case "group": self = .group(parts[1])
        default: return nil
        }
    }

    public var description: String {
        switch self {
        case .everyone: return "*"
        case .user(let u): return "user:\(u)"
        case .group(let g): return "group:\(g)"
        }
    }
}

/// Names a set of tools: a name or glob (`fs.*`), `category:<category>` or `risk:<risk>`.
public enum ToolSelector: Sendable, Equatable, CustomStringConvertible {
    case name(String)
    case category(ToolCategory)
    case risk(ToolRisk)

    init(_ text: String, file: String, field: String) throws(ConfigurationError) {
        if text.hasPrefix("category:") {
            let raw = String(text.dropFirst("category:".count))
            guard let c = ToolCategory(rawValue: raw) else {
                throw ConfigurationError(
                    file: file, field: field,
                    reason: "unknown category \"\(raw)\"; known: \(ToolCategory.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            self = .category(c)
        } else if text.hasPrefix("risk:") {
            let raw = String(text.dropFirst("risk:".count))
            guard let r = ToolRisk(rawValue: raw) else {
                throw ConfigurationError(
                    file: file, field: field,
                    reason: "unknown risk \"\(raw)\"; known: \(ToolRisk.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            self = .risk(r)
        } else {
            guard !text.isEmpty, !text.utf8.contains(0) else {
                throw ConfigurationError(file: file, field: field, reason: "must be a tool name or glob, category:<c> or risk:<r>")
            }
            self = .name(text)
        }
    }

    func matches(_ tool: PolicyToolFacts) -> Bool {
        switch self {
        case .name(let pattern):
            if !pattern.contains(where: { "*?[".contains($0) }) { return pattern == tool.name }
            return fnmatch(pattern, tool.name, 0) == 0
        case .category(let c): return tool.category == c
        case .risk(let r): return tool.risk == r
        }
    }

    public var description: String {
        switch self {
        case .name(let n): return n
        case .category(let c): return "category:\(c.rawValue)"
        case .risk(let r): return "risk:\(r.rawValue)"
        }
    }
}

/// What policy needs to know of a tool.
public struct PolicyToolFacts: Sendable {
    public var name: String
    public var category: ToolCategory
    public var risk: ToolRisk
    public var mode: ToolMode
    /// The manifest's `requires_approval`.
    public var requiresApproval: Bool
    public init(name: String, category: ToolCategory, risk: ToolRisk, mode: ToolMode, requiresApproval: Bool) {
        self.name = name
        self.category = category
        self.risk = risk
        self.mode = mode
        self.requiresApproval = requiresApproval
    }
}

/// A named regular expression (`deny_patterns`, `redact`), compiled at load (ICU syntax). Both kinds meet
/// text a caller controls — arguments, sandbox output — so they only ever run with a time limit
/// (`BoundedRegex`).
public struct PolicyPattern: Sendable {
    public var name: String
    public var pattern: String
    public let regex: BoundedRegex
    /// For patterns that span lines: a regex matching where such a span begins (streamed output is held
    /// from there until the whole pattern matches; see `StreamRedactor`).
    public let opens: BoundedRegex?
    /// Whether every match starts where an opening does: the pattern's source begins with `opens`' source,
    /// or with all of it but one lookahead group that ends it (`(?=…)`, which tests what follows an opening
    /// without taking it, as the shipped single-line rules' `(?=\s*(?:[=:]\s*)?\z)`: a label with nothing
    /// after it yet). A stream may then release what precedes an open span's line. Other rules with `opens`
    /// hold the stream from its first held line (a match may begin before the opening).
    public let opensStartsMatch: Bool
    /// Whether `opens` ends in a lookahead anchored at the end of the text (`…\z)`): its openings hold only
    /// while nothing follows them but what the lookahead allows, so a later line with a visible character
    /// decides them (`StreamRedactor` looks at it at once while the hold is small).
    public let opensAtEnd: Bool

    init(_ value: JSONValue, file: String, field: String) throws(ConfigurationError) {
        let name: String
        let pattern: String
        var opensPattern: String? = nil
        switch value {
        case .string(let p):
            (name, pattern) = (p, p)
        case .object(let o):
            let reader = FieldReader(file: file, object: o, prefix: field + ".")
            try reader.rejectUnknown(["name", "pattern", "opens"])
            var n: String?
            var p: String?
            try reader.string("name") { n = $0 }
            try reader.string("pattern") { p = $0 }
            try reader.string("opens") { opensPattern = $0 }
            guard let n, let p else {
                throw ConfigurationError(file: file, field: field, reason: "needs \"name\" and \"pattern\"")
            }
            guard n.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" || $0 == "." }) else {
                throw ConfigurationError(file: file, field: field + ".name", reason: "may hold letters, digits, _ - . only")
            }
            (name, pattern) = (n, p)
        default:
            throw ConfigurationError(file: file, field: field, reason: "must be a pattern string or {\"name\", \"pattern\"}")
        }
        guard let regex = BoundedRegex(pattern) else {
            throw ConfigurationError(file: file, field: field, reason: "not a valid regular expression: \(pattern)")
        }
        self.regex = regex
        if let opensPattern {
            guard let opens = BoundedRegex(opensPattern) else {
                throw ConfigurationError(file: file, field: field + ".opens", reason: "not a valid regular expression")
            }
            self.opens = opens
        } else {
            opens = nil
        }
        opensStartsMatch = opensPattern.map { Self.opensStartsMatch(pattern: pattern, opens: $0) } ?? false
        opensAtEnd = opensPattern.map(Self.endsInEndAnchoredLookahead) ?? false
        self.name = name
        self.pattern = pattern
    }

    /// See `opensStartsMatch`.
    static func opensStartsMatch(pattern: String, opens: String) -> Bool {
        var head = Substring(opens)
        if let lookahead = trailingLookahead(opens) { head = opens[..<lookahead] }
        return !head.isEmpty && pattern.hasPrefix(head)
    }

    /// Whether `regex` ends in a lookahead whose body ends with `\z` (an unescaped one) and has no `|` of its
    /// own: its openings stand only at the end of the text.
    static func endsInEndAnchoredLookahead(_ regex: String) -> Bool {
        guard let start = trailingLookahead(regex) else { return false }
        let body = Array(regex[regex.index(start, offsetBy: 3)...].dropLast())
        guard body.count >= 2, body[body.count - 1] == "z", body[body.count - 2] == "\\" else { return false }
        let backslashes = body.dropLast().reversed().prefix { $0 == "\\" }.count
        guard backslashes % 2 == 1 else { return false }
        // No alternation at the body's own level (inner groups may have theirs).
        var depth = 0
        var alternation = false
        forEachStructural(body) { _, c in
            if c == "(" {
                depth += 1
            } else if c == ")" {
                depth -= 1
            } else if c == "|" && depth == 0 {
                alternation = true
            }
            return !alternation
        }
        return !alternation
    }

    /// Whether a flag group (`(?x)`, `(?sx:`, `(?i-x)`, …) outside character classes turns free spacing on or
    /// off in `regex`.
    static func hasFreeSpacingFlag(_ regex: String) -> Bool {
        let chars = Array(regex)
        var found = false
        forEachStructural(chars) { i, c in
            guard c == "(", i + 1 < chars.count, chars[i + 1] == "?" else { return true }
            found = chars[(i + 2)...].prefix { $0.isLetter || $0 == "-" }.contains("x")
            return !found
        }
        return found
    }

    /// Where a lookahead group `(?=…)` that runs to the end of `regex` begins, if one does: parentheses
    /// counted outside escapes and character classes.
    static func trailingLookahead(_ regex: String) -> String.Index? {
        // Only what this scan reads for certain: ASCII, no quoting, control escapes (`\c[` is no class),
        // comments, free spacing or nested and `]`-first classes (any of those: not recognised, so the stream
        // holds from the first line).
        guard regex.allSatisfy(\.isASCII), !regex.contains(#"\Q"#), !regex.contains(#"\c"#), !regex.contains("(?#"),
            !regex.contains("[["),
            !regex.contains("[]"), !regex.contains("[^]"), !Self.hasFreeSpacingFlag(regex)
        else { return nil }
        let chars = Array(regex)
        var opened: [(index: Int, lookahead: Bool)] = []
        var last: (index: Int, lookahead: Bool)?
        var unbalanced = false
        forEachStructural(chars) { i, c in
            if c == "(" {
                opened.append((i, i + 2 < chars.count && chars[i + 1] == "?" && chars[i + 2] == "="))
            } else if c == ")" {
                guard let group = opened.popLast() else {
                    unbalanced = true
                    return false
                }
                last = i == chars.count - 1 ? group : nil
            }
            return true
        }
        guard !unbalanced, opened.isEmpty, let last, last.lookahead, last.index > 0 else { return nil }
        return regex.index(regex.startIndex, offsetBy: last.index)
    }

    /// Walks regex source, skipping escaped characters and the insides of character classes, and calls
    /// `visit` with every other character and its index until it returns false.
    static func forEachStructural(_ chars: [Character], _ visit: (Int, Character) -> Bool) {
        var i = 0
        var inClass = false
        while i < chars.count {
            let c = chars[i]
            if c == "\\" {
                i += 2
                continue
            }
            if inClass {
                if c == "]" { inClass = false }
            } else if c == "[" {
                inClass = true
            } else if !visit(i, c) {
                return
            }
            i += 1
        }
    }
}

/// The rules of one principal. Absent fields say nothing (another principal's rule, or the default, applies).
public struct PolicyRules: Sendable {
    public var allow: [ToolSelector] = []
    public var deny: [ToolSelector] = []
    public var modes: [ToolMode]?
    /// Maximum per limit name (`timeout_ms`, `memory_bytes`, …).
    public var limits: [String: UInt64] = [:]
    public var perMinute: Int?
    public var perHour: Int?
    public var perToolPerMinute: Int?
    public var perToolPerHour: Int?
    public var concurrency: Int?
    public var cooldownMs: Int?
    public var requireApproval: [ToolSelector] = []
    public var denyPatterns: [PolicyPattern] = []
    public var redact: [PolicyPattern] = []

    static let keys: Set<String> = [
        "comment", "allow", "deny", "modes", "limits", "rate", "concurrency", "cooldown_ms", "require_approval",
        "deny_patterns", "redact",
    ]
    static let rateKeys: Set<String> = ["per_minute", "per_hour", "per_tool_per_minute", "per_tool_per_hour"]

    init(_ o: [String: JSONValue], file: String, field: String) throws(ConfigurationError) {
        let reader = FieldReader(file: file, object: o, prefix: field + ".")
        try reader.rejectUnknown(Self.keys)
        func list(_ key: String) throws(ConfigurationError) -> [JSONValue] {
            guard let value = o[key] else { return [] }
            guard case .array(let items) = value else {
                throw ConfigurationError(file: file, field: "\(field).\(key)", reason: "must be an array, got \(value.typeName)")
            }
            return items
        }
        func selectors(_ key: String) throws(ConfigurationError) -> [ToolSelector] {
            var result: [ToolSelector] = []
            for (i, item) in try list(key).enumerated() {
                guard case .string(let s) = item else {
                    throw ConfigurationError(file: file, field: "\(field).\(key)[\(i)]", reason: "must be a string")
                }
                result.append(try ToolSelector(s, file: file, field: "\(field).\(key)[\(i)]"))
            }
            return result
        }
        allow = try selectors("allow")
        deny = try selectors("deny")
        requireApproval = try selectors("require_approval")
        if o["modes"] != nil {
            var modes: [ToolMode] = []
            for (i, item) in try list("modes").enumerated() {
                guard let mode = item.stringValue.flatMap(ToolMode.init(rawValue:)) else {
                    throw ConfigurationError(
                        file: file, field: "\(field).modes[\(i)]",
                        reason: "must be one of \(ToolMode.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                modes.append(mode)
            }
            self.modes = modes
        }
        if let value = o["limits"] {
            guard case .object(let l) = value else {
                throw ConfigurationError(file: file, field: "\(field).limits", reason: "must be an object of limit → maximum")
            }
            let limitReader = FieldReader(file: file, object: l, prefix: field + ".limits.")
            try limitReader.rejectUnknown(Set(ExecLimitsConfiguration.names))
            for name in ExecLimitsConfiguration.names {
                try limitReader.integer(name, in: 1...Int(Int64.max)) { limits[name] = UInt64($0) }
            }
        }
        if let value = o["rate"] {
            guard case .object(let r) = value else {
                throw ConfigurationError(file: file, field: "\(field).rate", reason: "must be an object")
            }
            let rateReader = FieldReader(file: file, object: r, prefix: field + ".rate.")
            try rateReader.rejectUnknown(Self.rateKeys)
            try rateReader.integer("per_minute", in: 1...1_000_000) { perMinute = $0 }
            try rateReader.integer("per_hour", in: 1...100_000_000) { perHour = $0 }
            try rateReader.integer("per_tool_per_minute", in: 1...1_000_000) { perToolPerMinute = $0 }
            try rateReader.integer("per_tool_per_hour", in: 1...100_000_000) { perToolPerHour = $0 }
        }
        try reader.integer("concurrency", in: 1...100_000) { concurrency = $0 }
        try reader.integer("cooldown_ms", in: 0...86_400_000) { cooldownMs = $0 }
        for (i, item) in try list("deny_patterns").enumerated() {
            denyPatterns.append(try PolicyPattern(item, file: file, field: "\(field).deny_patterns[\(i)]"))
        }
        for (i, item) in try list("redact").enumerated() {
            redact.append(try PolicyPattern(item, file: file, field: "\(field).redact[\(i)]"))
        }
    }
}
