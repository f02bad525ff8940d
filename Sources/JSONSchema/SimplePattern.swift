/// A direct matcher for the patterns tool schemas mostly use: a sequence of literals, `.`, classes
/// (`[a-z0-9_]`, `\d`, `\w`, `\s` and negations) each with an optional greedy quantifier, optionally
/// anchored by `^` and `$`. Such patterns are matched on the UTF-8 bytes in place, with no bridging to
/// UTF-16 and no allocation; ICU costs microseconds per call for the same work. Anything else (groups,
/// alternation, lazy quantifiers, lookaround, `\b`, `\u` escapes…) is left to ICU: `init` returns nil.
///
/// Semantics are ECMA-262's: `\d` and `\w` are ASCII-only, `.` excludes line terminators, `$` matches only
/// at the end, and an unanchored pattern may match anywhere. Backtracking is the usual greedy one.
struct SimplePattern: Sendable {
    private struct Step: Sendable {
        var set: ScalarSet
        var min: Int
        var max: Int
    }

    private let steps: [Step]
    private let anchoredStart: Bool
    private let anchoredEnd: Bool

    init?(_ source: String) {
        let scalars = Array(source.unicodeScalars)
        var index = 0
        var steps: [Step] = []
        var anchoredStart = false
        var anchoredEnd = false
        if scalars.first == "^" {
            anchoredStart = true
            index = 1
        }
        while index < scalars.count {
            let scalar = scalars[index]
            index += 1
            var set: ScalarSet
            switch scalar {
            case "$" where index == scalars.count:
                anchoredEnd = true
                continue
            case "^", "$", "(", ")", "|", "{", "}", "*", "+", "?", "]":
                return nil
            case ".":
                set = .dot
            case "[":
                guard let parsed = Self.parseClass(scalars, &index) else { return nil }
                set = parsed
            case "\\":
                guard let escaped = Self.escape(scalars, &index, inClass: false) else { return nil }
                set = escaped
            default:
                set = ScalarSet(scalar)
            }
            var step = Step(set: set, min: 1, max: 1)
            if index < scalars.count {
                switch scalars[index] {
                case "*": (step.min, step.max, index) = (0, .max, index + 1)
                case "+": (step.min, step.max, index) = (1, .max, index + 1)
                case "?": (step.min, step.max, index) = (0, 1, index + 1)
                case "{":
                    guard let (low, high) = Self.parseBraces(scalars, &index) else { return nil }
                    (step.min, step.max) = (low, high)
                default: break
                }
                // A lazy quantifier (`*?`) or a quantifier on a quantifier is not for this matcher.
                if index < scalars.count, ["?", "*", "+", "{"].contains(scalars[index]) { return nil }
            }
            steps.append(step)
        }
        self.steps = steps
        self.anchoredStart = anchoredStart
        self.anchoredEnd = anchoredEnd
    }

    /// Scalars examined (read or given back) per match, at most: a fixed allowance plus a few per byte of
    /// the text. Matching is linear for most patterns, but greedy backtracking over adjacent overlapping
    /// steps (`^\d*\d*\d*x`) or an unanchored search over a long text is polynomial.
    static func budget(forBytes count: Int) -> Int { 1_000_000 + 32 * count }

    func match(_ text: String) -> RegexMatch {
        var text = text
        return text.withUTF8 { bytes in
            steps.withUnsafeBufferPointer { steps in
                var budget = Self.budget(forBytes: bytes.count)
                func decided(_ found: Bool) -> RegexMatch { found ? .match : budget < 0 ? .gaveUp : .noMatch }
                if anchoredStart { return decided(match(steps, 0, 0, bytes, &budget)) }
                var start = 0
                while true {
                    if match(steps, 0, start, bytes, &budget) { return .match }
                    guard start < bytes.count, budget >= 0 else { return decided(false) }
                    start += Self.decode(bytes, start).length
                }
            }
        }
    }

    /// Whether the steps from `stepIndex` match at `position`; false also when `budget` ran out (< 0).
    private func match(
        _ steps: UnsafeBufferPointer<Step>, _ stepIndex: Int, _ position: Int, _ bytes: UnsafeBufferPointer<UInt8>,
        _ budget: inout Int
    ) -> Bool {
        guard stepIndex < steps.count else { return !anchoredEnd || position == bytes.count }
        let step = steps.baseAddress! + stepIndex
        let maximum = step.pointee.max
        let minimum = step.pointee.min
        var end = position
        var count = 0
        while count < maximum && end < bytes.count {
            let (scalar, length) = Self.decode(bytes, end)
            guard step.pointee.set.contains(scalar) else { break }
            end += length
            count += 1
        }
        budget -= count + 1
        guard count >= minimum, budget >= 0 else { return false }
        while true {
            if match(steps, stepIndex + 1, end, bytes, &budget) { return true }
            guard count > minimum, budget >= 0 else { return false }
            // Give back one scalar: step over UTF-8 continuation bytes.
            end -= 1
            while end > position && bytes[end] & 0xC0 == 0x80 { end -= 1 }
            count -= 1
            budget -= 1
        }
    }

    /// The scalar starting at `offset` of valid UTF-8 and its length in bytes.
    @inline(__always)
    private static func decode(_ bytes: UnsafeBufferPointer<UInt8>, _ offset: Int) -> (scalar: UInt32, length: Int) {
        let lead = UInt32(bytes[offset])
        if lead < 0x80 { return (lead, 1) }
        if lead < 0xE0 { return ((lead & 0x1F) << 6 | UInt32(bytes[offset + 1] & 0x3F), 2) }
        if lead < 0xF0 {
            return (
                (lead & 0x0F) << 12 | UInt32(bytes[offset + 1] & 0x3F) << 6 | UInt32(bytes[offset + 2] & 0x3F), 3
            )
        }
        return (
            (lead & 0x07) << 18 | UInt32(bytes[offset + 1] & 0x3F) << 12 | UInt32(bytes[offset + 2] & 0x3F) << 6
                | UInt32(bytes[offset + 3] & 0x3F), 4
        )
    }

    /// `\x` outside or inside a class; nil for escapes this matcher does not take on.
    private static func escape(_ scalars: [Unicode.Scalar], _ index: inout Int, inClass: Bool) -> ScalarSet? {
        guard index < scalars.count else { return nil }
        let scalar = scalars[index]
        index += 1
        switch scalar {
        case "u":
            // `\uXXXX`, exactly four hex digits (the `\u{…}` form needs the u flag, which schemas lack).
            guard index + 4 <= scalars.count, scalars[index..<index + 4].allSatisfy(\.properties.isASCIIHexDigit),
                let value = UInt32(String(String.UnicodeScalarView(scalars[index..<index + 4])), radix: 16),
                let decoded = Unicode.Scalar(value)
            else { return nil }
            index += 4
            return ScalarSet(decoded)
        case "d": return .digit
        case "w": return .word
        case "s": return .space
        case "D": return inClass ? nil : ScalarSet.digit.inverted
        case "W": return inClass ? nil : ScalarSet.word.inverted
        case "S": return inClass ? nil : ScalarSet.space.inverted
        case "n": return ScalarSet("\n")
        case "r": return ScalarSet("\r")
        case "t": return ScalarSet("\t")
        case "f": return ScalarSet("\u{0C}")
        case "v": return ScalarSet("\u{0B}")
        default:
            // Escaped punctuation is itself; letters and digits are escapes with other meanings.
            guard scalar.isASCII, !scalar.properties.isAlphabetic, !("0"..."9").contains(scalar) else { return nil }
            return ScalarSet(scalar)
        }
    }

    /// After `[`: members up to `]`. Ranges between single characters; no nested or empty classes.
    private static func parseClass(_ scalars: [Unicode.Scalar], _ index: inout Int) -> ScalarSet? {
        var set = ScalarSet.empty
        var negated = false
        if index < scalars.count && scalars[index] == "^" {
            negated = true
            index += 1
        }
        if index < scalars.count && scalars[index] == "]" { return nil }
        while index < scalars.count {
            var scalar = scalars[index]
            index += 1
            if scalar == "]" { return negated ? set.inverted : set }
            if scalar == "[" { return nil }
            if scalar == "\\" {
                guard let escaped = escape(scalars, &index, inClass: true) else { return nil }
                guard let single = escaped.single else {
                    set.formUnion(escaped)
                    continue
                }
                scalar = single
            }
            // A range `a-z`, unless the `-` is last (`[a-]`).
            if index + 1 < scalars.count && scalars[index] == "-" && scalars[index + 1] != "]" {
                var upper = scalars[index + 1]
                index += 2
                if upper == "\\" {
                    guard let escaped = escape(scalars, &index, inClass: true), let single = escaped.single
                    else { return nil }
                    upper = single
                }
                guard scalar.value <= upper.value else { return nil }
                set.insert(scalar.value...upper.value)
            } else {
                set.insert(scalar.value...scalar.value)
            }
        }
        return nil
    }

    /// After an atom, at `{`: `{n}`, `{n,}` or `{n,m}`.
    private static func parseBraces(_ scalars: [Unicode.Scalar], _ index: inout Int) -> (Int, Int)? {
        var cursor = index + 1
        func number() -> Int? {
            var value: Int?
            while cursor < scalars.count, let digit = Int(String(scalars[cursor])), ("0"..."9").contains(scalars[cursor]) {
                value = (value ?? 0) * 10 + digit
                guard value! < 100_000 else { return nil }
                cursor += 1
            }
            return value
        }
        guard let low = number(), cursor < scalars.count else { return nil }
        var high = low
        if scalars[cursor] == "," {
            cursor += 1
            guard cursor < scalars.count else { return nil }
            high = scalars[cursor] == "}" ? .max : (number() ?? -1)
        }
        guard cursor < scalars.count, scalars[cursor] == "}", high >= low else { return nil }
        index = cursor + 1
        return (low, high)
    }
}

/// A set of Unicode scalars: a 128-bit map for ASCII (the common case, one test) plus ranges above it.
struct ScalarSet: Sendable {
    private var low: UInt64 = 0
    private var high: UInt64 = 0
    private var ranges: [ClosedRange<UInt32>] = []
    /// Whether non-ASCII scalars are members when they are *not* in `ranges`.
    private var invertedAbove = false

    static let empty = ScalarSet()
    static let digit: ScalarSet = {
        var set = ScalarSet()
        set.insert(48...57)
        return set
    }()
    static let word: ScalarSet = {
        var set = ScalarSet()
        set.insert(48...57)
        set.insert(65...90)
        set.insert(95...95)
        set.insert(97...122)
        return set
    }()
    /// ECMA-262 WhiteSpace and LineTerminator.
    static let space: ScalarSet = {
        var set = ScalarSet()
        for range: ClosedRange<UInt32> in [
            9...13, 32...32, 0xA0...0xA0, 0x1680...0x1680, 0x2000...0x200A, 0x2028...0x2029, 0x202F...0x202F,
            0x205F...0x205F, 0x3000...0x3000, 0xFEFF...0xFEFF,
        ] { set.insert(range) }
        return set
    }()
    /// `.`: everything but line terminators.
    static let dot: ScalarSet = {
        var set = ScalarSet()
        set.insert(10...10)
        set.insert(13...13)
        set.insert(0x2028...0x2029)
        return set.inverted
    }()

    private init() {}

    init(_ scalar: Unicode.Scalar) {
        insert(scalar.value...scalar.value)
    }

    /// The one scalar in this set, if it has exactly one.
    var single: Unicode.Scalar? {
        guard !invertedAbove else { return nil }
        let asciiCount = low.nonzeroBitCount + high.nonzeroBitCount
        if asciiCount == 1 && ranges.isEmpty {
            let value = low != 0 ? low.trailingZeroBitCount : 64 + high.trailingZeroBitCount
            return Unicode.Scalar(UInt8(value))
        }
        if asciiCount == 0 && ranges.count == 1 && ranges[0].count == 1 { return Unicode.Scalar(ranges[0].lowerBound) }
        return nil
    }

    mutating func insert(_ range: ClosedRange<UInt32>) {
        precondition(!invertedAbove, "insert into an inverted set")
        if range.lowerBound < 128 {
            for value in range.lowerBound...min(range.upperBound, 127) {
                if value < 64 { low |= 1 << value } else { high |= 1 << (value - 64) }
            }
        }
        if range.upperBound >= 128 { ranges.append(max(range.lowerBound, 128)...range.upperBound) }
    }

    mutating func formUnion(_ other: ScalarSet) {
        precondition(!invertedAbove && !other.invertedAbove, "union with an inverted set")
        low |= other.low
        high |= other.high
        ranges += other.ranges
    }

    var inverted: ScalarSet {
        var result = self
        result.low = ~low
        result.high = ~high
        result.invertedAbove = !invertedAbove
        return result
    }

    @inline(__always)
    func contains(_ scalar: UInt32) -> Bool {
        if scalar < 64 { return low & (1 << scalar) != 0 }
        if scalar < 128 { return high & (1 << (scalar - 64)) != 0 }
        return ranges.contains { $0.contains(scalar) } != invertedAbove
    }
}
