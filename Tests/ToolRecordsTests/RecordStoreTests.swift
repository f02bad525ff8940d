import Foundation
import Testing
import ToolProtocol
import ToolRecords

/// Opening, migrations, and the life of one execution record: started → finished, refused, interrupted.
@Suite struct RecordStoreTests {
    @Test func emptyDirectoryGetsAMigratedWALDatabaseWithIncrementalVacuum() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let store = try dir.store()
        let stats = try store.storageStats()
        #expect(stats.journalMode == "wal")
        #expect(stats.autoVacuum == 2, "auto_vacuum must be INCREMENTAL so prune can shrink the file")
        #expect(try store.integrityCheck())
        #expect(FileManager.default.fileExists(atPath: dir.databasePath))
    }

    @Test func reopeningKeepsRecordsAndAppliesNoMigrationTwice() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        do {
            let store = try dir.store()
            try Fixture.record(store, 1)
        }
        let reopened = try dir.store()
        let record = try reopened.get(Fixture.executionID(1), viewer: Fixture.ana)
        #expect(record.status == .exited)
        #expect(try reopened.list(ExecutionsListParams(), viewer: Fixture.root).executions.count == 1)
    }

    @Test func emptyOutputsAreReadBackEmptyWithoutAnOutputsRow() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let store = try dir.store()
        try Fixture.record(store, 1, Fixture.outcome(finishedAt: 10, stdout: []))
        try Fixture.record(store, 2)
        let empty = try store.get(Fixture.executionID(1), viewer: Fixture.ana)
        #expect(empty.stdout == "" && empty.stderr == "" && empty.stdoutStoredTruncated == false, "\(empty)")
        #expect(try store.get(Fixture.executionID(2), viewer: Fixture.ana).stdout == "hi\n")
        // Only the execution with output has an outputs row (one write less per silent execution).
        #expect(try SQLite.execute(dir.databasePath, "SELECT execution_id FROM outputs").trimmingCharacters(in: .whitespacesAndNewlines) == Fixture.executionID(2))
    }

    @Test func aFileThatIsNotADatabaseIsReportedCorrupt() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        try Data(repeating: 0x5A, count: 8192).write(to: URL(fileURLWithPath: dir.databasePath))
        #expect {
            _ = try dir.store()
        } throws: { error in
            guard case .corrupt(let path, _)? = error as? RecordError else { return false }
            return path == dir.databasePath
        }
    }

    @Test func aMissingStateDirectoryIsReportedWithThePathAndWhatToCheck() throws {
        let path = "/nonexistent-\(UUID().uuidString)/toold.db"
        #expect {
            _ = try RecordStore(path: path)
        } throws: { error in
            guard case .other(let why)? = error as? RecordError else { return false }
            return why.contains(path) && why.contains("owner and mode")
        }
    }

    @Test func aDatabaseOfANewerTooldIsRefusedNamingTheCause() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        _ = try dir.store()
        try SQLite.execute(dir.databasePath, "INSERT INTO grdb_migrations (identifier) VALUES ('99: from the future')")
        #expect {
            _ = try dir.store()
        } throws: { error in
            "\(error)".contains("newer toold")
        }
    }

    @Test func startedExecutionIsRunningUntilItFinishesWithItsOutcome() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let store = try dir.store()
        let start = Fixture.start(1, arguments: ["script": "echo hi", "n": 3])
        try store.executionStarted(start)
        let running = try store.get(start.executionID, viewer: Fixture.ana)
        #expect(running.status == .running && running.finishedAt == nil && running.durationMs == nil)
        #expect(running.arguments == ["script": "echo hi", "n": 3] && running.requestId == 1)

        var outcome = Fixture.outcome(.exited, exitCode: 3, durationMs: 42, finishedAt: 50, queuedMs: 7)
        outcome.stderr = CapturedOutput(
            bytes: [0xFF, 0x00], sha256: String(repeating: "b", count: 64), truncated: true)
        outcome.violations = ["output_bytes"]
        outcome.attempts = 2
        try store.executionFinished(start.executionID, outcome)

        let record = try store.get(start.executionID, viewer: Fixture.ana)
        #expect(record.status == .exited && record.exitCode == 3)
        #expect(
            record.finishedAt == Fixture.at(50) && record.durationMs == 42 && record.queuedMs == 7 && record.cpuMs == 21
        )
        #expect(record.memoryPeakBytes == 1 << 20 && record.attempts == 2 && record.violations == ["output_bytes"])
        #expect(record.stdout == "hi\n" && record.stdoutEncoding == .utf8 && record.stdoutBytes == 3)
        #expect(record.stderr == "/wA=" && record.stderrEncoding == .base64 && record.stderrTruncated == true)
        #expect(record.stdoutStoredTruncated == false && record.decision == "allow" && record.rule == "default allow")
        #expect(record.uid == 1000 && record.gid == 1000 && record.pid == 4242 && record.user == "ana")

        let audit = try store.auditEntries()
        #expect(audit.count == 1)
        #expect(
            audit.first?.kind == "call" && audit.first?.status == "exited"
                && audit.first?.executionID == start.executionID)
        #expect(audit.first?.fields["stderr_sha256"] == .string(String(repeating: "b", count: 64)))
        #expect(audit.first?.fields["arguments"] == ["script": "echo hi", "n": 3])
    }

    @Test func finishingTwiceOrAnUnknownExecutionIsRefusedAndChangesNothing() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let store = try dir.store()
        try Fixture.record(store, 1)
        #expect(throws: RecordError.notFound(executionID: Fixture.executionID(2))) {
            try store.executionFinished(Fixture.executionID(2), Fixture.outcome())
        }
        #expect {
            try store.executionFinished(Fixture.executionID(1), Fixture.outcome(.timeout))
        } throws: { "\($0)".contains("already ended as exited") }
        #expect(try store.get(Fixture.executionID(1), viewer: Fixture.ana).status == .exited)
        #expect(try store.auditEntries().count == 1)
        #expect {
            try store.executionStarted(Fixture.start(1))
        } throws: { error in
            guard case .other(let why)? = error as? RecordError else { return false }
            return why.contains(Fixture.executionID(1))
        }
    }

    @Test func refusedCallIsInHistoryAndAuditWithTheErrorTheCallerGot() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let store = try dir.store()
        var start = Fixture.start(7, tool: "net.fetch")
        start.decision = "deny"
        start.rule = "user:ana deny \"net.*\""
        try store.recordRefused(
            RefusedCall(
                start: start, status: .denied,
                error: RecordedError(code: -32001, message: "permission denied: net.fetch")))
        let record = try store.get(start.executionID, viewer: Fixture.ana)
        #expect(
            record.status == .denied
                && record.error == RecordedError(code: -32001, message: "permission denied: net.fetch"))
        #expect(
            record.finishedAt == record.startedAt && record.stdout == nil && record.rule == "user:ana deny \"net.*\"")
        let audit = try #require(try store.auditEntries().first)
        #expect(audit.status == "denied" && audit.fields["error_code"] == -32001 && audit.fields["decision"] == "deny")

        #expect {
            try store.recordRefused(
                RefusedCall(start: Fixture.start(8), status: .exited, error: RecordedError(code: 1, message: "x")))
        } throws: { "\($0)".contains("not a refusal") }
    }

    @Test func adminActionsAreAuditedWithKindAndDetails() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let store = try dir.store()
        try store.audit(
            AdminAction(
                at: Fixture.at(5), requestID: "r-1", caller: Fixture.root, method: "tools.register",
                action: "tool_registered", tool: "word-count", details: ["digest": "abc", "source": "registered"]))
        let entry = try #require(try store.auditEntries().first)
        #expect(entry.kind == "admin" && entry.action == "tool_registered" && entry.tool == "word-count")
        #expect(entry.method == "tools.register" && entry.uid == 0 && entry.time == Fixture.at(5))
        #expect(
            entry.fields["details"] == ["digest": "abc", "source": "registered"] && entry.fields["request_id"] == "r-1")
    }

    @Test func runningExecutionsOfACrashedDaemonBecomeInterruptedAtTheNextStart() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        do {
            let crashed = try dir.store()
            try Fixture.record(crashed, 1)
            try crashed.executionStarted(Fixture.start(2, at: 100))
            try crashed.executionStarted(Fixture.start(3, caller: Fixture.bob, at: 200))
        }
        let store = try dir.store()
        let ids = try store.markInterrupted(now: Fixture.at(1000))
        #expect(ids == [Fixture.executionID(2), Fixture.executionID(3)])
        let record = try store.get(Fixture.executionID(3), viewer: Fixture.root)
        #expect(record.status == .interrupted && record.finishedAt == Fixture.at(1000))
        #expect(record.failure?.contains("daemon stopped") == true)
        #expect(try store.get(Fixture.executionID(1), viewer: Fixture.root).status == .exited)
        #expect(try store.markInterrupted(now: Fixture.at(2000)).isEmpty, "a second start finds nothing running")
        #expect(try store.auditEntries().filter { $0.status == "interrupted" }.count == 2)
    }

    @Test func cacheHitIsRecordedAsACompletedCachedExecution() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let store = try dir.store()
        try store.recordCompleted(Fixture.start(1), Fixture.outcome(durationMs: 0, cached: true))
        let record = try store.get(Fixture.executionID(1), viewer: Fixture.ana)
        #expect(record.cached && record.status == .exited && record.finishedAt != nil)
        #expect(try store.list(ExecutionsListParams(), viewer: Fixture.ana).executions.first?.cached == true)
    }

    @Test func storedOutputIsCutToTheConfiguredSizeOnACharacterBoundaryOrNotStoredAtAll() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let store = try dir.store(RecordSettings(outputBytesPerStream: 4))
        // "aé€" is 1 + 2 + 3 bytes: 4 bytes would split the euro sign, so 3 are kept.
        try Fixture.record(store, 1, Fixture.outcome(stdout: Array("aé€".utf8)))
        let cut = try store.get(Fixture.executionID(1), viewer: Fixture.ana)
        #expect(cut.stdout == "aé" && cut.stdoutEncoding == .utf8 && cut.stdoutStoredTruncated == true)
        #expect(cut.stdoutBytes == 6, "the size recorded is the whole stream's")

        store.updateSettings(RecordSettings(outputBytesPerStream: 0))
        try Fixture.record(store, 2)
        let none = try store.get(Fixture.executionID(2), viewer: Fixture.ana)
        #expect(none.stdout == nil && none.stdoutEncoding == nil && none.stdoutBytes == 3 && none.stdoutSha256 != nil)
    }
}
