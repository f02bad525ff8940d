import CRegex
import Foundation

/// What matching a pattern against a text found.
public enum RegexMatch: Sendable {
    case match, noMatch
    /// Matching hit its bound before it could decide (a pattern that backtracks without end on this
    /// text, e.g. `^(a+)+$` on "aaaa…!"): validation fails, closed.
    case gaveUp
}

/// A compiled `pattern` / `patternProperties` regular expression.
///
/// JSON Schema patterns are ECMA-262 regular expressions, unanchored. They run on ICU after a small
/// rewrite that restores the ECMA meaning where the two dialects differ in ways tool schemas hit: `\d`,
/// `\w` and their negations are ASCII-only, and `$` matches only at the very end of the input (ICU's also
/// matches before a final newline). Other ECMA-only syntax (named groups as `(?<name>…)` work in both;
/// `\cX`, `/u`-mode property escapes mostly agree) is passed through unchanged.
///
/// Patterns match a caller's arguments, and a backtracking engine can take exponential time on a
/// pattern as ordinary as `^([a-z0-9]+\\.)+[a-z]+$`. So ICU runs bounded (`BoundedRegex`) and the simple matcher with a
/// step budget; running out of either ends in `.gaveUp`.
struct Pattern: Sendable {
    /// The pattern as written in the schema, used in error messages.
    let source: String
    private let regex: BoundedRegex
    /// Set when the pattern is simple enough to match without ICU (most tool-schema patterns are).
    private let simple: SimplePattern?

    init?(_ source: String) {
        // ICU compiles every pattern, simple or not, so that an invalid one is always rejected.
        guard let regex = BoundedRegex(Self.translate(source)) else { return nil }
        self.source = source
        self.regex = regex
        self.simple = SimplePattern(source)
    }

    /// Whether ICU is bypassed for this pattern; for the tests.
    var isSimple: Bool { simple != nil }

    /// Matches `text` within `budget` (one validation's). The simple matcher's own budget per match is
    /// stricter than ICU's (an unanchored search over a long value is quadratic for it): when it runs
    /// out, ICU decides.
    func match(_ text: String, budget: RegexBudget) -> RegexMatch {
        guard !budget.isSpent else { return .gaveUp }
        budget.grant(forLength: text.utf8.count)
        if let simple, case let result = simple.match(text), result != .gaveUp { return result }
        return regex.search(text, spending: budget)
    }

    /// `match(_:budget:)` with a budget of its own.
    func match(_ text: String) -> RegexMatch { match(text, budget: RegexBudget()) }

    func matchWithICU(_ text: String) -> RegexMatch {
        regex.search(text)
    }

    /// Rewrites the ECMA-262 constructs whose ICU meaning differs (see the type's comment).
    static func translate(_ pattern: String) -> String {
        var output = ""
        var inClass = false
        var iterator = pattern.makeIterator()
        while let character = iterator.next() {
            switch character {
            case "\\":
                guard let escaped = iterator.next() else {
                    output.append("\\")
                    break
                }
                switch escaped {
                case "d": output += inClass ? "0-9" : "[0-9]"
                case "D": output += "[^0-9]"
                case "w": output += inClass ? "a-zA-Z0-9_" : "[a-zA-Z0-9_]"
                case "W": output += "[^a-zA-Z0-9_]"
                default:
                    output.append("\\")
                    output.append(escaped)
                }
            case "[" where !inClass:
                inClass = true
                output.append(character)
            case "]" where inClass:
                inClass = false
                output.append(character)
            case "$" where !inClass:
                output += "\\z"
            default:
                output.append(character)
            }
        }
        return output
    }
}

/// Matching time shared by every pattern match of one call — one validation, one call's deny patterns, one
/// redaction: a deadline on the monotonic clock, `baseNs` (a quarter second) from its creation, pushed back
/// `nsPerUnit` for each character of each text matched — many times what a linear pattern spends per
/// character. So what a call's matching may cost grows with the size of what it matches and no further:
/// neither one value that makes a pattern backtrack without end nor many values that each stay short
/// can hold a thread longer (a time limit per search could not say that: 200,000 tiny strings each under
/// it took a minute). Every search checks the deadline before it starts; ICU checks it every 10,000
/// backtracking states it saves and every 32 start positions it tries (`CRegex`); the simple matcher is
/// checked between matches (its own budget per match is 1M steps + 32 per byte). Once passed, every
/// further match gives up at once.
///
/// Not thread-safe: one call's matching uses it, one match at a time.
public final class RegexBudget: @unchecked Sendable {
    // @unchecked: used sequentially by one call's matching; the C side reads `deadline`.
    let deadline: UnsafeMutablePointer<Int64>
    /// The allowance every budget starts with, in nanoseconds.
    public static let baseNs: Int64 = 250_000_000
    /// The allowance per character (UTF-8 byte or UTF-16 unit) of a text matched, in nanoseconds.
    public static let nsPerUnit: Int64 = 250

    /// This budget's allowance per character matched (`nsPerUnit`; 0 for a flat budget).
    let perUnitNs: Int64

    /// A budget of `ns` from now, pushed back `perUnitNs` per character matched; `perUnitNs: 0` makes a
    /// flat one (a quick attempt whose bound must not grow with the text).
    public init(ns: Int64 = RegexBudget.baseNs, perUnitNs: Int64 = RegexBudget.nsPerUnit) {
        deadline = .allocate(capacity: 1)
        deadline.initialize(to: cregex_now_ns() + ns)
        self.perUnitNs = perUnitNs
    }

    deinit { deadline.deallocate() }

    /// Whether the deadline passed: every further match gives up.
    public var isSpent: Bool { cregex_now_ns() >= deadline.pointee }

    /// Adds the allowance for matching a text of `length` characters.
    public func grant(forLength length: Int) { deadline.pointee += Int64(length) * perUnitNs }
}

/// An ICU regular expression compiled once and searched from any thread within a call's `RegexBudget`
/// (and ICU's 8 MB backtracking stack): for patterns that meet text a caller controls. Each search works
/// on a clone of the compiled pattern (`CRegex`).
public final class BoundedRegex: Sendable {
    // Sendable: the compiled pattern is never mutated after init; searches clone it.
    nonisolated(unsafe) private let handle: OpaquePointer

    /// Compiles `pattern` (ICU syntax); nil when it does not compile.
    public init?(_ pattern: String) {
        let utf16 = Array(pattern.utf16)
        var error: Int32 = 0
        guard let handle = cregex_compile(utf16, Int32(utf16.count), &error) else { return nil }
        self.handle = handle
    }

    deinit { cregex_free(handle) }

    /// Whether the pattern matches anywhere in `text`; `.gaveUp` when the budget ran out first (or ICU's
    /// backtracking stack, or ICU failed, e.g. out of memory): undecided either way, so callers fail
    /// closed. `budget` is the call's (its allowance for `text` is added here); without one, the search
    /// has a budget of its own.
    public func search(_ text: String, budget: RegexBudget = RegexBudget()) -> RegexMatch {
        guard !budget.isSpent else { return .gaveUp }
        budget.grant(forLength: text.utf8.count)
        return search(text, spending: budget)
    }

    /// `search` without the allowance: the caller granted it.
    func search(_ text: String, spending budget: RegexBudget) -> RegexMatch {
        let utf16 = Array(text.utf16)
        guard utf16.count <= Int32.max else { return .gaveUp }
        var error: Int32 = 0
        switch cregex_search(handle, utf16, Int32(utf16.count), budget.deadline, &error) {
        case 1: return .match
        case 0: return .noMatch
        default: return .gaveUp
        }
    }

    /// Every match in `text` (UTF-16 offsets), left to right and not overlapping, as a replace-all sees
    /// them; nil when a limit ran out first (or ICU failed). The scan spends from `budget` (its allowance
    /// for `text` is added here) over all its matches, not per match.
    public func matches(in text: [UInt16], budget: RegexBudget = RegexBudget()) -> [Range<Int>]? {
        guard text.count <= Int32.max, !budget.isSpent else { return nil }
        budget.grant(forLength: text.count)
        // ICU wants a text pointer even for an empty text, which an empty array may not have.
        let units = text.isEmpty ? [0] : text
        return units.withUnsafeBufferPointer { buffer -> [Range<Int>]? in
            var error: Int32 = 0
            guard
                let scan = cregex_scan_open(handle, buffer.baseAddress!, Int32(text.count), budget.deadline, &error)
            else { return nil }
            defer { cregex_scan_close(scan) }
            var ranges: [Range<Int>] = []
            var start: Int32 = 0
            var end: Int32 = 0
            while true {
                switch cregex_scan_next(scan, &start, &end, &error) {
                case 1: ranges.append(Int(start)..<Int(end))
                case 0: return ranges
                default: return nil
                }
            }
        }
    }
}

extension Pattern {
    /// The validation error when matching gave up.
    static func gaveUpMessage(_ pattern: Pattern) -> String {
        "could not be checked against pattern \(pattern.source): matching hit its time limit (the pattern backtracks too much on this value)"
    }
}
