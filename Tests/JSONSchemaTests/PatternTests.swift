@testable import JSONSchema
import Testing

/// The in-place matcher for simple patterns must agree with ICU (after the ECMA rewrite) everywhere.
@Suite struct PatternTests {
    static let simplePatterns = [
        "^[a-z0-9-]+$", "^/", "^[A-Z_][A-Z0-9_]*$", "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}$", "a+b", "^a*a*b$",
        "^\\d{3,}$", "^[^\\u0000]*$", "^.{2,4}$", "\\s", "^\\w+\\.json$", "^[^a-c]?x", "^é+$", "[\\-+]?[0-9]",
        "^\\S+@\\S+$", "^[\\u00e0-\\u00ff]+$", "^x{0,2}$", "abc$", "^$", "😀.", "^[a-]+$", "^a{2}b?c*$",
    ]
    static let complexPatterns = ["^(a|b)+$", "a+?", "^\\bword", "(?<n>x)", "^[[:alpha:]]$", "a{2,1}"]
    static let inputs = [
        "", "a", "ab", "aab", "b", "abc", "abc\n", "123", "1234", "12", "٣٤٥", "/work", "work/", "PATH", "path",
        "_X9", "0f8fad5b-d9cb-469f", "x", "xx", "xxx", "a b", "é", "éé", "e\u{301}", "😀x", "x😀", "a\nb", "-1",
        "+1", "foo.json", "foo_json", "user@example.com", "a-b-c", "àÿ", "\u{0}", "abcabc",
    ]

    @Test func simplePatternsAgreeWithICU() throws {
        for source in Self.simplePatterns {
            let pattern = try #require(Pattern(source))
            #expect(pattern.isSimple, "\(source) should not need ICU")
            for input in Self.inputs {
                #expect(pattern.matches(input) == pattern.matchesWithICU(input), "\(source) on \(input.debugDescription)")
            }
        }
    }

    @Test func otherPatternsFallBackToICU() {
        for source in Self.complexPatterns {
            #expect(Pattern(source)?.isSimple != true, "\(source)")
        }
        #expect(Pattern("^(a|b)+$")?.matches("abba") == true)
    }
}
