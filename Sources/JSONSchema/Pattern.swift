import Foundation

/// A compiled `pattern` / `patternProperties` regular expression.
///
/// JSON Schema patterns are ECMA-262 regular expressions, unanchored. They run on ICU (through
/// `NSRegularExpression`) after a small rewrite that restores the ECMA meaning where the two dialects
/// differ in ways tool schemas hit: `\d`, `\w` and their negations are ASCII-only, and `$` matches only at
/// the very end of the input (ICU's also matches before a final newline). Other ECMA-only syntax
/// (named groups as `(?<name>…)` work in both; `\cX`, `/u`-mode property escapes mostly agree) is passed
/// through unchanged.
struct Pattern: Sendable {
    /// The pattern as written in the schema, used in error messages.
    let source: String
    private let regex: SendableRegex
    /// Set when the pattern is simple enough to match without ICU (most tool-schema patterns are).
    private let simple: SimplePattern?

    init?(_ source: String) {
        // ICU compiles every pattern, simple or not, so that an invalid one is always rejected.
        guard let regex = try? NSRegularExpression(pattern: Self.translate(source), options: []) else {
            return nil
        }
        self.source = source
        self.regex = SendableRegex(regex: regex)
        self.simple = SimplePattern(source)
    }

    /// Whether ICU is bypassed for this pattern; for the tests.
    var isSimple: Bool { simple != nil }

    func matches(_ text: String) -> Bool {
        if let simple { return simple.matches(text) }
        return matchesWithICU(text)
    }

    func matchesWithICU(_ text: String) -> Bool {
        let length = text.utf16.count
        return regex.regex.firstMatch(in: text, options: [], range: NSRange(location: 0, length: length)) != nil
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

/// `NSRegularExpression` is immutable once created and documented as safe to use from several threads at
/// once; swift-corelibs-foundation does not mark it `Sendable`, hence the box.
private struct SendableRegex: @unchecked Sendable {
    let regex: NSRegularExpression
}
