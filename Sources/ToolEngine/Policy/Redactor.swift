import Foundation
import JSONSchema
import ToolProtocol

/// Replaces what the policy's `redact` patterns match with `[REDACTED:<name>]`, in outputs and in
/// everything recorded. Valid UTF-8 is matched as text; other bytes are matched as Latin-1 (one
/// character per byte), so ASCII patterns still find secrets in binary output and every byte outside a
/// match comes back unchanged.
///
/// The text is the sandbox's output, which a caller controls, and a backtracking pattern can take
/// quadratic or exponential time on crafted text (the shipped `private_key` rule on a long run of
/// `-----BEGIN … PRIVATE KEY-----` lines without an end was quadratic until it was rewritten). So every
/// redaction — of one text, or of all the strings of one JSON value — spends from one `RegexBudget`
/// (a quarter second, plus 250 ns per character scanned), and a pattern that runs
/// out cannot say what is a secret: the text is withheld (`withheld(_:)`), closed. On the cooperative
/// pool, redaction goes through `offloading`: a small text is first redacted inline within 5 ms in all,
/// and only when a pattern gives up there, again on a matching thread with full budgets.
public struct Redactor: Sendable {
    public let patterns: [PolicyPattern]
    /// Set for an inline attempt (`offloading`): its one budget, and whether a pattern gave up in it.
    private let attempt: InlineAttempt?

    public init(_ patterns: [PolicyPattern]) {
        self.init(patterns, attempt: nil)
    }

    private init(_ patterns: [PolicyPattern], attempt: InlineAttempt?) {
        self.patterns = patterns
        self.attempt = attempt
    }

    /// A redaction's budget: a fresh full one, or the inline attempt's, shared by all of its redactions.
    private func budget() -> RegexBudget { attempt?.budget ?? RegexBudget() }

    public var isEmpty: Bool { patterns.isEmpty }

    /// What replaces a whole text when `name` ran out of time on it.
    public static func withheld(_ name: String) -> String {
        "[REDACTED:\(name): withheld, the pattern hit its time limit]"
    }

    /// The bytes with every match replaced, and the names of the patterns that matched (in order, once each).
    public func redact(_ bytes: [UInt8]) -> (bytes: [UInt8], matched: [String]) {
        guard !patterns.isEmpty, !bytes.isEmpty else { return (bytes, []) }
        let (units, isUTF8) = Self.utf16(bytes)
        let (out, matched) = redact(units: units, budget: budget())
        guard !matched.isEmpty else { return (bytes, []) }
        return (isUTF8 ? Array(String(decoding: out, as: UTF16.self).utf8) : out.map { UInt8(truncatingIfNeeded: $0) }, matched)
    }

    /// The text with every match replaced, and the names of the patterns that matched.
    public func redact(_ text: String) -> (text: String, matched: [String]) {
        redact(text, budget: budget())
    }

    func redact(_ text: String, budget: RegexBudget) -> (text: String, matched: [String]) {
        guard !patterns.isEmpty, !text.isEmpty else { return (text, []) }
        let (out, matched) = redact(units: Array(text.utf16), budget: budget)
        return (matched.isEmpty ? text : String(decoding: out, as: UTF16.self), matched)
    }

    /// The UTF-16 text with every match replaced; the whole text withheld when a pattern gives up.
    func redact(units text: [UInt16], budget: RegexBudget) -> (units: [UInt16], matched: [String]) {
        var current = text
        var matched: [String] = []
        for pattern in patterns {
            guard let found = pattern.regex.matches(in: current, budget: budget) else {
                attempt?.noteGiveUp()
                if !matched.contains(pattern.name) { matched.append(pattern.name) }
                return (Array(Self.withheld(pattern.name).utf16), matched)
            }
            guard !found.isEmpty else { continue }
            let replacement = Array("[REDACTED:\(pattern.name)]".utf16)
            var out: [UInt16] = []
            out.reserveCapacity(current.count)
            var position = 0
            for match in found {
                out += current[position..<match.lowerBound]
                out += replacement
                position = match.upperBound
            }
            out += current[position...]
            current = out
            if !matched.contains(pattern.name) { matched.append(pattern.name) }
        }
        return (current, matched)
    }

    /// Runs `body`, a redaction of `bytes` bytes of text, never long on the cooperative pool
    /// (`BlockingThreads.matchingBounded`): inline with this redactor's patterns on a 5 ms budget when the
    /// text is small, again on a matching thread with the full budget if a pattern gave up there (or at
    /// once when it is large). `body` must redact with the redactor it is given and change nothing else
    /// (it may run twice).
    public func offloading<T: Sendable>(bytes: Int, _ body: @escaping @Sendable (Redactor) -> T) async -> T {
        guard !isEmpty else { return body(self) }
        return await BlockingThreads.matchingBounded(bytes: bytes) { () -> T? in
            let attempt = InlineAttempt()
            let answer = body(Redactor(patterns, attempt: attempt))
            return attempt.gaveUp ? nil : answer
        } full: {
            body(self)
        }
    }

    /// Bytes as UTF-16 for matching: decoded when they are valid UTF-8, else one unit per byte (Latin-1).
    static func utf16(_ bytes: [UInt8]) -> (units: [UInt16], isUTF8: Bool) {
        if let text = String(validating: bytes, as: UTF8.self) { return (Array(text.utf16), true) }
        return (bytes.map { UInt16($0) }, false)
    }

    /// Every string inside a JSON value redacted (object keys kept), for arguments shown and recorded. A
    /// string member is matched together with its name as `name=value`, so `{"PASSWORD": "hunter2"}` (an
    /// `env`, a tool argument) is caught by an assignment rule as `PASSWORD=hunter2` would be.
    /// All of the value's strings spend from one budget: a value of many strings costs what one text of
    /// their total length would.
    public func redact(_ value: JSONValue) -> JSONValue {
        guard !patterns.isEmpty else { return value }
        return redact(value, budget: budget())
    }

    /// `redact(_:)` through `offloading` (briefly inline when the value's strings are few, else on a
    /// matching thread): for a caller's arguments, which may be megabytes.
    public func redactOffloading(_ value: JSONValue) async -> JSONValue {
        guard !patterns.isEmpty else { return value }
        return await offloading(bytes: value.textBytes) { $0.redact(value) }
    }

    private func redact(_ value: JSONValue, budget: RegexBudget) -> JSONValue {
        switch value {
        case .string(let s): return .string(redact(s, budget: budget).text)
        case .array(let items): return .array(items.map { redact($0, budget: budget) })
        case .object(let o):
            var out: [String: JSONValue] = [:]
            for (key, member) in o {
                guard case .string(let s) = member else {
                    out[key] = redact(member, budget: budget)
                    continue
                }
                let (joined, matched) = redact("\(key)=\(s)", budget: budget)
                if matched.isEmpty {
                    out[key] = member
                } else if joined.hasPrefix(key + "=") {
                    out[key] = .string(String(joined.dropFirst(key.count + 1)))
                } else {
                    out[key] = .string(joined)  // the match took the name too: keep only the replacement
                }
            }
            return .object(out)
        default: return value
        }
    }

    /// Where a multi-line pattern has begun in `text` and not ended: nil when every opening (a match of
    /// some pattern's `opens` regex, as a PEM header) is covered by a whole match of its pattern;
    /// otherwise the earliest position (in UTF-16 units) the stream must hold from — that opening, or 0
    /// when its pattern's matches may begin before the opening (`opensStartsMatch` false) — the latest
    /// such position, every match of every pattern in `text`, merged into sorted disjoint ranges (a
    /// cut must not split one), and whether every uncovered opening is one that holds only at the end of
    /// the text (`opensAtEnd`: a label whose value has not arrived).
    /// Undecided in time counts as open from the start: the text is held (up to the stream's bound)
    /// rather than released half-seen.
    func openSpan(_ text: [UInt16]) -> (start: Int, latest: Int, matched: [Range<Int>], atEndOnly: Bool)? {
        let budget = budget()
        var earliest: Int?
        var latest = 0
        var atEndOnly = true
        var matched: [Range<Int>] = []
        // The openings first: with none (most releases) no whole pattern needs to run here; with every
        // opening covered, only the patterns that opened.
        var opened: [(index: Int, begun: [Range<Int>])] = []
        for (index, pattern) in patterns.enumerated() {
            guard let opens = pattern.opens else { continue }
            guard let begun = opens.matches(in: text, budget: budget) else {
                attempt?.noteGiveUp()
                return (0, 0, [], false)
            }
            if !begun.isEmpty { opened.append((index, begun)) }
        }
        for (index, begun) in opened {
            let pattern = patterns[index]
            guard let whole = pattern.regex.matches(in: text, budget: budget) else {
                attempt?.noteGiveUp()
                return (0, 0, [], false)
            }
            matched += whole
            // Both in text order, whole matches disjoint: one pass finds the openings none covers.
            var j = 0
            for b in begun {
                while j < whole.count && whole[j].upperBound <= b.lowerBound { j += 1 }
                if j < whole.count && whole[j].lowerBound <= b.lowerBound { continue }
                let from = pattern.opensStartsMatch ? b.lowerBound : 0
                earliest = min(earliest ?? from, from)
                latest = max(latest, from)
                atEndOnly = atEndOnly && pattern.opensAtEnd
            }
        }
        guard let earliest else { return nil }
        for (index, pattern) in patterns.enumerated() where !opened.contains(where: { $0.index == index }) {
            guard let whole = pattern.regex.matches(in: text, budget: budget) else {
                attempt?.noteGiveUp()
                return (0, 0, [], false)
            }
            matched += whole
        }
        return (earliest, latest, Self.merged(matched), atEndOnly)
    }

    /// Every match of every pattern in `text`, merged; nil when a pattern cannot decide in time.
    func matchRanges(_ text: [UInt16]) -> [Range<Int>]? {
        let budget = budget()
        var matched: [Range<Int>] = []
        for pattern in patterns {
            guard let whole = pattern.regex.matches(in: text, budget: budget) else {
                attempt?.noteGiveUp()
                return nil
            }
            matched += whole
        }
        return Self.merged(matched)
    }

    /// Ranges sorted and merged where they overlap.
    static func merged(_ ranges: [Range<Int>]) -> [Range<Int>] {
        var out: [Range<Int>] = []
        for r in ranges.sorted(by: { $0.lowerBound < $1.lowerBound }) where !r.isEmpty {
            if let last = out.last, r.lowerBound < last.upperBound {
                out[out.count - 1] = last.lowerBound..<max(last.upperBound, r.upperBound)
            } else {
                out.append(r)
            }
        }
        return out
    }
}

/// Redacts one output stream as it is streamed (`exec.output`). Output is released in whole lines, each
/// release redacted. While a multi-line pattern has opened and not closed (its `opens` regex matched, as
/// a PEM header does, but no whole match covers it yet), the stream holds from the line it opened on —
/// what comes before goes out, never splitting a match of any pattern (for a pattern whose matches may
/// begin before its opening, from the first held line) — up to `maxHeld` bytes; beyond that, cut before
/// the open span even mid-line (`forceOut`). Patterns without `opens` are matched within a release only.
/// Final results and records are always redacted over the whole output.
///
/// While a span is open, the hold is looked at again only once it has grown by a quarter, and at least
/// 4 KiB (`recheckStep`), or when a new line arrives `recheckAfterNs` (100 ms) or more after the last look
/// (there is no timer: held lines wait for the next chunk or the end): a sandbox trickling short lines
/// after an opening made the daemon rescan the whole hold on every line — quadratic, 56 s of the daemon's
/// CPU for 60 KB of two-byte lines, outside the sandbox's cgroup. Now a hold costs about a dozen looks,
/// plus at most ten a second. One exception: a hold whose only openings end what was looked at (a label
/// waiting for its value, `PolicyPattern.opensAtEnd`) is looked at again at once, while under 4 KiB, when a
/// line with a visible character comes — that line decides it; an early look that releases nothing (a
/// chain of matches across lines) is not repeated until a look releases something, so such a hold costs
/// at most about twice the looks of another.
public final class StreamRedactor: @unchecked Sendable {
    // @unchecked: used by one execution's output callback, which the sandbox calls from one thread.
    private let redactor: Redactor
    private var held: [UInt8] = []
    /// The index in `held` of its last newline.
    private var lastNewline: Int?
    private let maxHeld: Int
    private let recheckAfterNs: UInt64
    private let clock: @Sendable () -> UInt64
    /// While a span is open: the held size at which to look again, when the last look was, and the
    /// newline it looked up to.
    private var recheckAt: Int?
    private var lastLookNs: UInt64 = 0
    private var lookedUpTo = 0
    /// The last look found only openings at the end of what it saw (a label waiting for its value): the
    /// next line with a visible character decides them, so it is looked at at once while the hold is small.
    private var openAtEndOnly = false
    /// An early look released nothing (a chain of matches across lines, whitespace the regex takes): no
    /// more early looks until a look releases something — each would rescan the hold for nothing.
    private var earlyLookSpent = false
    /// How many times the held text was looked at for an open span (what the throttle bounds).
    private(set) var looks = 0

    public init(
        _ redactor: Redactor, maxHeld: Int = 64 << 10, recheckAfterNs: UInt64 = 100_000_000,
        clock: @escaping @Sendable () -> UInt64 = { DispatchTime.now().uptimeNanoseconds }
    ) {
        self.redactor = redactor
        self.maxHeld = maxHeld
        self.recheckAfterNs = recheckAfterNs
        self.clock = clock
    }

    /// How much the held text must grow after a look that found a span open before the next look.
    static func recheckStep(held: Int) -> Int { max(4 << 10, held / 4) }

    /// Up to this much held, a line with a visible character after a label is looked at at once (once more
    /// after a look that released nothing; see `earlyLookSpent`).
    static let eagerLookBytes = 4 << 10

    /// A visible ASCII character: a line without one (spaces, tabs, or non-ASCII bytes such as a
    /// no-break space, which the rules' `\s` may take) does not decide a label.
    static func isVisible(_ byte: UInt8) -> Bool { (0x21...0x7E).contains(byte) }

    /// Takes a chunk; returns what may be sent now (possibly nothing).
    public func feed(_ chunk: [UInt8]) -> [UInt8] {
        let base = held.count
        held += chunk
        if let i = chunk.lastIndex(of: UInt8(ascii: "\n")) { lastNewline = base + i }
        guard let newline = lastNewline else {
            return held.count > maxHeld ? forceOut() : []
        }
        let over = held.count > maxHeld
        var early = false
        if !over, let recheckAt, held.count < recheckAt {
            // A label waiting for its value: a line with a visible character decides it (a look of at most
            // `eagerLookBytes`; after one that released nothing, the throttle below until one releases).
            early = openAtEndOnly && !earlyLookSpent && held.count <= Self.eagerLookBytes && newline + 1 > lookedUpTo
                && held[lookedUpTo...newline].contains { Self.isVisible($0) }
            // Timed: only for a new line since the last look (an unchanged hold needs no second look).
            guard early || (newline + 1 > lookedUpTo && clock() &- lastLookNs >= recheckAfterNs) else { return [] }
        }
        looks += 1
        lastLookNs = clock()
        lookedUpTo = newline + 1
        let (units, _) = Redactor.utf16(Array(held[...newline]))
        guard let open = redactor.openSpan(units) else { return release(upTo: newline + 1) }
        // Everything before the line the span opened on goes out now, never splitting a match.
        var cut = Self.lineStart(units, before: open.start)
        var k = open.matched.lastIndex { $0.lowerBound < cut } ?? -1
        while k >= 0 && cut > 0 {
            let range = open.matched[k]
            if range.lowerBound < cut && cut < range.upperBound { cut = Self.lineStart(units, before: range.lowerBound) }
            if range.lowerBound >= cut || range.upperBound <= cut { k -= 1 }
        }
        var released = release(upTo: Self.byteOffset(held, afterNewlines: units[..<cut].count { $0 == 0x0A }))
        earlyLookSpent = cut == 0 && (early || earlyLookSpent)
        if held.count > maxHeld {
            released += forceOut()
            return released
        }
        recheckAt = held.count + Self.recheckStep(held: held.count)
        openAtEndOnly = open.atEndOnly
        lookedUpTo = lastNewline.map { $0 + 1 } ?? 0
        return released
    }

    /// The hold is past its bound with no line to release before an open span (one long line, or lines
    /// of matches chained into each other): what precedes the earliest open span goes out, cut at the
    /// opening itself — mid-line, never inside a match found in what is held, nor inside a character;
    /// with nothing open, all but the last 4 KiB (a secret may have begun there). An open span that starts
    /// the hold is past the bound itself: it goes out as it stands, up to the latest opening.
    private func forceOut() -> [UInt8] {
        looks += 1
        // A read may have ended inside a UTF-8 character: those bytes stay held, out of the decision, so
        // the rest reads as text and no cut splits a character.
        let end = held.count - Self.incompleteUTF8Tail(held)
        let (units, isUTF8) = Redactor.utf16(Array(held[..<end]))
        // A cut at `position`, moved back to a character's start and out of any match.
        func safe(_ position: Int, _ ranges: [Range<Int>]) -> Int {
            var cut = position
            if isUTF8 {
                if cut > 0 && cut < units.count && UTF16.isTrailSurrogate(units[cut]) { cut -= 1 }
            } else {
                // Not text (units are bytes): still never inside what looks like a multi-byte character.
                var back = 0
                while back < 3 && cut > 1 && cut < units.count && units[cut] & 0xC0 == 0x80 {
                    cut -= 1
                    back += 1
                }
            }
            if let covering = ranges.first(where: { $0.lowerBound < cut && cut < $0.upperBound }) { cut = covering.lowerBound }
            return cut
        }
        var cut: Int
        if let open = redactor.openSpan(units) {
            cut = safe(open.start, open.matched)
            // The earliest span started the hold and is past the bound itself (a header that never closes,
            // as a grep hit or a source line is): it goes out as it stands, up to the latest opening.
            if cut == 0 { cut = safe(open.latest, open.matched) }
        } else {
            // Undecided in time: no ranges; the release is redacted (or withheld) whole.
            cut = safe(max(0, units.count - (4 << 10)), redactor.matchRanges(units) ?? [])
        }
        guard cut > 0 else { return release(upTo: end) }  // one span past the bound: as it stands
        return release(upTo: isUTF8 ? String(decoding: units[..<cut], as: UTF16.self).utf8.count : cut)
    }

    /// How many bytes at the end of `bytes` begin a UTF-8 character they do not finish (0 to 3).
    static func incompleteUTF8Tail(_ bytes: [UInt8]) -> Int {
        var i = bytes.count - 1
        var continuation = 0
        while i >= 0 && continuation < 3 && bytes[i] & 0xC0 == 0x80 {
            continuation += 1
            i -= 1
        }
        guard i >= 0 else { return 0 }
        let lead = bytes[i]
        let length = lead & 0xE0 == 0xC0 ? 2 : lead & 0xF0 == 0xE0 ? 3 : lead & 0xF8 == 0xF0 ? 4 : 1
        return length > continuation + 1 ? continuation + 1 : 0
    }

    /// The index (in `units`) where the line holding `position` starts.
    static func lineStart(_ units: [UInt16], before position: Int) -> Int {
        guard position > 0, let newline = units[..<position].lastIndex(of: 0x0A) else { return 0 }
        return newline + 1
    }

    /// The index (in `bytes`) just after its `count`-th newline (0 for none): a newline is one byte and one
    /// UTF-16 unit, so lines count the same in both.
    static func byteOffset(_ bytes: [UInt8], afterNewlines count: Int) -> Int {
        guard count > 0 else { return 0 }
        var seen = 0
        for (i, byte) in bytes.enumerated() where byte == UInt8(ascii: "\n") {
            seen += 1
            if seen == count { return i + 1 }
        }
        return bytes.count
    }

    /// Releases `held[..<end]`, redacted; the open-span state goes with it.
    private func release(upTo end: Int) -> [UInt8] {
        recheckAt = nil
        openAtEndOnly = false
        if end > 0 { earlyLookSpent = false }
        guard end > 0 else { return [] }
        let out = Array(held[..<end])
        held.removeFirst(end)
        if let newline = lastNewline { lastNewline = newline >= end ? newline - end : nil }
        lookedUpTo = max(0, lookedUpTo - end)
        return redactor.redact(out).bytes
    }

    /// The bytes held back so far.
    public var heldBytes: Int { held.count }

    /// Everything still held, redacted: what goes out at the end of the stream.
    public func flush() -> [UInt8] {
        defer {
            held = []
            lastNewline = nil
            recheckAt = nil
            openAtEndOnly = false
            earlyLookSpent = false
            lookedUpTo = 0
        }
        return redactor.redact(held).bytes
    }

    /// Everything still held, redacted with `other` (the stream's own redactor, as `Redactor.offloading`
    /// hands it out), the stream left as it is: the end of the stream, where the redaction may be redone.
    public func rest(redactedWith other: Redactor) -> [UInt8] { other.redact(held).bytes }
}

/// An inline attempt at redaction (`Redactor.offloading`): the one budget all of its matching spends
/// (`BlockingThreads.inlineBudget()`), and whether a pattern gave up in it (the attempt cannot say; it is
/// redone with full budgets).
final class InlineAttempt: @unchecked Sendable {
    // @unchecked: used by one attempt, on the task that runs it, one match at a time (`RegexBudget`).
    let budget = BlockingThreads.inlineBudget()
    private(set) var gaveUp = false
    func noteGiveUp() { gaveUp = true }
}
