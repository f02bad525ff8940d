import Foundation
import Testing
import ToolProtocol
import ToolRecords

/// `executions.list` and `executions.get`: order, pagination, filters, and users seeing only their own.
@Suite struct HistoryTests {
    /// 30 executions: ana and bob alternate, tools shell/python alternate in threes, every third one timed out,
    /// start times 1 s apart except pairs that share a millisecond (ties are broken by id).
    static func populated(_ dir: TemporaryDirectory) throws -> RecordStore {
        let store = try dir.store()
        for n in 1...30 {
            let caller = n % 2 == 0 ? Fixture.bob : Fixture.ana
            let tool = (n / 3) % 2 == 0 ? "shell" : "python"
            let at = Int64(n / 2) * 1000
            let outcome =
                n % 3 == 0
                ? Fixture.outcome(.timeout, exitCode: nil, finishedAt: at + 5) : Fixture.outcome(finishedAt: at + 5)
            try Fixture.record(store, n, caller: caller, tool: tool, at: at, outcome)
        }
        return store
    }

    static func ids(_ result: ExecutionsListResult) -> [String] { result.executions.map(\.executionId) }

    @Test func pagesAreNewestFirstAndTheCursorWalksAllRowsWithoutGapsOrRepeats() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let store = try Self.populated(dir)
        var seen: [ExecutionSummary] = []
        var cursor: String?
        var pages = 0
        repeat {
            let page = try store.list(ExecutionsListParams(limit: 7, cursor: cursor), viewer: Fixture.root)
            #expect(page.executions.count <= 7)
            seen += page.executions
            cursor = page.nextCursor
            pages += 1
        } while cursor != nil && pages < 10
        #expect(pages == 5, "30 rows in pages of 7")
        #expect(seen.count == 30 && Set(seen.map(\.executionId)).count == 30)
        let keys = seen.map { ($0.startedAt.millisecondsSince1970, $0.executionId) }
        #expect(zip(keys, keys.dropFirst()).allSatisfy { $0 > $1 }, "strictly newest first, ties by id")
        #expect(seen.first?.executionId == Fixture.executionID(30))
    }

    @Test func aFullLastPageHasNoCursor() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let store = try Self.populated(dir)
        let page = try store.list(ExecutionsListParams(limit: 30), viewer: Fixture.root)
        #expect(page.executions.count == 30 && page.nextCursor == nil)
        #expect(try store.list(ExecutionsListParams(), viewer: Fixture.root).executions.count == 30, "default limit 50")
    }

    @Test func filtersCombineToolStatusTimeAndUser() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let store = try Self.populated(dir)
        let admin = Fixture.root
        let python = try store.list(ExecutionsListParams(tool: "python"), viewer: admin)
        #expect(python.executions.count == 15 && python.executions.allSatisfy { $0.tool == "python" })
        let timeouts = try store.list(ExecutionsListParams(status: .timeout), viewer: admin)
        #expect(Self.ids(timeouts) == stride(from: 30, through: 3, by: -3).map(Fixture.executionID))
        // since inclusive, until exclusive: starts 5000…9999 ms are n = 10…19.
        let window = try store.list(
            ExecutionsListParams(since: Fixture.at(5000), until: Fixture.at(10_000)), viewer: admin)
        #expect(Set(Self.ids(window)) == Set((10...19).map(Fixture.executionID)))
        let bobsTimeouts = try store.list(ExecutionsListParams(status: .timeout, user: "bob"), viewer: admin)
        #expect(Self.ids(bobsTimeouts) == [30, 24, 18, 12, 6].map(Fixture.executionID))
        #expect(try store.list(ExecutionsListParams(tool: "nope"), viewer: admin).executions.isEmpty)
    }

    @Test func usersSeeOnlyTheirOwnExecutionsAndAdminsSeeAll() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let store = try Self.populated(dir)
        let anas = try store.list(ExecutionsListParams(limit: 1000), viewer: Fixture.ana)
        #expect(anas.executions.count == 15 && anas.executions.allSatisfy { $0.uid == 1000 && $0.user == "ana" })
        let named = try store.list(ExecutionsListParams(user: "ana"), viewer: Fixture.ana)
        #expect(Self.ids(named) == Self.ids(anas), "naming yourself is allowed")
        #expect(throws: RecordError.permissionDenied("only admins may see the records of another user (bob)")) {
            try store.list(ExecutionsListParams(user: "bob"), viewer: Fixture.ana)
        }
        #expect(try store.list(ExecutionsListParams(limit: 1000), viewer: Fixture.root).executions.count == 30)
        #expect(try store.list(ExecutionsListParams(user: "bob"), viewer: Fixture.root).executions.count == 15)
    }

    @Test func getShowsOwnExecutionsToTheirUserAndAllToAdmins() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let store = try Self.populated(dir)
        let anas = Fixture.executionID(1)
        #expect(try store.get(anas, viewer: Fixture.ana).user == "ana")
        #expect(try store.get(anas, viewer: Fixture.root).user == "ana")
        #expect(throws: RecordError.permissionDenied("execution \(anas) belongs to another user")) {
            try store.get(anas, viewer: Fixture.bob)
        }
        #expect(throws: RecordError.notFound(executionID: "ex_missing")) {
            try store.get("ex_missing", viewer: Fixture.root)
        }
    }

    @Test func outOfRangeLimitForeignCursorAndEmptyPeriodAreInvalidParamsNamingTheField() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let store = try dir.store()
        for (params, path) in [
            (ExecutionsListParams(limit: 0), "/limit"), (ExecutionsListParams(limit: 1001), "/limit"),
            (ExecutionsListParams(cursor: "not-a-cursor"), "/cursor"),
            (ExecutionsListParams(since: Fixture.at(10), until: Fixture.at(10)), "/since"),
        ] {
            #expect {
                try store.list(params, viewer: Fixture.root)
            } throws: { error in
                guard case .invalidParams(let p, _)? = error as? RecordError else { return false }
                return p == path && (error as? RecordError)?.rpcError.code == RPCErrorCode.invalidParams
            }
        }
    }

    @Test func listParamsRefuseUnknownFieldsAndMalformedTimesWithAPointer() throws {
        #expect {
            try ParamsDecoding.decode(ExecutionsListParams.self, from: ["tools": "shell"])
        } throws: { ($0 as? RPCError)?.data?["errors"]?.arrayValue?.first?["path"] == "/tools" }
        #expect {
            try ParamsDecoding.decode(ExecutionsListParams.self, from: ["since": "yesterday"])
        } throws: { error in
            let entry = (error as? RPCError)?.data?["errors"]?.arrayValue?.first
            return entry?["path"] == "/since" && entry?["message"]?.stringValue?.contains("RFC 3339") == true
        }
        #expect {
            try ParamsDecoding.decode(ExecutionsListParams.self, from: ["status": "finished"])
        } throws: { ($0 as? RPCError)?.code == RPCErrorCode.invalidParams }
        let params = try ParamsDecoding.decode(
            ExecutionsListParams.self,
            from: ["tool": "shell", "status": "rate_limited", "since": "2026-11-21T01:00:00+01:00", "limit": 5])
        #expect(params == ExecutionsListParams(tool: "shell", status: .rateLimited, since: Fixture.t0, limit: 5))
        #expect(
            try ParamsDecoding.decode(ExecutionsGetParams.self, from: ["execution_id": "ex_1"]).executionId == "ex_1")
        #expect(throws: RPCError.self) { try ParamsDecoding.decode(MetricsGetParams.self, from: ["period": "1d"]) }
    }
}
