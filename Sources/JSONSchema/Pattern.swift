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

    func match(_ text: String) -> RegexMatch {
        // The simple matcher's budget is stricter than ICU's limit (an unanchored search over a long value
        // is quadratic for it): when it runs out, ICU decides.
        if let simple, case let result = simple.match(text), result != .gaveUp { return result }
        return matchWithICU(text)
    }

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

/// An ICU regular expression compiled once and searched from any thread with a time limit (about a
/// quarter second per search here, and ICU's 8 MB backtracking stack): for patterns that meet text a
/// caller controls. Each search works on a clone of the compiled pattern (`CRegex`).
public final class BoundedRegex: Sendable {
    // Sendable: the compiled pattern is never mutated after init; searches clone it.
    nonisolated(unsafe) private let handle: OpaquePointer

    /// ICU's time limit per search, in its match-engine steps (each a few thousand operations).
    public static let timeLimitSteps: Int32 = 1000

    /// Compiles `pattern` (ICU syntax); nil when it does not compile.
    public init?(_ pattern: String) {
        let utf16 = Array(pattern.utf16)
        var error: Int32 = 0
        guard let handle = cregex_compile(utf16, Int32(utf16.count), &error) else { return nil }
        self.handle = handle
    }

    deinit { cregex_free(handle) }

    /// Whether the pattern matches anywhere in `text`; `.gaveUp` when a limit ran out first (or ICU
    /// failed, e.g. out of memory): undecided either way, so callers fail closed.
    public func search(_ text: String) -> RegexMatch {
        let utf16 = Array(text.utf16)
        var error: Int32 = 0
        switch cregex_search(handle, utf16, Int32(utf16.count), Self.timeLimitSteps, &error) {
        case 1: return .match
        case 0: return .noMatch
        default: return .gaveUp
        }
    }

    /// Every match in `text` (UTF-16 offsets), left to right and not overlapping, as a replace-all sees
    /// them; nil when a limit ran out first (or ICU failed). `timeLimitSteps` bounds the whole scan, not
    /// each match.
    public func matches(in text: [UInt16], timeLimitSteps: Int32) -> [Range<Int>]? {
        guard text.count <= Int32.max else { return nil }
        // ICU wants a text pointer even for an empty text, which an empty array may not have.
        let units = text.isEmpty ? [0] : text
        return units.withUnsafeBufferPointer { buffer -> [Range<Int>]? in
            var error: Int32 = 0
            guard let scan = cregex_scan_open(handle, buffer.baseAddress!, Int32(text.count), timeLimitSteps, &error)
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
