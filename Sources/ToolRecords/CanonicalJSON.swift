import ToolProtocol

/// One byte sequence per JSON value, independent of Foundation's encoder: object keys sorted by their UTF-8
/// bytes, no whitespace, strings with only the escapes JSON requires (`\"`, `\\`, `\b \f \n \r \t`, other
/// control characters as `\u00XX`), integral numbers as integers (so `1` and `1.0`, equal as `JSONValue`s,
/// serialise alike), other numbers in Swift's shortest round-trip form. Cache keys depend on these bytes, so
/// they must not change between releases: the tests pin them.
public enum CanonicalJSON {
    public static func serialize(_ value: JSONValue) -> [UInt8] {
        var out: [UInt8] = []
        write(value, into: &out)
        return out
    }

    public static func string(_ value: JSONValue) -> String { String(decoding: serialize(value), as: UTF8.self) }

    static func write(_ value: JSONValue, into out: inout [UInt8]) {
        switch value {
        case .null: out += "null".utf8
        case .bool(let b): out += (b ? "true" : "false").utf8
        case .int(let i): out += String(i).utf8
        case .double(let d): writeNumber(d, into: &out)
        case .string(let s): writeString(s, into: &out)
        case .array(let items):
            out.append(UInt8(ascii: "["))
            for (i, item) in items.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                write(item, into: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let members):
            out.append(UInt8(ascii: "{"))
            // Byte order, not String's (which compares canonically equivalent spellings as equal).
            let keys = members.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
            for (i, key) in keys.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                writeString(key, into: &out)
                out.append(UInt8(ascii: ":"))
                write(members[key]!, into: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    static func writeNumber(_ d: Double, into out: inout [UInt8]) {
        guard d.isFinite else {
            // JSON has no NaN or infinity; the parser never produces them.
            out += "null".utf8
            return
        }
        if d.rounded() == d, abs(d) < 9.0e15 {
            out += String(Int64(d)).utf8
        } else {
            out += "\(d)".utf8
        }
    }

    static func writeString(_ s: String, into out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for byte in s.utf8 {
            switch byte {
            case UInt8(ascii: "\""): out += #"\""#.utf8
            case UInt8(ascii: "\\"): out += #"\\"#.utf8
            case 0x08: out += #"\b"#.utf8
            case 0x0C: out += #"\f"#.utf8
            case 0x0A: out += #"\n"#.utf8
            case 0x0D: out += #"\r"#.utf8
            case 0x09: out += #"\t"#.utf8
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                out += #"\u00"#.utf8
                out.append(hex[Int(byte >> 4)])
                out.append(hex[Int(byte & 0xF)])
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}

/// What a result-cache key is made of. The caller hashes `material(…)` with SHA-256 and passes the lowercase
/// hex digest as the key to `RecordStore.cacheGet`/`cachePut` (the store has no SHA-256 of its own; the
/// engine has one). The material is the canonical JSON of one object, so no two different inputs share it.
public enum CacheKey {
    /// - Parameters:
    ///   - uid: the caller's uid; nil when the manifest declares the cache shared between users.
    public static func material(
        tool: String, toolVersion: String?, manifestDigest: String, arguments: JSONValue, uid: UInt32?
    ) -> [UInt8] {
        CanonicalJSON.serialize([
            "key": "toold.cache.v1",
            "tool": .string(tool),
            "version": toolVersion.map(JSONValue.string) ?? .null,
            "manifest": .string(manifestDigest),
            "arguments": arguments,
            "uid": uid.map { .int(Int64($0)) } ?? .null,
        ])
    }
}
