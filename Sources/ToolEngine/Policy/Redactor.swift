import Foundation
import ToolProtocol

/// Replaces what the policy's `redact` patterns match with `[REDACTED:<name>]`, in outputs and in
/// everything recorded. Valid UTF-8 is matched as text; other bytes are matched as Latin-1 (one
/// character per byte), so ASCII patterns still find secrets in binary output and every byte outside a
/// match comes back unchanged.
public struct Redactor: Sendable {
    public let patterns: [PolicyPattern]

    public init(_ patterns: [PolicyPattern]) { self.patterns = patterns }

    public var isEmpty: Bool { patterns.isEmpty }

    /// The bytes with every match replaced, and the names of the patterns that matched (in order, once each).
    public func redact(_ bytes: [UInt8]) -> (bytes: [UInt8], matched: [String]) {
        guard !patterns.isEmpty, !bytes.isEmpty else { return (bytes, []) }
        if let text = String(validating: bytes, as: UTF8.self) {
            let (out, matched) = redact(text)
            return matched.isEmpty ? (bytes, []) : (Array(out.utf8), matched)
        }
        let latin1 = String(decoding: bytes.map { UInt16($0) }, as: UTF16.self)
        let (out, matched) = redact(latin1)
        guard !matched.isEmpty else { return (bytes, []) }
        return (out.unicodeScalars.map { UInt8(truncatingIfNeeded: $0.value) }, matched)
    }

    /// The text with every match replaced, and the names of the patterns that matched.
    public func redact(_ text: String) -> (text: String, matched: [String]) {
        // One NSString for all patterns: ICU reads UTF-16, and bridging a String costs a copy per call.
        var current = NSString(string: text)
        var matched: [String] = []
        for pattern in patterns {
            let view = current as String
            let range = NSRange(location: 0, length: current.length)
            guard pattern.regex.firstMatch(in: view, range: range) != nil else { continue }
            let replacement = NSRegularExpression.escapedTemplate(for: "[REDACTED:\(pattern.name)]")
            current = NSString(string: pattern.regex.stringByReplacingMatches(in: view, range: range, withTemplate: replacement))
            if !matched.contains(pattern.name) { matched.append(pattern.name) }
        }
        return (matched.isEmpty ? text : current as String, matched)
    }

    /// Every string inside a JSON value redacted (object keys kept), for arguments shown and recorded. A
    /// string member is matched together with its name as `name=value`, so `{"PASSWORD": "hunter2"}` (an
    /// `env`, a tool argument) is caught by an assignment rule as `PASSWORD=hunter2` would be.
    public func redact(_ value: JSONValue) -> JSONValue {
        guard !patterns.isEmpty else { return value }
        switch value {
        case .string(let s): return .string(redact(s).text)
        case .array(let items): return .array(items.map { redact($0) })
        case .object(let o):
            var out: [String: JSONValue] = [:]
            for (key, member) in o {
                guard case .string(let s) = member else {
                    out[key] = redact(member)
                    continue
                }
                let (joined, matched) = redact("\(key)=\(s)")
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

    /// Whether a multi-line pattern has begun in `text` but not ended: some pattern's `opens` regex
    /// matches more often than the pattern itself (a PEM header without its footer yet).
    func hasOpenSpan(_ text: String) -> Bool {
        let range = NSRange(text.startIndex..., in: text)
        for pattern in patterns {
            guard let opens = pattern.opens else { continue }
            if opens.numberOfMatches(in: text, range: range) > pattern.regex.numberOfMatches(in: text, range: range) {
                return true
            }
        }
        return false
    }
}

/// Redacts one output stream as it is streamed (`exec.output`). Output is released in whole lines, each
/// release redacted; while a multi-line pattern has opened and not closed (its `opens` regex matched, as
/// a PEM header does, but the whole pattern not yet), everything is held — up to `maxHeld` bytes, after
/// which the held text is released redacted as it stands. Patterns without `opens` are matched within a
/// release only. Final results and records are always redacted over the whole output.
public final class StreamRedactor: @unchecked Sendable {
    // @unchecked: used by one execution's output callback, which the sandbox calls from one thread.
    private let redactor: Redactor
    private var held: [UInt8] = []
    private let maxHeld: Int

    public init(_ redactor: Redactor, maxHeld: Int = 64 << 10) {
        self.redactor = redactor
        self.maxHeld = maxHeld
    }

    /// Takes a chunk; returns what may be sent now (possibly nothing).
    public func feed(_ chunk: [UInt8]) -> [UInt8] {
        held += chunk
        guard let lastNewline = held.lastIndex(of: UInt8(ascii: "\n")) else {
            return held.count > maxHeld ? flush() : []
        }
        let complete = Array(held[...lastNewline])
        let text = String(validating: complete, as: UTF8.self) ?? String(decoding: complete.map { UInt16($0) }, as: UTF16.self)
        if redactor.hasOpenSpan(text) && held.count <= maxHeld { return [] }
        held.removeFirst(lastNewline + 1)
        return redactor.redact(complete).bytes
    }

    /// The end of the stream: everything still held, redacted.
    public func flush() -> [UInt8] {
        defer { held = [] }
        return redactor.redact(held).bytes
    }
}
