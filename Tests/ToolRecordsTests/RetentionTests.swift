import Foundation
import Testing
import ToolProtocol
import ToolRecords

/// Retention: history and outputs against their own age limit, the audit against its longer one, and the file
/// giving freed pages back.
@Suite struct RetentionTests {
    static let day: Int64 = 86_400_000

    @Test func pruneRemovesOldHistoryWithOutputsButKeepsTheAuditUntilItsOwnLimit() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let store = try dir.store()
        try Fixture.record(store, 1, at: -40 * Self.day)
        try Fixture.record(store, 2, at: -10 * Self.day)
        try store.executionStarted(Fixture.start(3, at: -50 * Self.day))  // still running: never pruned
        try store.audit(
            AdminAction(
                at: Fixture.at(-100 * Self.day), requestID: nil, caller: Fixture.root, method: "signal",
                action: "policy_reloaded"))
        try store.audit(
            AdminAction(
                at: Fixture.at(-60 * Self.day), requestID: nil, caller: Fixture.root, method: "signal",
                action: "policy_reloaded"))
        #expect(
            try store.cachePut(
                key: "k", tool: "shell", manifestDigest: "m", result: [1], now: Fixture.at(-2 * Self.day),
                expiresAt: Fixture.at(-Self.day)))

        let report = try store.prune(now: Fixture.t0, historyDays: 30, auditDays: 90)
        #expect(report.executions == 1 && report.outputs == 1 && report.auditEntries == 1 && report.cacheEntries == 1)
        #expect(throws: RecordError.notFound(executionID: Fixture.executionID(1))) {
            try store.get(Fixture.executionID(1), viewer: Fixture.root)
        }
        #expect(try store.get(Fixture.executionID(2), viewer: Fixture.root).stdout == "hi\n")
        #expect(try store.get(Fixture.executionID(3), viewer: Fixture.root).status == .running)
        let audit = try store.auditEntries()
        #expect(audit.map(\.executionID).contains(Fixture.executionID(1)), "the audit outlives the history")
        #expect(audit.filter { $0.kind == "admin" }.map(\.time) == [Fixture.at(-60 * Self.day)])
        let totals = try store.metrics(MetricsGetParams(), viewer: Fixture.root, now: Fixture.t0).tools.first?.totals
        #expect(totals?.byStatus["exited"] == 2, "counters never shrink with pruning")
    }

    @Test func pruningEverythingInBatchesShrinksTheFileAndLeavesItSound() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let store = try dir.store()
        let output = Array(repeating: UInt8(ascii: "o"), count: 4096)
        for n in 1...2600 {
            try store.recordCompleted(Fixture.start(n, at: Int64(n)), Fixture.outcome(stdout: output))
        }
        let before = try store.storageStats()
        let report = try store.prune(now: Fixture.at(Self.day), historyDays: 0, auditDays: 0)
        #expect(report.executions == 2600 && report.outputs == 2600 && report.auditEntries == 2600)
        let after = try store.storageStats()
        #expect(after.freePages == 0, "freed pages went back to the file system")
        #expect(
            report.pagesFreed > 0 && after.pageCount * 4 < before.pageCount,
            "\(before.pageCount) → \(after.pageCount) pages")
        let fileBytes = try FileManager.default.attributesOfItem(atPath: dir.databasePath)[.size] as? Int
        #expect(fileBytes == after.bytes)
        #expect(try store.integrityCheck())
        #expect(try store.list(ExecutionsListParams(), viewer: Fixture.root).executions.isEmpty)
    }

    @Test func integrityCheckReportsDamageDoneBehindTheStoresBack() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        do {
            let store = try dir.store()
            for n in 1...50 { try Fixture.record(store, n) }
            #expect(try store.integrityCheck())
        }
        // Redefine an index behind SQLite's back: its stored entries no longer match what its definition says.
        try SQLite.execute(
            dir.databasePath,
            "PRAGMA writable_schema = ON; "
                + "UPDATE sqlite_schema SET sql = replace(sql, 'started_at, execution_id', 'started_at') "
                + "WHERE name = 'executions_by_time'; PRAGMA writable_schema = OFF;")
        let store = try dir.store()
        #expect(try !store.integrityCheck())
        #expect(try !store.integrityProblems().isEmpty)
    }
}
