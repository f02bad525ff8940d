import Testing
import ToolProtocol

@testable import ToolEngine

/// Streamed redaction (`StreamRedactor`) with the shipped rules: what it releases, and how often it looks
/// at what it holds.
@Suite struct StreamRedactorTests {
    static let shipped = Redactor(
        PolicyDocument.builtIn().entries.first { $0.principal == .everyone }?.rules.redact ?? [])

    static let header = "-----BEGIN RSA PRIVATE KEY-----\n"

    /// A sandbox that opens a span (a PEM header) and then trickles short lines made the daemon rescan the
    /// whole hold on every line: 30,000 looks at up to 64 KiB each. Now the hold is looked at again only
    /// once it has grown by a quarter (at least 4 KiB): a dozen looks, and the same text comes out.
    @Test func aTrickleAfterAnOpeningIsNotRescannedPerLine() {
        #expect(!Self.shipped.isEmpty)
        let stream = StreamRedactor(Self.shipped)
        var released = stream.feed(Array(Self.header.utf8))
        #expect(released.isEmpty, "held from the header on")
        for _ in 0..<30_000 { released += stream.feed(Array("a\n".utf8)) }
        released += stream.flush()
        #expect(stream.looks <= 20, "\(stream.looks) looks at the hold")
        // The stream's end releases the hold (60 KB, under its 64 KiB bound), redacted — an unclosed key is
        // no match: all of it, in order.
        #expect(String(decoding: released, as: UTF8.self) == Self.header + String(repeating: "a\n", count: 30_000))
    }

    /// A key that closes is still redacted whole, and what follows it goes out — at the latest when the
    /// stream ends, at once when the hold has grown enough to be looked at again.
    @Test func aClosedKeyIsRedactedAndWhatFollowsGoesOut() {
        let stream = StreamRedactor(Self.shipped)
        let key = Self.header + "MIIEpAIBAAKCAQEA1234\n-----END RSA PRIVATE KEY-----\n"
        var released = stream.feed(Array(("before\n" + key).utf8))
        #expect(String(decoding: released, as: UTF8.self) == "before\n[REDACTED:private_key]\n")
        released = stream.feed(Array(Self.header.utf8))
        released += stream.feed(Array("MIIEpAIBAAKCAQEA5678\n".utf8))
        released += stream.feed(Array("-----END RSA PRIVATE KEY-----\nafter\n".utf8))
        // Looked at when the header came and not again yet (the hold grew by less than 4 KiB).
        #expect(released.isEmpty)
        released += stream.feed(Array((String(repeating: "x", count: 5000) + "\n").utf8))
        #expect(
            String(decoding: released, as: UTF8.self)
                == "[REDACTED:private_key]\nafter\n" + String(repeating: "x", count: 5000) + "\n")
        #expect(stream.flush().isEmpty)
    }
}
