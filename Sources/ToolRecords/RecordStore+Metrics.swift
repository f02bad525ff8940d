import GRDB
import ToolProtocol

/// `metrics.get`: figures per tool (and per user for admins) over a period, computed exactly from the
/// history, with the change against the previous period of the same length and the all-time counters.
extension RecordStore {
    /// The period when `metrics.get` names none: the 24 hours before `until`.
    public static let defaultMetricsPeriodMs: Int64 = 86_400_000

    /// Figures of the calls that started in `[since, until)` (`until` defaults to the millisecond after `now`,
    /// so a call that started in the current millisecond counts; `since` to 24 hours
    /// before `until`), per tool, and per user when the viewer is an admin. Non-admins get figures over their
    /// own calls only (`users` absent); naming another user is `.permissionDenied`. Executions still
    /// `running` are not counted. Reads every finished row of both periods: cost grows with their length.
    public func metrics(
        _ params: MetricsGetParams, viewer: CallerIdentity, now: Timestamp
    ) throws(RecordError)
        -> MetricsResult
    {
        let until = params.until ?? now.adding(milliseconds: 1)
        let since = params.since ?? until.adding(milliseconds: -Self.defaultMetricsPeriodMs)
        try Self.checkPeriod(since: since, until: until)
        let previousSince = since.adding(milliseconds: -(until.millisecondsSince1970 - since.millisecondsSince1970))

        var conditions: [String] = []
        var arguments: StatementArguments = []
        try Self.scope(viewer: viewer, user: params.user, conditions: &conditions, arguments: &arguments)
        if let tool = params.tool {
            conditions.append("tool = ?")
            arguments += [tool]
        }
        let scope = conditions.isEmpty ? "1" : conditions.joined(separator: " AND ")
        let rowsSQL = """
            SELECT tool, uid, user, status, exit_code, duration_ms, queued_ms, cpu_ms, memory_peak_bytes, cached,
                   started_at
            FROM executions
            WHERE \(scope) AND started_at >= ? AND started_at < ? AND status != 'running'
            """
        let rowsArguments = arguments + [previousSince.millisecondsSince1970, until.millisecondsSince1970]
        let totalsSQL = """
            SELECT tool, status, sum(calls) AS calls, sum(cache_hits) AS cache_hits,
                   sum(duration_ms_sum) AS duration_ms_sum, sum(duration_count) AS duration_count,
                   sum(queued_ms_sum) AS queued_ms_sum, sum(queued_count) AS queued_count
            FROM counters WHERE \(scope) GROUP BY tool, status
            """
        // One snapshot for both queries, so totals and period agree.
        let (rows, totalsRows) = try read("compute metrics") { db in
            (
                try Row.fetchAll(db, sql: rowsSQL, arguments: rowsArguments),
                try Row.fetchAll(db, sql: totalsSQL, arguments: arguments)
            )
        }

        var current: [String: FiguresAccumulator] = [:]
        var previous: [String: FiguresAccumulator] = [:]
        var perUser: [UInt32: (user: String, figures: FiguresAccumulator)] = [:]
        for row in rows {
            let call = FiguresAccumulator.Call(row: row)
            let tool: String = row["tool"]
            if row["started_at"] as Int64 >= since.millisecondsSince1970 {
                current[tool, default: FiguresAccumulator()].add(call)
                let uid = UInt32(truncatingIfNeeded: row["uid"] as Int64)
                perUser[uid, default: (row["user"], FiguresAccumulator())].figures.add(call)
            } else {
                previous[tool, default: FiguresAccumulator()].add(call)
            }
        }
        var totals: [String: ExecutionTotals] = [:]
        for row in totalsRows {
            let tool: String = row["tool"]
            var t = totals[tool, default: ExecutionTotals()]
            t.byStatus[row["status"], default: 0] += row["calls"] as Int
            t.cacheHits += row["cache_hits"] as Int
            t.durationMsSum += row["duration_ms_sum"] as Int64
            t.durationCount += row["duration_count"] as Int
            t.queuedMsSum += row["queued_ms_sum"] as Int64
            t.queuedCount += row["queued_count"] as Int
            totals[tool] = t
        }

        let names = Set(current.keys).union(previous.keys).union(totals.keys).sorted()
        let tools = names.map { tool in
            let now = (current[tool] ?? FiguresAccumulator()).figures()
            let before = previous[tool].map { $0.figures() }
            return ToolMetrics(
                tool: tool, figures: now, change: before.flatMap { Self.change(from: $0, to: now) },
                totals: totals[tool] ?? ExecutionTotals())
        }
        let users =
            viewer.admin
            ? perUser.map { UserMetrics(user: $0.value.user, uid: $0.key, figures: $0.value.figures.figures()) }
                .sorted { ($0.user, $0.uid) < ($1.user, $1.uid) }
            : nil
        return MetricsResult(since: since, until: until, tools: tools, users: users)
    }

    /// The change from the previous period's figures; nil when that period had no calls.
    static func change(from before: ExecutionFigures, to now: ExecutionFigures) -> MetricsChange? {
        guard before.calls > 0 else { return nil }
        return MetricsChange(
            calls: MetricChange.between(previous: Double(before.calls), current: Double(now.calls))!,
            successRate: MetricChange.between(previous: before.successRate, current: now.successRate),
            durationMsP50: MetricChange.between(
                previous: before.durationMs.map { Double($0.p50) }, current: now.durationMs.map { Double($0.p50) }),
            durationMsP95: MetricChange.between(
                previous: before.durationMs.map { Double($0.p95) }, current: now.durationMs.map { Double($0.p95) }))
    }
}

/// Sums up calls into `ExecutionFigures`, keeping every duration so percentiles are exact.
struct FiguresAccumulator {
    struct Call {
        var status: ExecutionStatus
        var exitCode: Int64?
        var durationMs: Int?
        var queuedMs: Int?
        var cpuMs: Int?
        var memoryPeakBytes: Int64?
        var cached: Bool

        init(row: Row) {
            status = ExecutionStatus(rawValue: row["status"]) ?? .failedToStart
            exitCode = row["exit_code"]
            durationMs = row["duration_ms"]
            queuedMs = row["queued_ms"]
            cpuMs = row["cpu_ms"]
            memoryPeakBytes = row["memory_peak_bytes"]
            cached = row["cached"]
        }
    }

    var calls = 0, succeeded = 0, failed = 0, refused = 0, timeouts = 0, oom = 0, denied = 0, rateLimited = 0
    var cacheHits = 0
    var durations: [Int] = []
    var queued: [Int] = []
    var cpuSum = 0.0, cpuCount = 0
    var memorySum = 0.0, memoryCount = 0
    var memoryPeak: Int64?

    mutating func add(_ call: Call) {
        guard call.status != .running else { return }
        calls += 1
        if call.status.isRefusal {
            refused += 1
            if call.status == .denied || call.status == .approvalDenied { denied += 1 }
            if call.status == .rateLimited { rateLimited += 1 }
            return
        }
        if call.status == .exited && call.exitCode == 0 { succeeded += 1 } else { failed += 1 }
        if call.status == .timeout { timeouts += 1 }
        if call.status == .oom { oom += 1 }
        if call.cached {
            cacheHits += 1
            return
        }
        if let d = call.durationMs { durations.append(d) }
        if let q = call.queuedMs { queued.append(q) }
        if let c = call.cpuMs {
            cpuSum += Double(c)
            cpuCount += 1
        }
        if let m = call.memoryPeakBytes {
            memorySum += Double(m)
            memoryCount += 1
            memoryPeak = max(memoryPeak ?? m, m)
        }
    }

    func figures() -> ExecutionFigures {
        let answered = succeeded + failed
        let sortedDurations = durations.sorted()
        let durationStats =
            sortedDurations.isEmpty
            ? nil
            : DurationStats(
                p50: Self.percentile(50, sortedDurations), p95: Self.percentile(95, sortedDurations),
                p99: Self.percentile(99, sortedDurations),
                mean: Double(sortedDurations.reduce(0, +)) / Double(sortedDurations.count))
        return ExecutionFigures(
            calls: calls, succeeded: succeeded, failed: failed, refused: refused, timeouts: timeouts, oom: oom,
            denied: denied, rateLimited: rateLimited, cacheHits: cacheHits,
            cacheHitRate: answered == 0 ? 0 : Double(cacheHits) / Double(answered),
            successRate: answered == 0 ? nil : Double(succeeded) / Double(answered), durationMs: durationStats,
            queuedMsP95: queued.isEmpty ? nil : Self.percentile(95, queued.sorted()),
            cpuMsMean: cpuCount == 0 ? nil : cpuSum / Double(cpuCount),
            memoryBytesMean: memoryCount == 0 ? nil : memorySum / Double(memoryCount),
            memoryBytesPeak: memoryPeak.map { UInt64(clamping: $0) })
    }

    /// Nearest rank: the value at 1-based rank ⌈p·n/100⌉ of the sorted values.
    static func percentile(_ p: Int, _ sorted: [Int]) -> Int {
        let rank = (p * sorted.count + 99) / 100
        return sorted[max(rank, 1) - 1]
    }
}
