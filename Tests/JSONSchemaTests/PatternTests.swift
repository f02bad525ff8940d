import Foundation
@testable import JSONSchema
import ToolProtocol
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
                #expect(pattern.match(input) == pattern.matchWithICU(input), "\(source) on \(input.debugDescription)")
            }
        }
    }

    @Test func otherPatternsFallBackToICU() {
        for source in Self.complexPatterns {
            #expect(Pattern(source)?.isSimple != true, "\(source)")
        }
        #expect(Pattern("^(a|b)+$")?.match("abba") == .match)
    }

    /// ReDoS: a pattern that backtracks exponentially on a crafted value gives up (validation then fails)
    /// instead of holding its thread — here about a minute unbounded, days at 40 characters.
    @Test func catastrophicBacktrackingGivesUp() throws {
        let hostile = String(repeating: "a", count: 30) + "!"
        for source in ["^(a+)+$", "^([a-z0-9]+.)+[a-z]+$"] {
            let pattern = try #require(Pattern(source))
            #expect(!pattern.isSimple)
            #expect(pattern.match(hostile) == .gaveUp, "\(source)")
            #expect(pattern.match("aaaa") == .match, "\(source)")
        }
    }

    /// The in-place matcher's greedy backtracking is polynomial on adjacent overlapping steps: its step
    /// budget ends that (about a second unbounded here, hours at a few thousand digits).
    @Test func polynomialBacktrackingInTheSimpleMatcherGivesUp() throws {
        let pattern = try #require(SimplePattern("^\\d*\\d*\\d*\\d*x$"))
        #expect(pattern.match(String(repeating: "1", count: 300)) == .gaveUp)
        #expect(pattern.match("123x") == .match)
        #expect(pattern.match("12y") == .noMatch)
        // Its budget is stricter than ICU's limit: there, ICU decides (a long word, then a match).
        let unanchored = try #require(Pattern("[a-z]+@"))
        #expect(unanchored.isSimple)
        #expect(unanchored.match(String(repeating: "a", count: 2000) + " b@c") == .match)
        // A linear pattern decides a long value well within its budget.
        let long = try #require(Pattern("^[a-z]+$"))
        #expect(long.match(String(repeating: "a", count: 4 << 20)) == .match)
        #expect(long.match(String(repeating: "a", count: 4 << 20) + "!") == .noMatch)
    }

    /// A pattern that gives up makes the value invalid wherever it sits — under `not` a failure would
    /// otherwise pass — and decides alone: one give-up per validation, not one per hostile member.
    @Test func aPatternThatGivesUpInvalidatesTheValueOnce() throws {
        let hostile = JSONValue.string(String(repeating: "a", count: 30) + "!")
        let negated = try CompiledSchema(["not": ["pattern": "^(a+)+$"]])
        #expect(!negated.isValid(hostile))
        #expect(negated.validate(hostile).first?.message.contains("time limit") == true)
        #expect(negated.isValid("b"))
        let list = try CompiledSchema(["type": "array", "items": ["type": "string", "pattern": "^(a+)+$"]])
        let errors = list.validate(.array(Array(repeating: hostile, count: 100)))
        #expect(errors.count == 1 && errors.first?.instancePath == "/0", "\(errors)")
        #expect(errors.first?.schemaPath == "/items/pattern", "\(errors)")
    }

    /// ICU's limits leave room for real work: a group repeated over 128 Ki characters still decides. (Near
    /// 400 Ki its backtracking stack, 8 MB, runs out: that gives up too, as NSRegularExpression found
    /// "no match" there before.)
    @Test func icuDecidesLongValuesWithinItsLimits() throws {
        let pattern = try #require(Pattern("^(a|b)+$"))
        #expect(pattern.match(String(repeating: "ab", count: 1 << 16)) == .match)
        #expect(pattern.match(String(repeating: "ab", count: 1 << 16) + "!") == .noMatch)
        #expect(pattern.match(String(repeating: "ab", count: 1 << 20)) == .gaveUp)
    }
    /// A scan for every match (redaction's replace-all) finds what NSRegularExpression finds — left to
    /// right, not overlapping, empty matches, UTF-16 offsets around a surrogate pair.
    @Test func aScanFindsEveryMatchAsICUReplaceAllDoes() throws {
        let cases: [(String, String)] = [
            ("[0-9]+", "a1b22c333"), ("x*", "axxbx"), (".", "a😀b"), ("^", "ab"), ("$", "ab"), ("b", "abcabc"), ("z", "abc"),
            ("(?i)password=\\S+", "PASSWORD=x password=y"), ("[0-9]+", ""),
        ]
        for (pattern, text) in cases {
            let regex = try #require(BoundedRegex(pattern))
            let expected = try NSRegularExpression(pattern: pattern)
                .matches(in: text, range: NSRange(location: 0, length: (text as NSString).length))
                .map { $0.range.location..<($0.range.location + $0.range.length) }
            #expect(regex.matches(in: Array(text.utf16)) == expected, "\(pattern) in \(text)")
        }
    }

    /// The time limit of a scan counts over the whole scan: matches that each cost a little add up to a
    /// give-up (a limit per match would let a long enough text run for as long as it is long).
    @Test func aScanIsBoundedAsAWhole() throws {
        // About a millisecond to match here, so a few stay far inside the budget on a loaded machine too,
        // and thousands far beyond it on a fast one.
        let segment = String(repeating: "a", count: 14) + "!ax"
        let regex = try #require(BoundedRegex("(a+)+x"))
        #expect(regex.search(segment) == .match)
        #expect(regex.matches(in: Array(String(repeating: segment, count: 4).utf16))?.count == 4)
        #expect(regex.matches(in: Array(String(repeating: segment, count: 4000).utf16)) == nil)
    }

    /// One budget shared by several searches (one call's strings) bounds them all: searches that each stay
    /// under the limit of one give up once it is spent, and after that at once; a pattern's evaluation
    /// (the simple matcher included) spends from one budget per validation.
    @Test func aBudgetIsSharedAcrossSearches() throws {
        let segment = String(repeating: "a", count: 14) + "!ax"  // about a millisecond, as above
        let regex = try #require(BoundedRegex("(a+)+x"))
        let budget = RegexBudget()
        let results = (0..<4000).map { _ in regex.search(segment, budget: budget) }
        #expect(results.prefix(4).allSatisfy { $0 == .match })
        #expect(results.suffix(4).allSatisfy { $0 == .gaveUp }, "\(results)")
        #expect(budget.isSpent)
        // Many searches that each stay short add up too (each under ICU's own step, which a time limit per
        // search restarts with): twenty thousand would take seconds; the budget ends them.
        let tiny = try #require(BoundedRegex("^(a+)+$"))
        let shared = RegexBudget()
        let many = (0..<20_000).map { _ in tiny.search(String(repeating: "a", count: 12) + "!", budget: shared) }
        #expect(many.first == .noMatch)
        #expect(many.last == .gaveUp, "\(many.filter { $0 == .gaveUp }.count) gave up")
        // Work that saves no backtracking states is cut off too: an atomic group makes this search
        // quadratic (minutes on 4 MiB) without ever reaching ICU's state callback.
        let atomic = try #require(BoundedRegex("(?>[a-z]*)@"))
        #expect(atomic.search(String(repeating: "a", count: 4 << 20)) == .gaveUp)
        #expect(atomic.matches(in: Array(String(repeating: "a", count: 4 << 20).utf16)) == nil)
        #expect(atomic.search(String(repeating: "a", count: 1000) + "@") == .match)
        // Ordinary work is far inside it: a hundred thousand short strings under a simple pattern.
        let lines = try CompiledSchema(["type": "array", "items": ["type": "string", "pattern": "^[a-z ]+$"]])
        #expect(lines.isValid(.array(Array(repeating: .string(String(repeating: "abc ", count: 25)), count: 100_000))))
        // A long text brings its own allowance: a linear pattern decides it.
        #expect(try #require(BoundedRegex("^[a-z]+$")).search(String(repeating: "a", count: 4 << 20), budget: RegexBudget()) == .match)
        // Validation: thousands of strings that each match alone within the limit fail together, naming it.
        let schema = try CompiledSchema(["type": "array", "items": ["type": "string", "pattern": "(a+)+x"]])
        #expect(schema.isValid(.array(Array(repeating: .string(segment), count: 4))))
        let errors = schema.validate(.array(Array(repeating: .string(segment), count: 4000)))
        #expect(errors.count == 1 && errors.first?.message.contains("time limit") == true, "\(errors)")
        // The simple matcher spends from it too: a budget already spent gives up before matching.
        let simple = try #require(Pattern("^[a-z]+$"))
        #expect(simple.isSimple)
        #expect(simple.match("abc", budget: budget) == .gaveUp)
        #expect(simple.match("abc", budget: RegexBudget()) == .match)
    }
}
