import Foundation
import Testing
import ToolProtocol
import ToolRecords

/// The result cache: hits and misses, expiry, least-recently-used eviction by count and by bytes, and
/// invalidation when a tool's manifest changes.
@Suite struct CacheTests {
    static func put(
        _ store: RecordStore, _ key: String, tool: String = "shell", digest: String = "m1", bytes: Int = 10,
        at: Int64 = 0, ttl: Int64 = 60_000
    ) throws -> Bool {
        try store.cachePut(
            key: key, tool: tool, manifestDigest: digest, result: Array(repeating: UInt8(ascii: "x"), count: bytes),
            now: Fixture.at(at), expiresAt: Fixture.at(at + ttl))
    }

    static func keys(_ store: RecordStore, _ candidates: [String], at: Int64) throws -> [String] {
        // Looking keys up touches them; callers ask at the end of a test only.
        try candidates.filter { try store.cacheGet(key: $0, now: Fixture.at(at)) != nil }
    }

    @Test func aMissReturnsNilAndAHitReturnsTheStoredResultCountingHits() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let store = try dir.store()
        #expect(try store.cacheGet(key: "k1", now: Fixture.t0) == nil)
        let result = Array(#"{"tool":"shell","status":"exited"}"#.utf8)
        #expect(
            try store.cachePut(
                key: "k1", tool: "shell", manifestDigest: "m1", result: result, now: Fixture.t0,
                expiresAt: Fixture.at(1000)))
        let first = try #require(try store.cacheGet(key: "k1", now: Fixture.at(10)))
        #expect(first.result == result && first.tool == "shell" && first.manifestDigest == "m1" && first.hits == 1)
        #expect(first.createdAt == Fixture.t0 && first.expiresAt == Fixture.at(1000))
        #expect(try store.cacheGet(key: "k1", now: Fixture.at(20))?.hits == 2)
        #expect(try store.cacheUsage() == CacheUsage(entries: 1, bytes: result.count))
    }

    @Test func anEntryPastItsExpiryIsAMissAndIsDeleted() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let store = try dir.store()
        #expect(try Self.put(store, "k1", ttl: 1000))
        #expect(try store.cacheGet(key: "k1", now: Fixture.at(999)) != nil)
        #expect(try store.cacheGet(key: "k1", now: Fixture.at(1000)) == nil, "expiry is exclusive")
        #expect(try store.cacheUsage().entries == 0)
        #expect(try !Self.put(store, "k2", ttl: 0), "an entry that is already expired is not stored")
    }

    @Test func beyondMaxEntriesTheLeastRecentlyUsedEntryIsEvicted() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let store = try dir.store(RecordSettings(cacheMaxEntries: 3))
        for (i, key) in ["a", "b", "c"].enumerated() { #expect(try Self.put(store, key, at: Int64(i))) }
        _ = try store.cacheGet(key: "a", now: Fixture.at(5))  // a is now more recent than b and c
        #expect(try Self.put(store, "d", at: 6))
        #expect(try store.cacheUsage().entries == 3)
        #expect(try Self.keys(store, ["a", "b", "c", "d"], at: 7) == ["a", "c", "d"])
    }

    @Test func beyondMaxBytesLeastRecentlyUsedEntriesAreEvictedUntilTheRestFits() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let store = try dir.store(RecordSettings(cacheMaxEntries: 100, cacheMaxBytes: 100))
        #expect(try Self.put(store, "a", bytes: 40, at: 0))
        #expect(try Self.put(store, "b", bytes: 40, at: 1))
        _ = try store.cacheGet(key: "a", now: Fixture.at(2))
        #expect(try Self.put(store, "c", bytes: 40, at: 3))
        #expect(try store.cacheUsage() == CacheUsage(entries: 2, bytes: 80))
        #expect(try Self.put(store, "big", bytes: 90, at: 4))
        #expect(try store.cacheUsage() == CacheUsage(entries: 1, bytes: 90))
        #expect(try !Self.put(store, "huge", bytes: 101, at: 5), "a result larger than the cache is not stored")
        #expect(try Self.keys(store, ["a", "b", "c", "big", "huge"], at: 6) == ["big"])
    }

    @Test func aChangedManifestInvalidatesOnlyItsToolsOlderEntries() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let store = try dir.store()
        #expect(try Self.put(store, "old1", digest: "m1"))
        #expect(try Self.put(store, "old2", digest: "m1"))
        #expect(try Self.put(store, "new", digest: "m2"))
        #expect(try Self.put(store, "other", tool: "python", digest: "m1"))
        #expect(try store.cacheInvalidate(tool: "shell", exceptDigest: "m2") == 2)
        #expect(try Self.keys(store, ["old1", "old2", "new", "other"], at: 1) == ["new", "other"])
        #expect(try store.cacheInvalidate(tool: "python", exceptDigest: nil) == 1)
    }

    @Test func keyMaterialSeparatesUsersVersionsAndManifestsButNotKeyOrderOrNumberSpelling() {
        func material(_ args: JSONValue, uid: UInt32? = 1000, version: String? = "1", digest: String = "m1") -> [UInt8]
        {
            CacheKey.material(tool: "shell", toolVersion: version, manifestDigest: digest, arguments: args, uid: uid)
        }
        let base = material(["a": 1, "b": "x"])
        #expect(material(.object(["b": "x", "a": .double(1.0)])) == base)
        #expect(material(["a": 1, "b": "x"], uid: 1001) != base)
        #expect(material(["a": 1, "b": "x"], uid: nil) != base)
        #expect(material(["a": 1, "b": "x"], version: "2") != base)
        #expect(material(["a": 1, "b": "x"], digest: "m2") != base)
        #expect(material(["a": 2, "b": "x"]) != base)
        #expect(
            String(decoding: base, as: UTF8.self)
                == #"{"arguments":{"a":1,"b":"x"},"key":"toold.cache.v1","manifest":"m1","tool":"shell","#
                + #""uid":1000,"version":"1"}"#
        )
    }
}
