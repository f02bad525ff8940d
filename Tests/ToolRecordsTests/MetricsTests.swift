import Foundation
import Testing
import ToolProtocol
import ToolRecords

/// `metrics.get`: exact figures over a period, the change against the previous one, all-time totals, and
/// users seeing only their own figures.
@Suite struct MetricsTests {
    static let hour: Int64 = 3_600_000
    static let period = MetricsGetParams(since: Fixture.t0, until: Fixture.at(hour))

    /// Current hour, ana's `shell`: 100 runs lasting 1…100 ms (queued as long, memory d·1000 bytes); 10 of them
    /// (d = 10, 20, …) exit 1, d = 97 and 98 time out, d = 99 is OOM-killed; 3 cache hits; 2 denied, 1 approval
    /// denied, 1 rate limited; 1 still running. bob's `exec`: 2 runs (5 and 7 ms).
    /// Previous hour: ana's `shell` 10 runs of 10, 20, …, 100 ms, all exit 0; ana's `python` 4 runs, 2 exit 0.
    static func populated(_ dir: TemporaryDirectory) throws -> RecordStore {
        let store = try dir.store()
        var n = 0
        func next() -> Int {
            n += 1
            return n
        }
        for d in 1...100 {
            let status: ExecutionStatus = d == 97 || d == 98 ? .timeout : d == 99 ? .oom : .exited
            let exitCode: Int32? = status != .exited ? nil : d % 10 == 0 ? 1 : 0
            var outcome = Fixture.outcome(
                status, exitCode: exitCode, durationMs: d, finishedAt: Int64(d) * 1000 + Int64(d), queuedMs: d,
                memory: UInt64(d) * 1000)
            outcome.cpuMs = d / 2
            try store.recordCompleted(Fixture.start(next(), at: Int64(d) * 1000), outcome)
        }
        for i in 0..<3 {
            try store.recordCompleted(
                Fixture.start(next(), at: 200_000 + Int64(i)),
                Fixture.outcome(durationMs: 0, finishedAt: 200_000, cached: true))
        }
        for status in [ExecutionStatus.denied, .denied, .approvalDenied, .rateLimited] {
            try store.recordRefused(
                RefusedCall(
                    start: Fixture.start(next(), at: 300_000), status: status,
                    error: RecordedError(code: -32001, message: "no")))
        }
        try store.executionStarted(Fixture.start(next(), at: 400_000))
        for d in [5, 7] {
            try store.recordCompleted(
                Fixture.start(next(), caller: Fixture.bob, tool: "exec", at: 500_000), Fixture.outcome(durationMs: d))
        }
        for d in stride(from: 10, through: 100, by: 10) {
            try store.recordCompleted(
                Fixture.start(next(), at: -hour + Int64(d) * 1000), Fixture.outcome(durationMs: d))
        }
        for i in 0..<4 {
            try store.recordCompleted(
                Fixture.start(next(), tool: "python", at: -hour + 500_000),
                Fixture.outcome(exitCode: i < 2 ? 0 : 2, durationMs: 3))
        }
        return store
    }

    @Test func figuresAndPercentilesAreExactOverThePeriod() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let store = try Self.populated(dir)
        let result = try store.metrics(Self.period, viewer: Fixture.root, now: Fixture.at(10 * Self.hour))
        #expect(result.since == Fixture.t0 && result.until == Fixture.at(Self.hour))
        #expect(result.tools.map(\.tool) == ["exec", "python", "shell"])
        let shell = try #require(result.tools.first { $0.tool == "shell" })
        let f = shell.figures
        #expect(f.calls == 107 && f.succeeded == 90 && f.failed == 13 && f.refused == 4)
        #expect(f.timeouts == 2 && f.oom == 1 && f.denied == 3 && f.rateLimited == 1 && f.cacheHits == 3)
        #expect(f.cacheHitRate == 3.0 / 103.0 && f.successRate == 90.0 / 103.0)
        #expect(f.durationMs == DurationStats(p50: 50, p95: 95, p99: 99, mean: 50.5), "cache hits excluded")
        #expect(f.queuedMsP95 == 95 && f.cpuMsMean == 25.0)
        #expect(f.memoryBytesMean == 50_500 && f.memoryBytesPeak == 100_000)
    }

    /// Without `until`, a call that started in the very millisecond of the query counts (a cache hit answers
    /// within a millisecond, and a client may ask for metrics right after it).
    @Test func theDefaultPeriodIncludesTheCurrentMillisecond() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let store = try dir.store()
        try store.recordCompleted(Fixture.start(1, at: 5_000), Fixture.outcome(durationMs: 0, finishedAt: 5_000, cached: true))
        let result = try store.metrics(MetricsGetParams(), viewer: Fixture.root, now: Fixture.at(5_000))
        #expect(result.tools.first?.figures.calls == 1 && result.tools.first?.figures.cacheHits == 1)
        #expect(result.until == Fixture.at(5_001))
    }

    @Test func changeComparesWithThePreviousPeriodOfTheSameLength() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let store = try Self.populated(dir)
        let result = try store.metrics(Self.period, viewer: Fixture.root, now: Fixture.at(10 * Self.hour))
        let shell = try #require(result.tools.first { $0.tool == "shell" }?.change)
        #expect(shell.calls == MetricChange(previous: 10, relative: 9.7))
        #expect(shell.successRate == MetricChange(previous: 1, relative: 90.0 / 103.0 - 1))
        #expect(shell.durationMsP50 == MetricChange(previous: 50, relative: 0))
        #expect(shell.durationMsP95 == MetricChange(previous: 100, relative: -0.05))
        let python = try #require(result.tools.first { $0.tool == "python" })
        #expect(python.figures.calls == 0 && python.figures.durationMs == nil && python.figures.successRate == nil)
        #expect(python.change?.calls == MetricChange(previous: 4, relative: -1))
        #expect(python.change?.successRate == MetricChange(previous: 0.5, relative: nil), "no current rate to compare")
        let exec = try #require(result.tools.first { $0.tool == "exec" })
        #expect(exec.change == nil, "no calls in the previous period")
        let json = JSONCoding.serializeString(try JSONCoding.toJSON(exec))
        #expect(json.contains(#""change":null"#) && json.contains(#""tool":"exec""#) && json.contains(#""calls":2"#))
    }

    @Test func totalsCountEveryFinishedCallSinceTheStartAndIgnoreThePeriod() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let store = try Self.populated(dir)
        let result = try store.metrics(Self.period, viewer: Fixture.root, now: Fixture.at(10 * Self.hour))
        let totals = try #require(result.tools.first { $0.tool == "shell" }?.totals)
        #expect(
            totals.byStatus == [
                "exited": 110, "timeout": 2, "oom": 1, "denied": 2, "approval_denied": 1, "rate_limited": 1,
            ])
        #expect(totals.cacheHits == 3 && totals.durationCount == 110 && totals.durationMsSum == 5050 + 550)
        #expect(totals.queuedCount == 100 && totals.queuedMsSum == 5050)
    }

    @Test func adminsGetPerUserFiguresAndUsersOnlyTheirOwn() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let store = try Self.populated(dir)
        let admin = try store.metrics(Self.period, viewer: Fixture.root, now: Fixture.at(10 * Self.hour))
        #expect(admin.users?.map(\.user) == ["ana", "bob"])
        #expect(admin.users?.first { $0.user == "bob" }?.figures.calls == 2)
        #expect(admin.users?.first { $0.user == "ana" }?.figures.calls == 107)

        let bob = try store.metrics(Self.period, viewer: Fixture.bob, now: Fixture.at(10 * Self.hour))
        #expect(bob.users == nil)
        #expect(bob.tools.map(\.tool) == ["exec"], "ana's tools and totals stay hidden")
        #expect(bob.tools.first?.figures.durationMs == DurationStats(p50: 5, p95: 7, p99: 7, mean: 6))
        #expect(throws: RecordError.permissionDenied("only admins may see the records of another user (ana)")) {
            try store.metrics(MetricsGetParams(user: "ana"), viewer: Fixture.bob, now: Fixture.at(Self.hour))
        }
        let anaAsAdminFilter = try store.metrics(
            MetricsGetParams(tool: "shell", user: "ana", since: Fixture.t0, until: Fixture.at(Self.hour)),
            viewer: Fixture.root,
            now: Fixture.at(Self.hour))
        #expect(anaAsAdminFilter.tools.map(\.tool) == ["shell"] && anaAsAdminFilter.users?.map(\.user) == ["ana"])
    }

    @Test func periodDefaultsToTheDayBeforeNow() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let store = try dir.store()
        let now = Fixture.at(48 * Self.hour)
        let result = try store.metrics(MetricsGetParams(), viewer: Fixture.ana, now: now)
        // `until`: the millisecond after now (calls of the current millisecond count).
        let until = now.adding(milliseconds: 1)
        #expect(result.until == until && result.since == until.adding(milliseconds: -24 * Self.hour))
        #expect(result.tools.isEmpty)
        #expect {
            try store.metrics(MetricsGetParams(since: now.adding(milliseconds: 1)), viewer: Fixture.ana, now: now)
        } throws: { error in
            guard case .invalidParams("/since", _)? = error as? RecordError else { return false }
            return true
        }
    }
}
