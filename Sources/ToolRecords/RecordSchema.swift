import GRDB

/// The database schema as versioned migrations. Each migration runs once, in its own transaction; a database
/// that has applied a migration this build does not know was written by a newer toold and is refused.
///
/// Times are INTEGER milliseconds since 1970 (UTC); JSON values are TEXT in canonical JSON; booleans 0/1.
enum RecordSchema {
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("1: executions, outputs, audit, cache, counters") { db in
            try db.execute(sql: version1)
        }
        // Every index on `executions` is written twice per execution (start and end) on the request's path:
        // keep only those the common reads need. A `user` filter (admins) scans the time index; finding the
        // rows left `running` (once per daemon start) scans the table.
        migrator.registerMigration("2: fewer indexes on the execution path") { db in
            try db.execute(sql: "DROP INDEX executions_by_user; DROP INDEX executions_running;")
        }
        return migrator
    }

    /// Makes the file INCREMENTAL auto-vacuum, so `prune()` can give freed pages back to the file system
    /// (`PRAGMA incremental_vacuum`) instead of keeping the file at its high-water mark. SQLite only changes
    /// this mode before the first table exists or with a VACUUM; the migrator creates its own table before
    /// running any migration, so this runs once after the migrations, outside a transaction, and rebuilds the
    /// (then still empty) file.
    static func enableIncrementalVacuum(_ db: Database) throws -> Bool {
        guard try Int.fetchOne(db, sql: "PRAGMA auto_vacuum") != 2 else { return false }
        try db.execute(sql: "PRAGMA auto_vacuum = INCREMENTAL")
        try db.execute(sql: "VACUUM")
        return true
    }

    static let version1 = """
        CREATE TABLE executions (
            execution_id      TEXT NOT NULL PRIMARY KEY,
            request_id        TEXT,
            method            TEXT NOT NULL,
            tool              TEXT NOT NULL,
            uid               INTEGER NOT NULL,
            gid               INTEGER NOT NULL,
            pid               INTEGER NOT NULL,
            user              TEXT NOT NULL,
            started_at        INTEGER NOT NULL,
            finished_at       INTEGER,
            status            TEXT NOT NULL,
            arguments         TEXT NOT NULL,
            decision          TEXT,
            rule              TEXT,
            exit_code         INTEGER,
            signal            INTEGER,
            duration_ms       INTEGER,
            queued_ms         INTEGER,
            cpu_ms            INTEGER,
            memory_peak_bytes INTEGER,
            stdout_bytes      INTEGER,
            stderr_bytes      INTEGER,
            stdout_sha256     TEXT,
            stderr_sha256     TEXT,
            stdout_truncated  INTEGER,
            stderr_truncated  INTEGER,
            violations        TEXT NOT NULL DEFAULT '[]',
            attempts          INTEGER NOT NULL DEFAULT 1,
            cached            INTEGER NOT NULL DEFAULT 0,
            failure           TEXT,
            error_code        INTEGER,
            error_message     TEXT
        );
        -- Newest-first pages, alone or under one filter (the cursor is (started_at, execution_id)).
        CREATE INDEX executions_by_time ON executions(started_at, execution_id);
        CREATE INDEX executions_by_uid ON executions(uid, started_at, execution_id);
        CREATE INDEX executions_by_user ON executions(user, started_at, execution_id);
        CREATE INDEX executions_by_tool ON executions(tool, started_at, execution_id);
        -- markInterrupted() at every start finds the few running rows without a scan.
        CREATE INDEX executions_running ON executions(execution_id) WHERE status = 'running';

        CREATE TABLE outputs (
            execution_id            TEXT NOT NULL PRIMARY KEY
                                    REFERENCES executions(execution_id) ON DELETE CASCADE,
            stdout                  BLOB NOT NULL,
            stderr                  BLOB NOT NULL,
            stdout_stored_truncated INTEGER NOT NULL,
            stderr_stored_truncated INTEGER NOT NULL
        );

        -- Append-only; copies what it needs, so pruning the history never loses the audit.
        CREATE TABLE audit (
            id                INTEGER PRIMARY KEY,
            time              INTEGER NOT NULL,
            kind              TEXT NOT NULL,
            request_id        TEXT,
            execution_id      TEXT,
            uid               INTEGER NOT NULL,
            gid               INTEGER NOT NULL,
            pid               INTEGER NOT NULL,
            user              TEXT NOT NULL,
            method            TEXT NOT NULL,
            tool              TEXT,
            arguments         TEXT,
            decision          TEXT,
            rule              TEXT,
            status            TEXT,
            exit_code         INTEGER,
            signal            INTEGER,
            duration_ms       INTEGER,
            queued_ms         INTEGER,
            cpu_ms            INTEGER,
            memory_peak_bytes INTEGER,
            stdout_bytes      INTEGER,
            stdout_sha256     TEXT,
            stderr_bytes      INTEGER,
            stderr_sha256     TEXT,
            stdout_truncated  INTEGER,
            stderr_truncated  INTEGER,
            violations        TEXT,
            attempts          INTEGER,
            cached            INTEGER,
            failure           TEXT,
            error_code        INTEGER,
            error_message     TEXT,
            action            TEXT,
            details           TEXT
        );
        CREATE INDEX audit_by_time ON audit(time);

        CREATE TABLE cache (
            key             TEXT NOT NULL PRIMARY KEY,
            tool            TEXT NOT NULL,
            manifest_digest TEXT NOT NULL,
            result          BLOB NOT NULL,
            size_bytes      INTEGER NOT NULL,
            created_at      INTEGER NOT NULL,
            expires_at      INTEGER NOT NULL,
            last_used_at    INTEGER NOT NULL,
            -- Order of use (higher = more recent): exact LRU even within one millisecond.
            use_seq         INTEGER NOT NULL,
            hits            INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX cache_lru ON cache(use_seq, size_bytes);
        CREATE INDEX cache_by_tool ON cache(tool, manifest_digest);
        CREATE INDEX cache_by_expiry ON cache(expires_at);

        -- Monotonic totals for Prometheus counters; never pruned.
        CREATE TABLE counters (
            tool            TEXT NOT NULL,
            uid             INTEGER NOT NULL,
            status          TEXT NOT NULL,
            user            TEXT NOT NULL,
            calls           INTEGER NOT NULL DEFAULT 0,
            cache_hits      INTEGER NOT NULL DEFAULT 0,
            duration_ms_sum INTEGER NOT NULL DEFAULT 0,
            duration_count  INTEGER NOT NULL DEFAULT 0,
            queued_ms_sum   INTEGER NOT NULL DEFAULT 0,
            queued_count    INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (tool, uid, status)
        ) WITHOUT ROWID;
        """
}
