/// Renders `metrics.get` figures in the Prometheus text exposition format (version 0.0.4), ready for
/// node_exporter's textfile collector. Counters (`*_total`, and the `_sum`/`_count` of summaries) come from
/// the all-time totals, so they never decrease when history is pruned; summary quantiles and gauges describe
/// the result's period. Every family has HELP and TYPE lines, its samples together; label values are
/// escaped (`\\`, `\"`, `\n`); families without samples are left out.
public enum PrometheusExposition {
    public static func render(_ metrics: MetricsResult) -> String {
        var out = ""
        let tools = metrics.tools

        family(&out, "toold_executions_total", .counter, "Calls by tool and final status since the records began.") {
            tools.flatMap { t in
                t.totals.byStatus.keys.sorted().map { status in
                    Sample(labels: [("tool", t.tool), ("status", status)], value: .int(t.totals.byStatus[status]!))
                }
            }
        }
        family(
            &out, "toold_cache_hits_total", .counter, "Calls answered from the result cache since the records began."
        ) {
            tools.map { Sample(labels: [("tool", $0.tool)], value: .int($0.totals.cacheHits)) }
        }
        family(
            &out, "toold_denied_total", .counter, "Calls denied by policy or by an approver since the records began."
        ) {
            tools.map { t in
                Sample(
                    labels: [("tool", t.tool)],
                    value: .int((t.totals.byStatus["denied"] ?? 0) + (t.totals.byStatus["approval_denied"] ?? 0)))
            }
        }
        family(&out, "toold_rate_limited_total", .counter, "Calls refused by rate limits since the records began.") {
            tools.map { Sample(labels: [("tool", $0.tool)], value: .int($0.totals.byStatus["rate_limited"] ?? 0)) }
        }
        family(
            &out, "toold_execution_duration_seconds", .summary,
            "Duration of executions that ran (cache hits excluded); quantiles over the metrics period, "
                + "sum and count since the records began."
        ) {
            tools.flatMap { t -> [Sample] in
                var samples: [Sample] = []
                if let d = t.figures.durationMs {
                    for (q, ms) in [("0.5", d.p50), ("0.95", d.p95), ("0.99", d.p99)] {
                        samples.append(Sample(labels: [("tool", t.tool), ("quantile", q)], value: .seconds(Int64(ms))))
                    }
                }
                samples.append(
                    Sample(suffix: "_sum", labels: [("tool", t.tool)], value: .seconds(t.totals.durationMsSum)))
                samples.append(
                    Sample(suffix: "_count", labels: [("tool", t.tool)], value: .int(t.totals.durationCount)))
                return samples
            }
        }
        family(
            &out, "toold_queued_seconds", .summary,
            "Time calls waited for a slot before running; the 0.95 quantile over the metrics period, "
                + "sum and count since the records began."
        ) {
            tools.flatMap { t -> [Sample] in
                var samples: [Sample] = []
                if let q = t.figures.queuedMsP95 {
                    samples.append(Sample(labels: [("tool", t.tool), ("quantile", "0.95")], value: .seconds(Int64(q))))
                }
                samples.append(
                    Sample(suffix: "_sum", labels: [("tool", t.tool)], value: .seconds(t.totals.queuedMsSum)))
                samples.append(Sample(suffix: "_count", labels: [("tool", t.tool)], value: .int(t.totals.queuedCount)))
                return samples
            }
        }
        family(
            &out, "toold_success_ratio", .gauge, "Share of calls with a result that exited 0, over the metrics period."
        ) {
            tools.compactMap { t in t.figures.successRate.map { Sample(labels: [("tool", t.tool)], value: .double($0)) }
            }
        }
        family(
            &out, "toold_cache_hit_ratio", .gauge,
            "Share of calls with a result answered from the cache, over the metrics period."
        ) {
            tools.filter { $0.figures.succeeded + $0.figures.failed > 0 }
                .map { Sample(labels: [("tool", $0.tool)], value: .double($0.figures.cacheHitRate)) }
        }
        family(
            &out, "toold_memory_peak_bytes", .gauge, "Highest peak memory of one execution, over the metrics period."
        ) {
            tools.compactMap { t in
                t.figures.memoryBytesPeak.map { Sample(labels: [("tool", t.tool)], value: .int(Int(clamping: $0))) }
            }
        }
        return out
    }

    enum MetricType: String { case counter, gauge, summary }

    enum Value {
        case int(Int)
        case double(Double)
        /// Milliseconds, printed as seconds.
        case seconds(Int64)

        var text: String {
            switch self {
            case .int(let i): return String(i)
            case .double(let d): return format(d)
            case .seconds(let ms):
                // Exact decimal: 1234 ms → "1.234", no binary-fraction noise.
                let sign = ms < 0 ? "-" : ""
                let magnitude = ms.magnitude
                let fraction = String(magnitude % 1000)
                return "\(sign)\(magnitude / 1000).\(String(repeating: "0", count: 3 - fraction.count))\(fraction)"
            }
        }

        func format(_ d: Double) -> String {
            if d.isNaN { return "NaN" }
            if d.isInfinite { return d > 0 ? "+Inf" : "-Inf" }
            return "\(d)"
        }
    }

    struct Sample {
        var suffix = ""
        var labels: [(String, String)]
        var value: Value
    }

    static func family(
        _ out: inout String, _ name: String, _ type: MetricType, _ help: String, _ samples: () -> [Sample]
    ) {
        let samples = samples()
        guard !samples.isEmpty else { return }
        out += "# HELP \(name) \(escapeHelp(help))\n# TYPE \(name) \(type.rawValue)\n"
        for sample in samples {
            let labels = sample.labels.map { "\($0.0)=\"\(escapeLabelValue($0.1))\"" }.joined(separator: ",")
            out += "\(name)\(sample.suffix)\(labels.isEmpty ? "" : "{\(labels)}") \(sample.value.text)\n"
        }
    }

    /// Label values: backslash, double quote and line feed escaped, as the text format requires.
    public static func escapeLabelValue(_ value: String) -> String {
        var out = ""
        for c in value.unicodeScalars {
            switch c {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }

    /// HELP text: backslash and line feed escaped.
    static func escapeHelp(_ text: String) -> String {
        text.replacing("\\", with: "\\\\").replacing("\n", with: "\\n")
    }
}
