import Foundation
import GRDB
import ToolProtocol

/// A `tools.call` result found in the cache.
public struct CachedEntry: Sendable, Equatable {
    public var key: String
    public var tool: String
    public var manifestDigest: String
    /// The result as the caller stored it (JSON bytes).
    public var result: [UInt8]
    public var createdAt: Timestamp
    public var expiresAt: Timestamp
    /// Hits so far, this one included.
    public var hits: Int
}

/// How full the cache is.
public struct CacheUsage: Sendable, Equatable {
    public var entries: Int
    public var bytes: Int
    public init(entries: Int, bytes: Int) {
        self.entries = entries
        self.bytes = bytes
    }
}

/// The result cache: entries keyed by the caller's SHA-256 of `CacheKey.material(…)`, each with an expiry,
/// bounded by `RecordSettings.cacheMaxEntries` and `cacheMaxBytes` with least-recently-used eviction.
extension RecordStore {
    /// The live entry for `key`, marked as used now (for LRU); nil when there is none. An expired entry is
    /// deleted and reads as a miss. A hit whose LRU mark cannot be written (disk full) is still a hit.
    public func cacheGet(key: String, now: Timestamp) throws(RecordError) -> CachedEntry? {
        // A miss only reads; only a hit (or an expired entry) takes the write lock.
        let row = try read("look up cache entry \(key)") { db in
            try Row.fetchOne(db, sql: "SELECT * FROM cache WHERE key = ?", arguments: [key])
        }
        guard let row else { return nil }
        let entry = CachedEntry(
            key: key, tool: row["tool"], manifestDigest: row["manifest_digest"], result: Array(row["result"] as Data),
            createdAt: Timestamp(millisecondsSince1970: row["created_at"]),
            expiresAt: Timestamp(millisecondsSince1970: row["expires_at"]), hits: (row["hits"] as Int) + 1)
        let expired = entry.expiresAt <= now
        do {
            try write("use cache entry \(key)") { db in
                if expired {
                    try db.execute(
                        sql: "DELETE FROM cache WHERE key = ? AND expires_at <= ?",
                        arguments: [key, now.millisecondsSince1970])
                } else {
                    try db.execute(
                        sql: """
                            UPDATE cache SET last_used_at = ?, hits = hits + 1,
                                use_seq = (SELECT max(use_seq) FROM cache) + 1
                            WHERE key = ?
                            """,
                        arguments: [now.millisecondsSince1970, key])
                }
            }
        } catch {
            guard case .diskFull = error else { throw error }
            logger.warning(
                "cache entry used without recording the use: the disk is full",
                metadata: ["toold.records.cache_key": "\(key)", "toold.records.error": "\(error)"])
        }
        return expired ? nil : entry
    }

    /// Stores (or replaces) the result for `key` until `expiresAt`, then evicts expired entries and the least
    /// recently used ones until both bounds hold. Returns false, storing nothing, when the result alone is
    /// larger than `cacheMaxBytes` (or the cache is sized to hold nothing).
    @discardableResult
    public func cachePut(
        key: String, tool: String, manifestDigest: String, result: [UInt8], now: Timestamp, expiresAt: Timestamp
    ) throws(RecordError) -> Bool {
        let bounds = settings
        guard bounds.cacheMaxEntries > 0, result.count <= bounds.cacheMaxBytes, expiresAt > now else { return false }
        try write("store cache entry \(key) of \(tool)") { db in
            try db.execute(
                sql: """
                    INSERT OR REPLACE INTO cache (key, tool, manifest_digest, result, size_bytes, created_at,
                                                  expires_at, last_used_at, use_seq, hits)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, (SELECT coalesce(max(use_seq), 0) + 1 FROM cache), 0)
                    """,
                arguments: [
                    key, tool, manifestDigest, Data(result), result.count, now.millisecondsSince1970,
                    expiresAt.millisecondsSince1970, now.millisecondsSince1970,
                ])
            try db.execute(sql: "DELETE FROM cache WHERE expires_at <= ?", arguments: [now.millisecondsSince1970])
            // Keep the longest run of most recently used entries that fits both bounds; evict the rest.
            try db.execute(
                sql: """
                    DELETE FROM cache WHERE key IN (
                        SELECT key FROM (
                            SELECT key, count(*) OVER newest AS entries, sum(size_bytes) OVER newest AS bytes
                            FROM cache
                            WINDOW newest AS (ORDER BY use_seq DESC ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW))
                        WHERE entries > ? OR bytes > ?)
                    """,
                arguments: [bounds.cacheMaxEntries, bounds.cacheMaxBytes])
        }
        return true
    }

    /// Deletes the entries of `tool` made under another manifest than `exceptDigest` (all of the tool's
    /// entries when nil): a changed manifest must not answer with results of the old one. Returns how many.
    @discardableResult
    public func cacheInvalidate(tool: String, exceptDigest: String?) throws(RecordError) -> Int {
        try write("invalidate the cache entries of \(tool)") { db in
            if let exceptDigest {
                try db.execute(
                    sql: "DELETE FROM cache WHERE tool = ? AND manifest_digest != ?", arguments: [tool, exceptDigest])
            } else {
                try db.execute(sql: "DELETE FROM cache WHERE tool = ?", arguments: [tool])
            }
            return db.changesCount
        }
    }

    /// Entries and bytes in the cache now.
    public func cacheUsage() throws(RecordError) -> CacheUsage {
        try read("measure the cache") { db in
            let row = try Row.fetchOne(
                db, sql: "SELECT count(*) AS n, coalesce(sum(size_bytes), 0) AS bytes FROM cache")
            return CacheUsage(entries: row?["n"] ?? 0, bytes: row?["bytes"] ?? 0)
        }
    }
}
