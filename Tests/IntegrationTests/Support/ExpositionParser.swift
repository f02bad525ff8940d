// Shared by Tests/ToolRecordsTests (a symlink to this file) and Tests/IntegrationTests: one strict checker of
// what toold renders, whether from the store in process or from `toolc metrics --format prometheus`.

/// A strict reader of the Prometheus text format 0.0.4 (stricter than Prometheus where the format is lax:
/// every sample needs a TYPE, no blank lines), for checking what toold renders.
enum ExpositionParser {
    struct Failure: Error, CustomStringConvertible {
        var line: Int
        var why: String
        var description: String { "line \(line): \(why)" }
    }

    struct Sample: Equatable {
        var name: String
        var labels: [String: String]
        var value: Double
    }

    struct Family {
        var type: String
        var help: String?
        var samples: [Sample] = []
    }

    static func parse(_ text: String) throws(Failure) -> [String: Family] {
        guard text.hasSuffix("\n") else { throw Failure(line: 0, why: "the exposition must end with a line feed") }
        var families: [String: Family] = [:]
        var closed: Set<String> = []
        var current: String?
        var series: Set<String> = []
        var helps: [String: String] = [:]
        let lines = text.dropLast().split(separator: "\n", omittingEmptySubsequences: false)
        for (index, rawLine) in lines.enumerated() {
            let number = index + 1
            let line = String(rawLine)
            func fail(_ why: String) -> Failure { Failure(line: number, why: "\(why): \(line)") }
            func enter(_ family: String) throws(Failure) {
                if current != family {
                    if closed.contains(family) { throw fail("samples of \(family) are not together") }
                    if let current { closed.insert(current) }
                    current = family
                }
            }
            if line.hasPrefix("# ") {
                let parts = line.dropFirst(2).split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false).map(
                    String.init)
                guard parts.count >= 2, parts[0] == "HELP" || parts[0] == "TYPE" else { continue }  // a plain comment
                let name = parts[1]
                guard isMetricName(name) else { throw fail("bad metric name") }
                try enter(name)
                if parts[0] == "TYPE" {
                    guard parts.count == 3, ["counter", "gauge", "summary", "histogram", "untyped"].contains(parts[2])
                    else {
                        throw fail("unknown type")
                    }
                    if let existing = families[name] {
                        throw fail(existing.samples.isEmpty ? "second TYPE" : "TYPE after samples")
                    }
                    families[name] = Family(type: parts[2])
                } else {
                    let help = parts.count == 3 ? parts[2] : ""
                    guard validEscapes(help, allowed: ["\\", "n"]) else { throw fail("bad escape in HELP") }
                    guard helps.updateValue(help, forKey: name) == nil else { throw fail("second HELP") }
                }
                continue
            }
            guard !line.isEmpty, !line.hasPrefix("#") else { throw fail("blank line or malformed comment") }
            let sample = try parseSample(line, fail: fail)
            let family = try familyName(of: sample.name, families: families, fail: fail)
            try enter(family)
            let type = families[family]!.type
            let key =
                sample.name + "{"
                + sample.labels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
            guard series.insert(key).inserted else { throw fail("duplicate series") }
            let isCounter =
                type == "counter"
                || (type != "gauge" && (sample.name.hasSuffix("_count") || sample.name.hasSuffix("_sum")))
            if isCounter {
                guard sample.value >= 0 else { throw fail("negative counter") }
            }
            if type == "summary", sample.name == family {
                guard let q = sample.labels["quantile"].flatMap(Double.init), (0...1).contains(q) else {
                    throw fail("summary quantile missing or outside 0…1")
                }
            }
            families[family]!.samples.append(sample)
        }
        for (name, help) in helps { families[name]?.help = help }
        return families
    }

    static func familyName(
        of sample: String, families: [String: Family], fail: (String) -> Failure
    ) throws(Failure) -> String {
        if let family = families[sample] {
            guard family.type != "histogram" else { throw fail("a histogram has no bare samples") }
            return sample
        }
        for suffix in ["_sum", "_count", "_bucket"] where sample.hasSuffix(suffix) {
            let base = String(sample.dropLast(suffix.count))
            if let family = families[base],
                family.type == "summary" && suffix != "_bucket" || family.type == "histogram"
            {
                return base
            }
        }
        throw fail("sample without a TYPE line")
    }

    static func parseSample(_ line: String, fail: (String) -> Failure) throws(Failure) -> Sample {
        let chars = Array(line.unicodeScalars)
        var i = 0
        while i < chars.count, chars[i] != "{", chars[i] != " " { i += 1 }
        let name = String(String.UnicodeScalarView(chars[0..<i]))
        guard isMetricName(name) else { throw fail("bad metric name") }
        var labels: [String: String] = [:]
        if i < chars.count, chars[i] == "{" {
            i += 1
            while i < chars.count, chars[i] != "}" {
                let start = i
                while i < chars.count, chars[i] != "=" { i += 1 }
                let label = String(String.UnicodeScalarView(chars[start..<i]))
                guard isLabelName(label), !label.hasPrefix("__") else { throw fail("bad label name \(label)") }
                guard i + 1 < chars.count, chars[i + 1] == "\"" else { throw fail("label value not quoted") }
                i += 2
                var value = ""
                while true {
                    guard i < chars.count else { throw fail("unterminated label value") }
                    let c = chars[i]
                    if c == "\"" { break }
                    if c == "\n" { throw fail("raw line feed in label value") }
                    if c == "\\" {
                        guard i + 1 < chars.count else { throw fail("dangling backslash") }
                        switch chars[i + 1] {
                        case "\\": value += "\\"
                        case "\"": value += "\""
                        case "n": value += "\n"
                        default: throw fail("bad escape in label value")
                        }
                        i += 2
                        continue
                    }
                    value.unicodeScalars.append(c)
                    i += 1
                }
                i += 1
                guard labels.updateValue(value, forKey: label) == nil else { throw fail("duplicate label \(label)") }
                if i < chars.count, chars[i] == "," { i += 1 }
            }
            guard i < chars.count else { throw fail("unterminated label set") }
            i += 1
        }
        guard i < chars.count, chars[i] == " " else { throw fail("no value") }
        let rest = String(String.UnicodeScalarView(chars[(i + 1)...])).split(
            separator: " ", omittingEmptySubsequences: false)
        guard (1...2).contains(rest.count), let value = parseValue(String(rest[0])) else { throw fail("bad value") }
        if rest.count == 2, Int64(rest[1]) == nil { throw fail("bad timestamp") }
        return Sample(name: name, labels: labels, value: value)
    }

    static func parseValue(_ text: String) -> Double? {
        switch text {
        case "NaN": return .nan
        case "+Inf": return .infinity
        case "-Inf": return -.infinity
        default:
            // Go's ParseFloat without hex forms, underscores or named values.
            let allowed = Set("0123456789.eE+-")
            guard !text.isEmpty, text.allSatisfy(allowed.contains) else { return nil }
            return Double(text)
        }
    }

    static func isMetricName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, first.isASCIILetter || first == "_" || first == ":" else {
            return false
        }
        return name.unicodeScalars.allSatisfy { $0.isASCIILetter || $0.isASCIIDigit || $0 == "_" || $0 == ":" }
    }

    static func isLabelName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, first.isASCIILetter || first == "_" else { return false }
        return name.unicodeScalars.allSatisfy { $0.isASCIILetter || $0.isASCIIDigit || $0 == "_" }
    }

    static func validEscapes(_ text: String, allowed: Set<Character>) -> Bool {
        var chars = text.makeIterator()
        while let c = chars.next() {
            if c == "\\" {
                guard let next = chars.next(), allowed.contains(next) else { return false }
            }
        }
        return true
    }
}

extension Unicode.Scalar {
    var isASCIILetter: Bool { ("a"..."z").contains(self) || ("A"..."Z").contains(self) }
    var isASCIIDigit: Bool { ("0"..."9").contains(self) }
}
