import ArgumentParser
import ToolClient
import ToolProtocol

/// `toolc metrics`: how each tool performs (`metrics.get`), as a table or the Prometheus text exposition.
struct Metrics: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show how each tool performs: calls, success, failures, refusals, cache hits, latency.",
        discussion: """
            One row per tool over the period (default: the last 24 hours) and, for admins, one per user. \
            Columns: CALLS every call that ended in the period (refused ones too); OK % of the calls that \
            got a result, those that exited 0; FAILED ran and did not succeed (TIMEOUTS and OOM are part of \
            it); DENIED by policy or an approver and RATE LIMITED, refused before running; CACHE HIT % of the \
            calls that got a result, answered from the result cache; P50/P95/P99 MS the duration of the \
            executions that ran (exact nearest-rank percentiles); CHANGE against the previous period of the \
            same length (calls and latency relative, OK in percentage points; `new` when it had no calls).
            --since and --until take a duration ago (90m, 24h, 7d) or an RFC 3339 time.
            --format prometheus prints the text exposition format for node_exporter's textfile collector: \
            counters since the records began (they never decrease), quantiles and gauges over the period. \
            Example: toolc metrics --format prometheus > /var/lib/node_exporter/textfile/toold.prom
            """)

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case table, prometheus
    }

    @OptionGroup var options: ClientOptions
    @Option(help: "Only this tool (exec for the exec method).") var tool: String?
    @Option(help: "Only this user's calls, by user name as recorded (admins; others may name only themselves).")
    var user: String?
    @Option(help: "Start of the period: 90m, 24h, 7d ago, or RFC 3339 (default: 24 hours before --until).")
    var since: String?
    @Option(help: "End of the period: a duration ago or RFC 3339 (default: now).") var until: String?
    @Option(help: "A table for people, or prometheus: the text exposition format.") var format: Format = .table

    func validate() throws {
        if options.json && format == .prometheus {
            throw ValidationError("give --json or --format prometheus, not both")
        }
    }

    func run() throws {
        let now = Timestamp.now()
        let params = MetricsGetParams(
            tool: tool, user: user, since: try since.map { try RecordsText.time($0, flag: "--since", now: now) },
            until: try until.map { try RecordsText.time($0, flag: "--until", now: now) })
        let json = try callDaemon(options, RPCMethod.metricsGet, try encode(params))
        if options.json { return printJSON(json) }
        guard let metrics = try? JSONCoding.fromJSON(MetricsResult.self, json) else {
            throw fail(.protocolError("metrics.get returned an unexpected shape"))
        }
        switch format {
        case .prometheus: writeAll(1, Array(PrometheusExposition.render(metrics).utf8))
        case .table: writeAll(1, Array(Self.render(metrics).utf8))
        }
    }

    static let figureColumns = [
        "CALLS", "OK %", "FAILED", "TIMEOUTS", "OOM", "DENIED", "RATE LIMITED", "CACHE HIT %", "P50 MS", "P95 MS",
        "P99 MS",
    ]

    static func render(_ m: MetricsResult) -> String {
        let length = m.until.millisecondsSince1970 - m.since.millisecondsSince1970
        var text =
            "period: \(RecordsText.local(m.since)) – \(RecordsText.local(m.until)) (\(RecordsText.period(length))); "
            + "change against the \(RecordsText.period(length)) before\n"
        if m.tools.isEmpty {
            text += "no calls\n"
        } else {
            var rows = [["TOOL"] + figureColumns + ["CHANGE"]]
            for t in m.tools { rows.append([t.tool] + cells(t.figures) + [change(t.change, t.figures)]) }
            text += table(rows)
        }
        if let users = m.users {
            text += "\n"
            var rows = [["USER"] + figureColumns]
            for u in users { rows.append([RecordsText.user(u.user, u.uid)] + cells(u.figures)) }
            text += users.isEmpty ? "no calls by any user\n" : table(rows)
        }
        return text
    }

    static func cells(_ f: ExecutionFigures) -> [String] {
        [
            String(f.calls), RecordsText.percent(f.successRate), String(f.failed), String(f.timeouts), String(f.oom),
            String(f.denied), String(f.rateLimited),
            f.succeeded + f.failed > 0 ? RecordsText.percent(f.cacheHitRate) : "-",
            f.durationMs.map { String($0.p50) } ?? "-", f.durationMs.map { String($0.p95) } ?? "-",
            f.durationMs.map { String($0.p99) } ?? "-",
        ]
    }

    /// `calls +20%, ok -8.3 pts, p50 +5%, p95 -3%`: only the figures both periods have.
    static func change(_ change: MetricsChange?, _ current: ExecutionFigures) -> String {
        guard let change else { return current.calls > 0 ? "new" : "-" }
        var parts: [String] = []
        if let calls = RecordsText.relativeChange(change.calls) { parts.append("calls \(calls)") }
        if let ok = change.successRate, let now = current.successRate {
            let points = (now - ok.previous) * 100
            parts.append("ok \(points >= 0 ? "+" : "")\(RecordsText.oneDecimal(points)) pts")
        }
        if let p50 = RecordsText.relativeChange(change.durationMsP50) { parts.append("p50 \(p50)") }
        if let p95 = RecordsText.relativeChange(change.durationMsP95) { parts.append("p95 \(p95)") }
        return parts.isEmpty ? "-" : parts.joined(separator: ", ")
    }
}
