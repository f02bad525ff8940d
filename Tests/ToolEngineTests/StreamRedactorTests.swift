import Testing
import ToolProtocol

@testable import ToolEngine

/// Streamed redaction (`StreamRedactor`) with the shipped rules: what it releases, when, and how often it
/// looks at what it holds. Timed re-looks are off (`recheckAfterNs: .max`) unless a test is about them.
@Suite struct StreamRedactorTests {
    static let shipped = Redactor(
        PolicyDocument.builtIn().entries.first { $0.principal == .everyone }?.rules.redact ?? [])

    static let header = "-----BEGIN RSA PRIVATE KEY-----\n"
    static let footer = "-----END RSA PRIVATE KEY-----\n"

    /// A key of `lines` body lines, as a program prints it.
    static func key(_ n: Int, lines: Int = 26) -> String {
        header + (0..<lines).map { "MIIEpAIBAAKCAQEA\(n)x\(String(repeating: "Q", count: 48))\($0)\n" }.joined() + footer
    }

    /// What the stream sends in all for `bytes` read `piece` bytes at a time, then the end.
    static func feedPieces(_ stream: StreamRedactor, _ bytes: [UInt8], piece: Int) -> [UInt8] {
        var out: [UInt8] = []
        var i = 0
        while i < bytes.count {
            out += stream.feed(Array(bytes[i..<min(i + piece, bytes.count)]))
            i += piece
        }
        return out + stream.flush()
    }

    static func feedLines(_ stream: StreamRedactor, _ text: String) -> [UInt8] {
        var out: [UInt8] = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: false).dropLast() {
            out += stream.feed(Array((line + "\n").utf8))
        }
        return out
    }

    /// A sandbox that opens a span (a PEM header) and then trickles short lines made the daemon rescan the
    /// whole hold on every line: 30,000 looks at up to 64 KiB each (56 s of CPU). Now the hold is looked at
    /// again only once it has grown by a quarter (at least 4 KiB): a dozen looks, and the same text comes
    /// out.
    @Test func aTrickleAfterAnOpeningIsNotRescannedPerLine() {
        #expect(!Self.shipped.isEmpty)
        let stream = StreamRedactor(Self.shipped, recheckAfterNs: .max)
        var released = stream.feed(Array(Self.header.utf8))
        #expect(released.isEmpty, "held from the header on")
        for _ in 0..<30_000 { released += stream.feed(Array("a\n".utf8)) }
        #expect(stream.looks <= 20, "\(stream.looks) looks at the hold")
        let looks = stream.looks
        // The stream's end releases the hold (60 KB, under its 64 KiB bound), redacted — an unclosed key is
        // no match: all of it, in order.
        released += stream.flush()
        #expect(String(decoding: released, as: UTF8.self) == Self.header + String(repeating: "a\n", count: 30_000))
        // A second hold is bounded the same way.
        _ = stream.feed(Array(Self.header.utf8))
        for _ in 0..<30_000 { _ = stream.feed(Array("b\n".utf8)) }
        #expect(stream.looks - looks <= 20, "\(stream.looks - looks) looks at the second hold")
    }

    /// Keys printed back to back, one line per write, well past the hold's 64 KiB bound: every key is
    /// redacted whole. What precedes an open key goes out when the hold is looked at, so the hold never
    /// gathers closed keys up to the bound — where a forced release would cut the open one and send its
    /// lines in clear.
    @Test func consecutiveKeysPrintedLineByLineAreEachRedacted() {
        let stream = StreamRedactor(Self.shipped, recheckAfterNs: .max)
        let keys = (0..<60).map { Self.key($0) }
        #expect(keys.joined().utf8.count > 3 * (64 << 10) / 2)
        var released = Self.feedLines(stream, keys.joined())
        released += stream.flush()
        let text = String(decoding: released, as: UTF8.self)
        #expect(text == String(repeating: "[REDACTED:private_key]\n", count: 60), "\(text.prefix(300))")
        #expect(stream.heldBytes == 0)
    }

    /// A key that closes is redacted whole; the lines before it go out at once; what follows it goes out
    /// once the hold has grown enough to be looked at again — or, with timed re-looks, on the next line
    /// after the interval.
    @Test func aClosedKeyIsRedactedAndWhatFollowsGoesOut() {
        let stream = StreamRedactor(Self.shipped, recheckAfterNs: .max)
        var released = stream.feed(Array(("before\n" + Self.key(1)).utf8))
        #expect(String(decoding: released, as: UTF8.self) == "before\n[REDACTED:private_key]\n")
        released = Self.feedLines(stream, "ordinary\n")
        #expect(String(decoding: released, as: UTF8.self) == "ordinary\n", "released at once when nothing is open")
        released = stream.feed(Array(("line\n" + Self.header).utf8))
        #expect(String(decoding: released, as: UTF8.self) == "line\n", "the lines before the opening go out")
        released = Self.feedLines(stream, "MIIEpAIBAAKCAQEA5678\n" + Self.footer + "after\n")
        #expect(released.isEmpty, "not looked at again yet: grew by less than 4 KiB")
        released += stream.feed(Array((String(repeating: "x", count: 5000) + "\n").utf8))
        #expect(
            String(decoding: released, as: UTF8.self)
                == "[REDACTED:private_key]\nafter\n" + String(repeating: "x", count: 5000) + "\n")
        #expect(stream.flush().isEmpty)

        // Timed re-looks: a new line 100 ms or more after the last look is looked at.
        let clock = ManualClock()
        let timed = StreamRedactor(Self.shipped, clock: { clock.now })
        released = Self.feedLines(timed, Self.key(2) + "after\n")
        #expect(released.isEmpty, "no time has passed")
        clock.now += 99_000_000
        released = timed.feed(Array("more\n".utf8))
        #expect(released.isEmpty, "99 ms after the last look")
        clock.now += 1_000_000
        released = timed.feed(Array("again\n".utf8))
        #expect(String(decoding: released, as: UTF8.self) == "[REDACTED:private_key]\nafter\nmore\nagain\n")
    }

    /// A key whose END shares a line with the next key's BEGIN is not split when the lines before the open
    /// key go out: the cut moves back to the line the closed key starts on.
    @Test func aCutNeverSplitsAClosedKey() {
        let stream = StreamRedactor(Self.shipped, recheckAfterNs: 0)
        let first = Self.key(1).dropLast()  // its END line without the newline
        var released = Self.feedLines(stream, "before\n" + first + " " + Self.header + "MIIEpAIBAAKCAQEAsecond\n")
        #expect(String(decoding: released, as: UTF8.self) == "before\n", "\(String(decoding: released, as: UTF8.self))")
        released += Self.feedLines(stream, Self.footer)
        #expect(String(decoding: released, as: UTF8.self) == "before\n[REDACTED:private_key] [REDACTED:private_key]\n")
    }

    /// Keys back to back, read in 64 KiB chunks as a pipe delivers `cat` of a big file: a chunk that takes
    /// the hold past its bound is still looked at, and only what precedes the open key goes out.
    @Test func keysReadIn64KiBChunksAreEachRedacted() {
        let stream = StreamRedactor(Self.shipped, recheckAfterNs: .max)
        let text = Array((0..<120).map { Self.key($0) }.joined().utf8)
        var released: [UInt8] = []
        var i = 0
        while i < text.count {
            released += stream.feed(Array(text[i..<min(i + (64 << 10), text.count)]))
            i += 64 << 10
        }
        released += stream.flush()
        #expect(String(decoding: released, as: UTF8.self) == String(repeating: "[REDACTED:private_key]\n", count: 120))
    }

    /// One long line past the hold's bound (minified JSON holding an escaped key, as `terraform show
    /// -json` prints one) is cut before the key, not at whatever byte the last read ended on; keys whose
    /// END and next BEGIN share lines chain their matches across lines, and are cut at the open one's
    /// header. Both come out as the whole output's redaction.
    @Test func aHoldPastItsBoundIsCutBeforeTheOpenKeyNotMidKey() {
        let escaped = Self.key(6).replacingOccurrences(of: "\n", with: "\\n")
        let json = "{\"padding\": \"" + String(repeating: "x", count: 65_000) + "\", \"key\": \"" + escaped + "\"}\n"
        let chained = (0..<60).map { Self.key($0).dropLast() + " " }.joined() + "\n"  // END and BEGIN on one line
        // A key longer than the 4 KiB tail kept when nothing is open, in one long line.
        let long = String(repeating: "y", count: 60_000) + Self.key(7, lines: 150).replacingOccurrences(of: "\n", with: "\\n") + "\n"
        // Multi-byte text, reads ending inside characters: a cut splits none, so nothing is matched as
        // Latin-1 (where byte 0xA0 is a space and `token:` would take a different value).
        let wide = "token:\u{A0}hunter2 " + String(repeating: "字", count: 22_000) + " password=voilà42\n"
        for text in [json, chained, long, wide] {
            let bytes = Array(text.utf8)
            for piece in [65_538, 1 << 10, 7] {
                let out = Self.feedPieces(StreamRedactor(Self.shipped, recheckAfterNs: .max), bytes, piece: piece)
                let expected = Self.shipped.redact(bytes).bytes
                #expect(out == expected, "\(piece)-byte pieces: \(String(decoding: out.suffix(400), as: UTF8.self))")
                #expect(!String(decoding: out, as: UTF8.self).contains("MIIEpAIB") && !String(decoding: out, as: UTF8.self).contains("hunter2"))
            }
        }
    }

    /// A header that never closes (a grep hit, a source line) followed, past the hold's bound, by a real
    /// key: the dead span goes out as it stands up to the real key's header, and the real key is redacted.
    /// In output that is not UTF-8, a cut stepped back off what looks like a multi-byte character is still
    /// never inside a match. Both come out as the whole output's redaction.
    @Test func aDeadHeaderPastTheBoundDoesNotTakeTheNextKeyWithIt() {
        let dead = Array((Self.header + String(repeating: String(repeating: "x", count: 63) + "\n", count: 1000)).utf8)
        let real = Array((Self.header + (0..<40).map { _ in String(repeating: "Q", count: 64) + "\n" }.joined()).utf8)
        let nonText: [[UInt8]] = [Array((String(repeating: "Y", count: 61_431) + " token=abc").utf8), Array(repeating: 0xA0, count: 4096), [0x0A]]
        for chunks in [[dead, real, Array(Self.footer.utf8)], nonText] {
            let stream = StreamRedactor(Self.shipped, recheckAfterNs: .max)
            var out: [UInt8] = []
            for chunk in chunks { out += stream.feed(chunk) }
            out += stream.flush()
            let expected = Self.shipped.redact(chunks.flatMap { $0 }).bytes
            #expect(out == expected, "\(String(decoding: out.suffix(300), as: UTF8.self))")
        }
    }

    /// An operator's rule whose match begins before its opening (`secret:` on the line above the header)
    /// holds the stream from its first held line: nothing of the secret goes out in clear.
    @Test func aRuleWhoseMatchBeginsBeforeItsOpeningHoldsFromTheStart() throws {
        let rule: JSONValue = [
            "name": "data", "pattern": #"secret:\s*\n-----BEGIN DATA-----[\s\S]*?-----END DATA-----"#,
            "opens": "-----BEGIN DATA-----",
        ]
        let redactor = Redactor([try PolicyPattern(rule, file: "test", field: "redact[0]")])
        let stream = StreamRedactor(redactor, recheckAfterNs: 0)
        var released = stream.feed(Array("first\nsecret:\n-----BEGIN DATA-----\nAAAA\n".utf8))
        released += stream.feed(Array("-----END DATA-----\nlast\n".utf8))
        released += stream.flush()
        #expect(String(decoding: released, as: UTF8.self) == "first\n[REDACTED:data]\nlast\n")
    }

    /// A single-line rule whose match crosses a newline (`token:` then the value on the next line) is not
    /// split when the lines before an open key go out; mixed chunk boundaries, multi-byte UTF-8 and bytes
    /// that are not UTF-8 come out as the whole output's redaction does.
    @Test func aCutSplitsNoMatchOfAnyRuleAndBytesComeOutWhole() {
        let stream = StreamRedactor(Self.shipped, recheckAfterNs: 0)
        let text = "ok\ntoken:\nabc123" + Self.key(3) + "after\n"
        let split = text.utf8.count - Self.key(3).utf8.count + Self.header.utf8.count + 10  // the key open
        var released = stream.feed(Array(text.utf8.prefix(split)))
        #expect(String(decoding: released, as: UTF8.self) == "ok\n", "the cut moved back to token:'s line")
        released += stream.feed(Array(text.utf8.dropFirst(split)))
        released += stream.flush()
        let out = String(decoding: released, as: UTF8.self)
        #expect(!out.contains("abc123") && !out.contains("MIIE"), "\(out)")
        #expect(released == Self.shipped.redact(Array(text.utf8)).bytes, "\(out)")

        for bytes in [Array(("héllo wörld ✓\n" + Self.key(4) + "después\n").utf8), [0xFF, 0x0A] + Array((Self.key(5) + "x\n").utf8)] {
            // 7-byte pieces: mid-line, mid-character.
            let out = Self.feedPieces(StreamRedactor(Self.shipped, recheckAfterNs: 0), bytes, piece: 7)
            #expect(out == Self.shipped.redact(bytes).bytes, "\(String(decoding: out, as: UTF8.self))")
        }
    }
}

extension StreamRedactorTests {
    /// A label at the end of a line and its value on the next (a YAML block, a header folded, a prompt echoed
    /// before its answer): the whole output's redaction takes both together (`\s*` spans the newline), and
    /// so does the stream — the shipped rules' `opens` hold a label that ends what has arrived until what
    /// follows it shows. Before, the label's line went out alone and the value after it in clear.
    @Test func aValueOnTheLineAfterItsLabelIsRedactedInTheStream() {
        let cases: [(text: String, secret: String)] = [
            ("config:\n  password:\n    hunter2\nnext line\n", "hunter2"),
            ("Authorization: Bearer\n  abcdefgh12345678\nok\n", "abcdefgh12345678"),
            ("aws_secret_access_key =\n" + String(repeating: "S", count: 40) + "\nok\n", String(repeating: "S", count: 40)),
            ("token\n: s3cr3t\nok\n", "s3cr3t"),
            ("export API_KEY=\n\n\nsupersecret\n", "supersecret"),
        ]
        for (text, secret) in cases {
            let bytes = Array(text.utf8)
            let expected = Self.shipped.redact(bytes).bytes
            #expect(!String(decoding: expected, as: UTF8.self).contains(secret), "the whole output's redaction takes \(secret)")
            for recheck: UInt64 in [0, .max] {
                let lines = StreamRedactor(Self.shipped, recheckAfterNs: recheck)
                let out = Self.feedLines(lines, text) + lines.flush()
                #expect(out == expected, "line by line: \(String(decoding: out, as: UTF8.self))")
                for piece in [1, 3, 7, 64] {
                    let sent = Self.feedPieces(StreamRedactor(Self.shipped, recheckAfterNs: recheck), bytes, piece: piece)
                    #expect(sent == expected, "\(piece)-byte pieces: \(String(decoding: sent, as: UTF8.self))")
                }
            }
        }
    }

    /// A line that ends in a label waits for the next line only: when that one is no value, both go out.
    @Test func aLabelThatNoValueFollowsIsReleasedWithTheNextLine() {
        let stream = StreamRedactor(Self.shipped, recheckAfterNs: 0)
        #expect(stream.feed(Array("you will need a token\n".utf8)).isEmpty, "held: its value may follow")
        let out = stream.feed(Array("to log in\n".utf8))
        #expect(String(decoding: out, as: UTF8.self) == "you will need a token\nto log in\n")
        #expect(stream.heldBytes == 0)
        #expect(String(decoding: stream.feed(Array("password: open sesame\n".utf8)), as: UTF8.self) == "[REDACTED:password] sesame\n")
    }

    /// With the default throttle (a look at most every 100 ms while a span is open): a line ending in a
    /// label, then another that is not blank 10 ms later, then silence — both go out with the second, not
    /// at the next line a tenth of a second later or at the end. Blank lines after the label keep it held;
    /// what precedes the label's line goes out at once.
    @Test func aLabelIsDecidedByTheNextLineThatIsNotBlankAtOnce() {
        let clock = ManualClock()
        let stream = StreamRedactor(Self.shipped, clock: { clock.now })
        #expect(String(decoding: stream.feed(Array("step 1\nRefreshing token\n".utf8)), as: UTF8.self) == "step 1\n")
        clock.now += 10_000_000
        let looks = stream.looks
        #expect(stream.feed(Array("\n  \n\u{A0}\n".utf8)).isEmpty, "blank lines decide nothing")
        #expect(stream.looks == looks, "blank lines, no-break spaces included, are not looked at early")
        clock.now += 10_000_000
        #expect(String(decoding: stream.feed(Array("done\n".utf8)), as: UTF8.self) == "Refreshing token\n\n  \n\u{A0}\ndone\n")
        #expect(stream.heldBytes == 0)
        // And a value that comes that way is redacted with its label.
        #expect(stream.feed(Array("api_key =\n".utf8)).isEmpty)
        clock.now += 1_000_000
        #expect(String(decoding: stream.feed(Array("k-123\n".utf8)), as: UTF8.self) == "[REDACTED:password]\n")
    }
}

/// A clock the test moves by hand.
final class ManualClock: @unchecked Sendable {
    var now: UInt64 = 1_000_000_000
}

/// What a policy's redaction rules say at load about streaming.
@Suite struct RedactionRuleWarningTests {
    /// A rule whose pattern does not begin with its `opens` cannot be streamed safely line by line (a
    /// match's first lines may go out before the opening shows): the policy loads with a warning naming
    /// it. The shipped policy has none.
    @Test func aRuleWhosePatternDoesNotBeginWithItsOpensIsFlagged() throws {
        let policy = #"""
            {"principals": {"*": {"redact": [
              {"name": "data", "pattern": "secret:\\s*\\n-----BEGIN DATA-----[\\s\\S]*?-----END DATA-----",
               "opens": "-----BEGIN DATA-----"},
              {"name": "good", "pattern": "-----BEGIN X-----[\\s\\S]*?-----END X-----", "opens": "-----BEGIN X-----"}]}}}
            """#
        let document = try PolicyDocument(json: Array(policy.utf8), source: "test")
        #expect(document.warnings.count == 1, "\(document.warnings)")
        #expect(document.warnings.first?.hasPrefix(#"principals.*.redact[0] "data": its pattern does not begin with its opens"#) == true)
        #expect(PolicyDocument.builtIn().warnings.isEmpty)
    }

    /// A policy written by an earlier install holds the shipped single-line rules without the `opens` they
    /// now ship with: it loads, with a warning for each, since its streams send a value printed on the line
    /// after its label in clear.
    @Test func aShippedRuleWithoutItsOpensIsFlagged() throws {
        let current = PolicyDocument.builtIn().entries.first { $0.principal == .everyone }?.rules.redact ?? []
        let rules = current.map { rule -> JSONValue in .object(["name": .string(rule.name), "pattern": .string(rule.pattern)]) }
        #expect(rules.count == 5)
        let policy = JSONValue.object(["principals": .object(["*": .object(["redact": .array(rules)])])])
        let document = try PolicyDocument(json: JSONCoding.serialize(policy), source: "test")
        let flagged = document.warnings.filter { $0.contains("without the opens it now ships with") }
        #expect(flagged.count == 4, "\(document.warnings)")
        #expect(flagged.contains { $0.hasPrefix(#"principals.*.redact[4] "password""#) })
        #expect(DefaultPolicy.patternsWithOpens.count == 4)
    }

    /// The password rule takes `name=value` pairs for the labels it knows, but not the shell's working
    /// directory variable (`PWD=/workspace` in every `env` listing); the rule it replaced flags at load.
    @Test func theShellsWorkingDirectoryIsNotAPassword() throws {
        for (text, redacted) in [
            ("PWD=/workspace\n", false), ("OLDPWD=/tmp\n", false), ("PWD=hunter2\n", true), ("pwd=/hunter2\n", true),
            ("PWD = /hunter2\n", true), ("password=/hunter2\n", true), ("export PWD=/workspace TOKEN=abc123\n", true),
        ] {
            let (out, matched) = StreamRedactorTests.shipped.redact(text)
            #expect(matched.isEmpty != redacted, "\(text) -> \(out)")
            if text.hasPrefix("export") { #expect(out == "export PWD=/workspace [REDACTED:password]\n", "\(out)") }
        }
        let old = #"(?i)\b(?:password|passwd|pwd|secret|api_key|apikey|token)\s*[=:]\s*[^\s"',;]+"#
        let policy = JSONValue.object(["principals": .object(["*": .object(["redact": .array([
            .object(["name": "password", "pattern": .string(old)]),
        ])])])])
        let document = try PolicyDocument(json: JSONCoding.serialize(policy), source: "test")
        #expect(document.warnings.contains { $0.contains("PWD=/") && $0.contains("since replaced") }, "\(document.warnings)")
    }

    /// The early look after a label costs no more than the throttle allows when the lines after it keep it
    /// open: whitespace the rules' `\s` takes (no-break spaces, in text and as Latin-1 bytes), a chain of
    /// matches across lines that ends in a new label each time, a label after an open PEM header. Each
    /// came out as the whole output's redaction, and a sandbox printing them made the daemon rescan the hold
    /// per line (about a thousand characters scanned per byte printed).
    @Test func linesThatKeepALabelOpenAreNotRescannedOneByOne() {
        let cases: [[UInt8]] = [
            Array("pwd\n".utf8) + Array(repeating: [0xA0, 0x0A], count: 2000).flatMap { $0 },
            Array(("pwd\n" + String(repeating: "\u{A0}\n", count: 2000)).utf8),
            Array(("pwd\n" + String(repeating: ":a pwd\n", count: 2000)).utf8),
            Array((StreamRedactorTests.header + "token\n" + String(repeating: "a\n", count: 2000)).utf8),
        ]
        for bytes in cases {
            let stream = StreamRedactor(StreamRedactorTests.shipped, recheckAfterNs: .max)
            var out: [UInt8] = []
            var i = 0
            while i < bytes.count, let end = bytes[i...].firstIndex(of: 0x0A) {
                out += stream.feed(Array(bytes[i...end]))
                i = end + 1
            }
            #expect(stream.looks <= 20, "\(stream.looks) looks for \(bytes.count) bytes: \(String(decoding: bytes.prefix(12), as: UTF8.self))")
            out += stream.flush()
            #expect(out == StreamRedactorTests.shipped.redact(bytes).bytes)
        }
    }

    /// Which `opens` stand only at the end of the text (a label waiting for its value).
    @Test func endAnchoredOpeningsAreRecognised() {
        #expect(PolicyPattern.endsInEndAnchoredLookahead(#"(?i)\bbearer(?=\s+\z)"#))
        #expect(PolicyPattern.endsInEndAnchoredLookahead(#"(?i)\b(?:a|b)(?=\s*(?:[=:]\s*)?\z)"#))
        #expect(!PolicyPattern.endsInEndAnchoredLookahead(#"a(?=b\\z)"#), "a literal backslash, then z")
        #expect(!PolicyPattern.endsInEndAnchoredLookahead(#"a(?=b|\z)"#), "either b anywhere or the end")
        #expect(!PolicyPattern.endsInEndAnchoredLookahead(#"a(?!\z)"#))
        #expect(!PolicyPattern.endsInEndAnchoredLookahead("-----BEGIN X-----"))
        #expect(!PolicyPattern.endsInEndAnchoredLookahead(#"(?sx)secret # (?=\s*\z)"#), "free spacing: a comment")
        #expect(!PolicyPattern.endsInEndAnchoredLookahead(#"(?i-x)a(?=\s*\z)"#))
        #expect(!PolicyPattern.endsInEndAnchoredLookahead(#"\c[(?x)]label(?=\n|x)#(?=\z)"#), "\\c[ is a control character")
    }

    /// Whether a rule's matches begin at its opening: its `opens` is the pattern's beginning, or is that and
    /// a lookahead that ends it.
    @Test func opensThatBeginThePatternAreRecognised() {
        #expect(PolicyPattern.opensStartsMatch(pattern: "-----BEGIN X-----[\\s\\S]*?-----END X-----", opens: "-----BEGIN X-----"))
        #expect(PolicyPattern.opensStartsMatch(pattern: #"(?i)\bbearer\s+\w{8,}"#, opens: #"(?i)\bbearer(?=\s+\z)"#))
        #expect(PolicyPattern.opensStartsMatch(pattern: #"a(?:b|c)\s*=\s*\S+"#, opens: #"a(?:b|c)(?=\s*(?:=\s*)?\z)"#))
        // Not a lookahead at the end, escaped or in a class, or nothing before it:
        #expect(!PolicyPattern.opensStartsMatch(pattern: "ab", opens: "a(?=b)b"))
        #expect(!PolicyPattern.opensStartsMatch(pattern: #"a\(?=b)"#, opens: #"a\(?=b)x"#))
        #expect(PolicyPattern.trailingLookahead(#"a\(?=b)"#) == nil)
        #expect(PolicyPattern.trailingLookahead("a[(?=]") == nil)
        #expect(PolicyPattern.trailingLookahead("(?=a)") == nil)
        #expect(!PolicyPattern.opensStartsMatch(pattern: "secret:x", opens: "(?=secret)"))
        #expect(!PolicyPattern.opensStartsMatch(pattern: "xa", opens: "a(?=b)"))
        // What the scan cannot read for certain is not recognised (the stream then holds from the start):
        #expect(PolicyPattern.trailingLookahead(#"ab\Q(?=c)"#) == nil)
        #expect(!PolicyPattern.opensStartsMatch(pattern: #"ab\Q\E[\s\S]*?END"#, opens: #"ab\Q(?=c)"#))
        #expect(PolicyPattern.trailingLookahead("([])]x[](?=]y)") == nil)
        #expect(PolicyPattern.trailingLookahead("[[a](?=y]") == nil)
        #expect(PolicyPattern.trailingLookahead("(?x) a (?=b)") == nil)
        #expect(PolicyPattern.trailingLookahead("é(?=b)") == nil)
    }
}

/// Execution ids: the wire's form (`^ex_[0-9a-f]{32}$`, protocol/schema), random, distinct.
@Suite struct ExecutionIDTests {
    @Test func idsHaveTheWireFormAndDoNotRepeat() {
        let ids = (0..<10_000).map { _ in ExecutionService.newExecutionID() }
        #expect(Set(ids).count == ids.count)
        for id in ids.prefix(100) {
            #expect(id.count == 35 && id.hasPrefix("ex_"))
            #expect(id.dropFirst(3).allSatisfy { ("0"..."9").contains($0) || ("a"..."f").contains($0) }, "\(id)")
        }
        // Leading zeros are kept: every id is 32 digits.
        #expect(ids.allSatisfy { $0.count == 35 })
    }
}
