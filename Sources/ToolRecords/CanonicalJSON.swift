import ToolProtocol

/// One byte sequence per JSON value, independent of Foundation's encoder: object keys sorted by their UTF-8
/// bytes, no whitespace, strings with only the escapes JSON requires (`\"`, `\\`, `\b \f \n \r \t`, other
/// control characters as `\u00XX`), integral numbers as integers (so `1` and `1.0`, equal as `JSONValue`s,
/// serialise alike), other numbers in Swift's shortest round-trip form. Cache keys depend on these bytes, so
/// they must not change between releases: the tests pin them.
public enum CanonicalJSON {
    /// JSONCoding.serialize's output is this form (Sources/ToolProtocol/JSONText.swift): one writer for the
    /// wire and the cache keys, pinned by the tests here.
    public static func serialize(_ value: JSONValue) -> [UInt8] {
        JSONCoding.serialize(value)
    }

    public static func string(_ value: JSONValue) -> String { String(decoding: serialize(value), as: UTF8.self) }
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
