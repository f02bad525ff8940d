import Foundation
import Testing
import ToolProtocol
import ToolRecords

/// The Prometheus text exposition: checked by a strict parser of the format (and by `promtool check metrics`
/// where it is installed).
@Suite struct PrometheusExpositionTests {
    static func rendered() throws -> (String, TemporaryDirectory) {
        let dir = try TemporaryDirectory()
        let store = try MetricsTests.populated(dir)
        let metrics = try store.metrics(
            MetricsTests.period, viewer: Fixture.root, now: Fixture.at(10 * MetricsTests.hour))
        return (PrometheusExposition.render(metrics), dir)
    }

    @Test func expositionParsesAndCarriesTheFiguresUnderConventionalNames() throws {
        let (text, dir) = try Self.rendered()
        defer { dir.remove() }
        let families = try ExpositionParser.parse(text)
        #expect(families["toold_executions_total"]?.type == "counter")
        #expect(families["toold_execution_duration_seconds"]?.type == "summary")
        #expect(families["toold_queued_seconds"]?.type == "summary")
        for name in ["toold_cache_hits_total", "toold_denied_total", "toold_rate_limited_total"] {
            #expect(families[name]?.type == "counter", "\(name)")
        }
        func value(_ family: String, _ sample: String, _ labels: [String: String]) -> Double? {
            families[family]?.samples.first { $0.name == sample && $0.labels == labels }?.value
        }
        #expect(value("toold_executions_total", "toold_executions_total", ["tool": "shell", "status": "timeout"]) == 2)
        #expect(
            value("toold_executions_total", "toold_executions_total", ["tool": "shell", "status": "exited"]) == 110)
        #expect(value("toold_denied_total", "toold_denied_total", ["tool": "shell"]) == 3)
        #expect(value("toold_rate_limited_total", "toold_rate_limited_total", ["tool": "shell"]) == 1)
        #expect(value("toold_cache_hits_total", "toold_cache_hits_total", ["tool": "shell"]) == 3)
        let duration = "toold_execution_duration_seconds"
        #expect(value(duration, duration, ["tool": "shell", "quantile": "0.5"]) == 0.05)
        #expect(value(duration, duration, ["tool": "shell", "quantile": "0.99"]) == 0.099)
        #expect(value(duration, duration + "_sum", ["tool": "shell"]) == 5.6)
        #expect(value(duration, duration + "_count", ["tool": "shell"]) == 110)
        #expect(value("toold_queued_seconds", "toold_queued_seconds", ["tool": "shell", "quantile": "0.95"]) == 0.095)
        #expect(text.contains("toold_execution_duration_seconds{tool=\"shell\",quantile=\"0.5\"} 0.050\n"))
        #expect(
            value(duration, duration, ["tool": "python", "quantile": "0.5"]) == nil,
            "no quantiles without runs in the period")
        #expect(value(duration, duration + "_count", ["tool": "python"]) == 4, "but the all-time count stays")
    }

    @Test func labelValuesWithQuotesBackslashesAndNewlinesAreEscaped() throws {
        let tool = "we\"ird\\tool\nname"
        let metrics = MetricsResult(
            since: Fixture.t0, until: Fixture.at(1),
            tools: [
                ToolMetrics(
                    tool: tool, figures: ExecutionFigures(calls: 1, succeeded: 1), change: nil,
                    totals: ExecutionTotals(byStatus: ["exited": 1]))
            ], users: nil)
        let text = PrometheusExposition.render(metrics)
        #expect(text.contains(#"toold_executions_total{tool="we\"ird\\tool\nname",status="exited"} 1"#))
        let families = try ExpositionParser.parse(text)
        #expect(families["toold_executions_total"]?.samples.first?.labels["tool"] == tool)
    }

    @Test func theParserRefusesMalformedExpositions() {
        let valid = "# HELP x_total X.\n# TYPE x_total counter\nx_total{a=\"b\"} 1\n"
        #expect(throws: Never.self) { try ExpositionParser.parse(valid) }
        let broken: [String: String] = [
            "no TYPE": "x_total 1\n",
            "unquoted label": "# TYPE x_total counter\nx_total{a=b} 1\n",
            "bad escape": "# TYPE x_total counter\nx_total{a=\"\\t\"} 1\n",
            "raw newline in value": "# TYPE x_total counter\nx_total{a=\"b\nc\"} 1\n",
            "bad value": "# TYPE x_total counter\nx_total 1,5\n",
            "bad name": "# TYPE 1x counter\n1x 1\n",
            "duplicate series": "# TYPE x_total counter\nx_total{a=\"b\"} 1\nx_total{a=\"b\"} 2\n",
            "family split": "# TYPE x counter\nx 1\n# TYPE y gauge\ny 1\nx{a=\"c\"} 1\n",
            "TYPE after samples": "# TYPE x gauge\nx 1\n# TYPE x gauge\n",
            "negative counter": "# TYPE x_total counter\nx_total -1\n",
            "summary stray suffix": "# TYPE s summary\ns_bucket 1\n",
            "quantile out of range": "# TYPE s summary\ns{quantile=\"1.5\"} 1\n",
            "missing final newline": "# TYPE x gauge\nx 1",
            "unknown type": "# TYPE x meter\nx 1\n",
            "duplicate label": "# TYPE x gauge\nx{a=\"1\",a=\"2\"} 1\n",
            "reserved label": "# TYPE x gauge\nx{__a=\"1\"} 1\n",
        ]
        for (why, text) in broken {
            #expect(throws: ExpositionParser.Failure.self, "\(why)") { try ExpositionParser.parse(text) }
        }
    }

    /// scripts/deps installs promtool from Debian's prometheus package as /usr/local/bin/promtool.
    static let promtool = ["/usr/local/bin/promtool", "/usr/bin/promtool"].first { FileManager.default.isExecutableFile(atPath: $0) }

    @Test(.enabled(if: promtool != nil, "promtool is not installed (scripts/deps installs it)"))
    func promtoolAcceptsTheExposition() throws {
        let (text, dir) = try Self.rendered()
        defer { dir.remove() }
        try SQLite.run(Self.promtool!, ["check", "metrics"], stdin: text)
    }
}
