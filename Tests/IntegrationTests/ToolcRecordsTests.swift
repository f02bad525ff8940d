import Foundation
import Testing
import ToolClient
import ToolProtocol

/// `toolc history`, `toolc show`, `toolc metrics` (table, `--json`, `--format prometheus`) and the exit status
/// of a call that cannot be recorded, through the real daemon and the real toolc — as root (an admin) and as
/// test uids in the socket group, which see only their own records. toolc runs with `TZ=UTC`, so the tables'
/// local times can be compared with the daemon's UTC times.
@Suite struct ToolcRecordsTests {
    static let ana: UInt32 = 64551
    static let ben: UInt32 = 64552
    static var socketGroup: UInt32 { groupID("toold") ?? 0 }

    static let historyColumns = ["STARTED", "EXECUTION ID", "USER", "TOOL", "STATUS", "EXIT", "DURATION", "QUEUED"]
    static let figureColumns = [
        "CALLS", "OK %", "FAILED", "TIMEOUTS", "OOM", "DENIED", "RATE LIMITED", "CACHE HIT %", "P50 MS", "P95 MS",
        "P99 MS",
    ]

    static func toolc(_ daemon: TestDaemon, _ uid: UInt32?, _ arguments: [String]) throws -> ProcessOutput {
        try runProgram(
            Binaries.toolc, arguments, environment: ["TOOLD_SOCKET": daemon.socketPath, "TZ": "UTC"], asUID: uid,
            groups: uid == nil ? [] : [socketGroup])
    }

    /// `toolc exec --json [extra] -- command`: the result (whatever the command's exit status).
    static func exec(_ daemon: TestDaemon, _ uid: UInt32?, _ command: [String], extra: [String] = []) throws
        -> JSONValue
    {
        let out = try toolc(daemon, uid, ["exec", "--json"] + extra + ["--"] + command)
        let result = try JSONCoding.parse(out.stdoutBytes)
        #expect(result["execution_id"]?.stringValue != nil, "\(out)")
        return result
    }

    static func id(_ result: JSONValue) -> String { result["execution_id"]?.stringValue ?? "" }

    static func history(_ out: ProcessOutput) throws -> ExecutionsListResult {
        #expect(out.status == 0, "\(out)")
        return try JSONCoding.fromJSON(ExecutionsListResult.self, JSONCoding.parse(out.stdoutBytes))
    }

    static func metrics(_ out: ProcessOutput) throws -> MetricsResult {
        #expect(out.status == 0, "\(out)")
        return try JSONCoding.fromJSON(MetricsResult.self, JSONCoding.parse(out.stdoutBytes))
    }

    /// The rows of the toolc table whose header line starts with `columns[0]`, as title → cell. A column
    /// starts where its title starts in the header; the table ends at the first empty line.
    static func table(_ text: String, _ columns: [String]) -> [[String: String]] {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map { Array(String($0)) }
        guard let headerIndex = lines.firstIndex(where: { String($0).hasPrefix(columns[0] + " ") }) else { return [] }
        let header = String(lines[headerIndex])
        var starts: [Int] = []
        var from = header.startIndex
        for title in columns {
            guard let range = header.range(of: title, range: from..<header.endIndex) else { return [] }
            starts.append(header.distance(from: header.startIndex, to: range.lowerBound))
            from = range.upperBound
        }
        var rows: [[String: String]] = []
        for line in lines[(headerIndex + 1)...] {
            if line.isEmpty { break }
            var row: [String: String] = [:]
            for (i, title) in columns.enumerated() {
                let start = min(starts[i], line.count)
                let end = i + 1 < starts.count ? min(starts[i + 1], line.count) : line.count
                row[title] = String(line[start..<end]).trimmingCharacters(in: .whitespaces)
            }
            rows.append(row)
        }
        return rows
    }

    /// A start time as the history table prints it under TZ=UTC: `2026-11-21 09:30:01`.
    static func started(_ time: Timestamp) -> String {
        String(time.rfc3339.prefix(19)).replacingOccurrences(of: "T", with: " ")
    }

    /// A duration as the tables print it: `12ms`, `1.2s`, `3m5s`.
    static func duration(_ ms: Int?) -> String {
        guard let ms else { return "-" }
        if ms < 1000 { return "\(ms)ms" }
        if ms < 60_000 { return "\(ms / 1000).\(ms % 1000 / 100)s" }
        return "\(ms / 60_000)m\(ms / 1000 % 60)s"
    }

    // MARK: history

    /// Newest first, as a table and as JSON; root sees every row, a user only their own (and may not ask
    /// for root's); filters, pages with the printed next-page command, and usage errors.
    @Test func historyListsNewestFirstAndUsersSeeOnlyTheirOwnRows() throws {
        let daemon = try TestDaemon()
        defer { daemon.stop() }
        let first = try Self.exec(daemon, nil, ["/bin/echo", "root"])
        let failing = try Self.exec(daemon, nil, ["/bin/sh", "-c", "exit 3"])
        let anas = try Self.exec(daemon, Self.ana, ["/bin/echo", "ana"])
        let ids = [Self.id(anas), Self.id(failing), Self.id(first)]

        let rootPage = try Self.history(Self.toolc(daemon, nil, ["history", "--json"]))
        #expect(rootPage.executions.map(\.executionId) == ids)
        #expect(rootPage.nextCursor == nil)
        let rootTable = try Self.toolc(daemon, nil, ["history"])
        #expect(rootTable.status == 0 && rootTable.stderr.isEmpty, "\(rootTable)")
        let rows = Self.table(rootTable.stdout, Self.historyColumns)
        #expect(rows.map { $0["EXECUTION ID"] } == ids.map { Optional($0) }, "\(rootTable.stdout)")
        for (row, e) in zip(rows, rootPage.executions) {
            #expect(row["STARTED"] == Self.started(e.startedAt), "\(row)")
            #expect(row["TOOL"] == "exec" && row["STATUS"] == "exited", "\(row)")
            #expect(
                row["DURATION"] == Self.duration(e.durationMs) && row["QUEUED"] == Self.duration(e.queuedMs), "\(row)")
        }
        #expect(rows[0]["USER"] == String(Self.ana) && rows[0]["EXIT"] == "0", "\(rows[0])")
        #expect(rows[1]["USER"] == "root (0)" && rows[1]["EXIT"] == "3", "\(rows[1])")

        // ana: only her own row, as JSON and as a table; root's rows are not hers to see.
        let anaPage = try Self.history(Self.toolc(daemon, Self.ana, ["history", "--json"]))
        #expect(anaPage.executions.map(\.executionId) == [Self.id(anas)])
        #expect(anaPage.executions.allSatisfy { $0.uid == Self.ana })
        let anaTable = try Self.toolc(daemon, Self.ana, ["history"])
        #expect(Self.table(anaTable.stdout, Self.historyColumns).map { $0["EXECUTION ID"] } == [Self.id(anas)])
        #expect(!anaTable.stdout.contains(Self.id(first)) && !anaTable.stdout.contains(Self.id(failing)))
        let nosy = try Self.toolc(daemon, Self.ana, ["history", "--user", "root"])
        #expect(nosy.status == ToolcExit.rejected && nosy.stderr.contains("only admins"), "\(nosy)")
        let benPage = try Self.history(Self.toolc(daemon, Self.ben, ["history", "--json"]))
        #expect(benPage.executions.isEmpty)
        let benTable = try Self.toolc(daemon, Self.ben, ["history"])
        #expect(benTable.status == 0 && benTable.stdout == "no executions\n", "\(benTable)")
        let rootForAna = try Self.history(Self.toolc(daemon, nil, ["history", "--user", String(Self.ana), "--json"]))
        #expect(rootForAna.executions.map(\.executionId) == [Self.id(anas)])

        // Filters, and one row a page: each page prints the command of the next on stderr.
        let none = try Self.toolc(daemon, nil, ["history", "--status", "timeout"])
        #expect(none.status == 0 && none.stdout == "no executions match\n", "\(none)")
        var arguments = ["history", "--tool", "exec", "--status", "exited", "--limit", "1"]
        var seen: [String] = []
        while true {
            let page = try Self.toolc(daemon, nil, arguments)
            #expect(page.status == 0, "\(page)")
            seen += Self.table(page.stdout, Self.historyColumns).compactMap { $0["EXECUTION ID"] }
            let prefix = "toolc: more executions: toolc "
            guard let hint = page.stderr.split(separator: "\n").first(where: { $0.hasPrefix(prefix) }) else { break }
            #expect(hint.contains(" --tool exec --status exited --limit 1 --cursor "), "\(hint)")
            arguments = hint.dropFirst(prefix.count).split(separator: " ").map(String.init)
            if seen.count > ids.count { break }
        }
        #expect(seen == ids, "three pages of one, newest first")

        for bad in [["--status", "finished"], ["--since", "yesterday"], ["--since", "5x"], ["--limit", "0"]] {
            let out = try Self.toolc(daemon, nil, ["history"] + bad)
            #expect(out.status == 64, "\(bad): \(out)")
        }
    }

    /// `--since`/`--until` with durations ago and RFC 3339 times: a row aged two hours in the database falls
    /// out of `--since 1h` and into `--until 1h`; the next-page command pins relative times to instants.
    @Test func sinceAndUntilFilterByStartTime() throws {
        let daemon = try TestDaemon()
        defer { daemon.stop() }
        let old = try Self.exec(daemon, nil, ["/bin/echo", "old"])
        let new = try Self.exec(daemon, nil, ["/bin/echo", "new"])
        let database = daemon.dir.url.appendingPathComponent("state/toold.db").path
        let aged = try runProgram(
            "/usr/bin/sqlite3",
            [
                "-cmd", ".timeout 5000", database,
                "UPDATE executions SET started_at = started_at - 7200000, finished_at = finished_at - 7200000 "
                    + "WHERE execution_id = '\(Self.id(old))'",
            ])
        #expect(aged.status == 0, "\(aged)")

        func ids(_ arguments: [String], _ uid: UInt32? = nil) throws -> [String] {
            try Self.history(Self.toolc(daemon, uid, ["history", "--json"] + arguments)).executions.map(\.executionId)
        }
        #expect(try ids(["--since", "1h"]) == [Self.id(new)])
        #expect(try ids(["--since", "90m"]) == [Self.id(new)])
        #expect(try ids(["--since", "3h"]) == [Self.id(new), Self.id(old)])
        #expect(try ids(["--since", "1d"]) == [Self.id(new), Self.id(old)])
        #expect(try ids(["--since", "1h30m"]) == [Self.id(new)])
        #expect(try ids(["--until", "1h"]) == [Self.id(old)])
        let oldRow = try Self.history(Self.toolc(daemon, nil, ["history", "--json", "--until", "1h"])).executions[0]
        let justBefore = oldRow.startedAt.adding(milliseconds: -1).rfc3339
        let justAfter = oldRow.startedAt.adding(milliseconds: 1).rfc3339
        #expect(try ids(["--since", justBefore, "--until", justAfter]) == [Self.id(old)])
        #expect(
            try ids(["--since", oldRow.startedAt.rfc3339, "--until", "1h"]) == [Self.id(old)], "since is inclusive")
        #expect(try ids(["--since", justAfter, "--until", "1h"]).isEmpty)
        let inverted = try Self.toolc(daemon, nil, ["history", "--since", "1h", "--until", "2h"])
        #expect(
            inverted.status == ToolcExit.rejected && inverted.stderr.contains("must be before until"), "\(inverted)")

        let firstPage = try Self.toolc(daemon, nil, ["history", "--since", "3h", "--limit", "1"])
        let hint = firstPage.stderr.split(separator: "\n").first { $0.hasPrefix("toolc: more executions: ") }
        #expect(hint?.contains(" --since 20") == true && hint?.contains(" --since 3h") == false, "\(firstPage)")

        // metrics over the same windows count the same calls.
        let lastHour = try Self.metrics(Self.toolc(daemon, nil, ["metrics", "--json", "--since", "1h"]))
        #expect(lastHour.tools.first { $0.tool == "exec" }?.figures.calls == 1)
        let threeHours = try Self.metrics(Self.toolc(daemon, nil, ["metrics", "--json", "--since", "3h"]))
        #expect(threeHours.tools.first { $0.tool == "exec" }?.figures.calls == 2)
        let period = threeHours.until.millisecondsSince1970 - threeHours.since.millisecondsSince1970
        #expect(abs(period - 3 * 3_600_000) < 60_000, "\(threeHours.since) … \(threeHours.until)")
    }

    // MARK: show

    /// One execution in full: every field, the arguments as pretty JSON, the stored output; a refusal with
    /// its error; another user's execution refused; the JSON form is the record.
    @Test func showPrintsOneExecutionInFull() throws {
        let daemon = try TestDaemon()
        defer { daemon.stop() }
        let ran = try Self.exec(
            daemon, nil, ["/bin/sh", "-c", "echo out; echo err >&2; exit 3"], extra: ["--env", "GREETING=hi"])
        let id = Self.id(ran)

        let json = try Self.toolc(daemon, nil, ["show", id, "--json"])
        #expect(json.status == 0, "\(json)")
        let record = try JSONCoding.fromJSON(ExecutionRecord.self, JSONCoding.parse(json.stdoutBytes))
        #expect(record.executionId == id && record.status == .exited && record.exitCode == 3)
        #expect(record.stdout == "out\n" && record.stderr == "err\n")
        #expect(record.arguments["env"]?["GREETING"] == "hi")

        let shown = try Self.toolc(daemon, nil, ["show", id])
        #expect(shown.status == 0, "\(shown)")
        let lines = shown.stdout.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        for expected in [
            "execution:  \(id)", "method:     exec", "tool:       exec", "status:     exited with 3", "cached:     no",
            "user:       root (uid 0, gid 0, pid \(record.pid))", "attempts:   1", "violations: none",
            "started:    \(Self.started(record.startedAt))\(record.startedAt.rfc3339.dropFirst(19).prefix(4))  (\(record.startedAt.rfc3339))",
            "duration:   \(record.durationMs ?? -1) ms", "queued:     \(record.queuedMs ?? -1) ms",
            "cpu:        \(record.cpuMs ?? -1) ms",
            "stdout:      4 bytes, sha256 \(record.stdoutSha256 ?? "?")", "out",
            "stderr:      4 bytes, sha256 \(record.stderrSha256 ?? "?")", "err",
        ] {
            #expect(lines.contains(expected), "missing \"\(expected)\" in:\n\(shown.stdout)")
        }
        #expect(lines.contains { $0.hasPrefix("decision:   allow; rule: ") }, "\(shown.stdout)")
        #expect(lines.contains { $0.hasPrefix("request id: ") && $0 != "request id: none (a notification)" })
        // The arguments: pretty JSON between their label and the first stream.
        if let start = lines.firstIndex(of: "arguments:"),
            let end = lines.firstIndex(where: { $0.hasPrefix("stdout:") })
        {
            let text = lines[(start + 1)..<end].joined(separator: "\n")
            #expect(try JSONCoding.parse(Array(text.utf8)) == record.arguments, "\(text)")
            #expect(end - start > 3, "indented over several lines: \(text)")
        } else {
            Issue.record("no arguments block: \(shown.stdout)")
        }

        // A refused call: its error, and nothing ran.
        let denied = try Self.toolc(daemon, Self.ana, ["exec", "--mode", "network", "--", "/bin/true"])
        #expect(denied.status == ToolcExit.rejected, "\(denied)")
        let deniedRow = try Self.history(Self.toolc(daemon, Self.ana, ["history", "--json", "--status", "denied"]))
        #expect(deniedRow.executions.count == 1)
        let deniedID = deniedRow.executions.first?.executionId ?? ""
        let deniedShown = try Self.toolc(daemon, Self.ana, ["show", deniedID])
        #expect(deniedShown.status == 0, "\(deniedShown)")
        #expect(
            deniedShown.stdout.contains("\nstatus:     denied (refused before anything ran)\n"), "\(deniedShown.stdout)"
        )
        #expect(deniedShown.stdout.contains("\nerror:      -32001 permission denied: "), "\(deniedShown.stdout)")
        #expect(deniedShown.stdout.contains("\"network\""), "the arguments name the mode: \(deniedShown.stdout)")

        // Someone else's execution, and one that does not exist.
        let nosy = try Self.toolc(daemon, Self.ben, ["show", deniedID])
        #expect(nosy.status == ToolcExit.rejected && nosy.stderr.contains("belongs to another user"), "\(nosy)")
        #expect(try Self.toolc(daemon, nil, ["show", deniedID]).status == 0, "admins see everyone's")
        let missing = try Self.toolc(daemon, nil, ["show", "ex_" + String(repeating: "0", count: 32)])
        #expect(missing.status == ToolcExit.rejected && missing.stderr.contains("no execution"), "\(missing)")
    }

    /// A cacheable tool through `toolc call`: the second call is answered from the cache (said on stderr;
    /// `--json` carries `cached` and `cached_from`, valid against the schema), `--no-cache` runs it, and the
    /// hit has its own history row and `toolc show` says what it is.
    @Test func callSaysWhenTheCacheAnsweredAndShowAndHistoryMarkTheHit() throws {
        let tools = try ToolsDirectory()
        defer { tools.remove() }
        try tools.write(
            "stamp",
            toolManifest(
                "stamp", properties: ["seed": ["type": "string"]], required: ["seed"],
                argv: ["/bin/sh", "-c", "echo \"$1 $(date +%s%N)\"", "sh", "{{seed}}"], stdin: "none",
                extra: ["cacheable": true, "cache_ttl_s": 600]))
        let daemon = try TestDaemon(["--tools-dir", tools.path])
        defer { daemon.stop() }

        let firstOut = try Self.toolc(daemon, Self.ana, ["call", "stamp", "--arg", "seed=a", "--json"])
        #expect(firstOut.status == 0, "\(firstOut)")
        let first = try JSONCoding.parse(firstOut.stdoutBytes)
        #expect(first["cached"] == nil && first["cached_from"] == nil, "\(first)")
        try ProtocolSchemaTests.expectValid(first, "tools.call.result")

        let text = try Self.toolc(daemon, Self.ana, ["call", "stamp", "--arg", "seed=a"])
        #expect(text.status == 0 && text.stdout == first["stdout"]?.stringValue, "\(text)")
        #expect(
            text.stderr.contains("toolc: answered from the result cache (the result of \(Self.id(first))"), "\(text)")

        let hitOut = try Self.toolc(daemon, Self.ana, ["call", "stamp", "--arg", "seed=a", "--json"])
        let hit = try JSONCoding.parse(hitOut.stdoutBytes)
        #expect(hit["cached"] == true && hit["cached_from"] == first["execution_id"], "\(hit)")
        #expect(hit["stdout"] == first["stdout"] && Self.id(hit) != Self.id(first), "\(hit)")
        try ProtocolSchemaTests.expectValid(hit, "tools.call.result")

        let fresh = try Self.toolc(daemon, Self.ana, ["call", "stamp", "--arg", "seed=a", "--no-cache"])
        #expect(fresh.status == 0 && fresh.stdout != text.stdout && fresh.stdout.hasPrefix("a "), "\(fresh)")
        #expect(!fresh.stderr.contains("cache"), "\(fresh)")

        let hitShown = try Self.toolc(daemon, Self.ana, ["show", Self.id(hit)])
        #expect(
            hitShown.stdout.contains("\ncached:     yes: answered from the result cache, nothing ran"), "\(hitShown)")
        #expect(
            hitShown.stdout.contains("\ntool:       stamp\n") && hitShown.stdout.contains("\nmethod:     tools.call\n"))
        let rows = Self.table(
            try Self.toolc(daemon, Self.ana, ["history", "--tool", "stamp"]).stdout, Self.historyColumns)
        #expect(rows.map { $0["STATUS"] } == ["exited", "exited (cached)", "exited (cached)", "exited"], "\(rows)")
        #expect(rows.first { $0["EXECUTION ID"] == Self.id(hit) }?["DURATION"] == "0ms", "nothing ran: \(rows)")

        let figures = try Self.metrics(Self.toolc(daemon, Self.ana, ["metrics", "--json", "--tool", "stamp"]))
        #expect(figures.tools.map(\.tool) == ["stamp"] && figures.tools.first?.figures.cacheHits == 2, "\(figures)")
        let table = Self.table(
            try Self.toolc(daemon, Self.ana, ["metrics", "--tool", "stamp"]).stdout, ["TOOL"] + Self.figureColumns)
        #expect(table.first?["CACHE HIT %"] == "50.0" && table.first?["OK %"] == "100.0", "\(table)")
    }

    // MARK: metrics

    /// The figures table for people (root: also per user), `--json`, and `--format prometheus` read by a
    /// strict parser of the text exposition format (and promtool where installed); a user sees only their
    /// own figures and no user table.
    @Test func metricsTableJSONAndPrometheusExposition() throws {
        let daemon = try TestDaemon()
        defer { daemon.stop() }
        _ = try Self.exec(daemon, nil, ["/bin/echo", "one"])
        _ = try Self.exec(daemon, nil, ["/bin/echo", "two"])
        _ = try Self.exec(daemon, nil, ["/bin/sh", "-c", "exit 3"])
        let slow = try Self.toolc(daemon, nil, ["exec", "--timeout", "300ms", "--", "/bin/sleep", "5"])
        #expect(slow.status == 124, "\(slow)")
        _ = try Self.exec(daemon, Self.ana, ["/bin/echo", "ana"])
        let denied = try Self.toolc(daemon, Self.ana, ["exec", "--mode", "network", "--", "/bin/true"])
        #expect(denied.status == ToolcExit.rejected, "\(denied)")

        let result = try Self.metrics(Self.toolc(daemon, nil, ["metrics", "--json"]))
        guard let exec = result.tools.first(where: { $0.tool == "exec" }) else {
            Issue.record("no exec figures: \(result)")
            return
        }
        let f = exec.figures
        #expect(f.calls == 6 && f.succeeded == 3 && f.failed == 2 && f.refused == 1, "\(f)")
        #expect(f.timeouts == 1 && f.oom == 0 && f.denied == 1 && f.rateLimited == 0 && f.cacheHits == 0, "\(f)")
        #expect(exec.change == nil, "no calls in the previous period")
        #expect(Set(result.users?.map(\.uid) ?? []) == [0, Self.ana], "\(String(describing: result.users))")

        let text = try Self.toolc(daemon, nil, ["metrics"])
        #expect(text.status == 0, "\(text)")
        #expect(
            text.stdout.hasPrefix("period: ") && text.stdout.contains("(24h); change against the 24h before\n"),
            "\(text.stdout)")
        let tools = Self.table(text.stdout, ["TOOL"] + Self.figureColumns + ["CHANGE"])
        let row = tools.first { $0["TOOL"] == "exec" } ?? [:]
        let durations = f.durationMs
        let expected: [String: String] = [
            "CALLS": "6", "OK %": "60.0", "FAILED": "2", "TIMEOUTS": "1", "OOM": "0", "DENIED": "1",
            "RATE LIMITED": "0", "CACHE HIT %": "0.0", "P50 MS": String(durations?.p50 ?? -1),
            "P95 MS": String(durations?.p95 ?? -1), "P99 MS": String(durations?.p99 ?? -1), "CHANGE": "new",
        ]
        for (column, value) in expected {
            #expect(row[column] == value, "\(column) in \(row)\n\(text.stdout)")
        }
        let users = Self.table(text.stdout, ["USER"] + Self.figureColumns)
        #expect(users.first { $0["USER"] == "root (0)" }?["CALLS"] == "4", "\(text.stdout)")
        #expect(users.first { $0["USER"] == String(Self.ana) }?["CALLS"] == "2", "\(text.stdout)")
        #expect(users.first { $0["USER"] == String(Self.ana) }?["DENIED"] == "1", "\(text.stdout)")

        // ana: her own figures, no user table; another user's are not hers to see.
        let anas = try Self.metrics(Self.toolc(daemon, Self.ana, ["metrics", "--json"]))
        #expect(anas.users == nil)
        #expect(anas.tools.first { $0.tool == "exec" }?.figures.calls == 2)
        let anaText = try Self.toolc(daemon, Self.ana, ["metrics"])
        #expect(Self.table(anaText.stdout, ["TOOL"] + Self.figureColumns).first?["CALLS"] == "2", "\(anaText.stdout)")
        #expect(Self.table(anaText.stdout, ["USER"] + Self.figureColumns).isEmpty, "\(anaText.stdout)")
        let nosy = try Self.toolc(daemon, Self.ana, ["metrics", "--user", "root"])
        #expect(nosy.status == ToolcExit.rejected && nosy.stderr.contains("only admins"), "\(nosy)")

        // Prometheus: well-formed, the totals as counters, the period's quantiles.
        let prom = try Self.toolc(daemon, nil, ["metrics", "--format", "prometheus"])
        #expect(prom.status == 0 && prom.stderr.isEmpty, "\(prom)")
        let families = try ExpositionParser.parse(prom.stdout)
        func value(_ family: String, _ sample: String, _ labels: [String: String]) -> Double? {
            families[family]?.samples.first { $0.name == sample && $0.labels == labels }?.value
        }
        for (name, type) in [
            ("toold_executions_total", "counter"), ("toold_cache_hits_total", "counter"),
            ("toold_denied_total", "counter"), ("toold_rate_limited_total", "counter"),
            ("toold_execution_duration_seconds", "summary"), ("toold_queued_seconds", "summary"),
            ("toold_success_ratio", "gauge"), ("toold_cache_hit_ratio", "gauge"), ("toold_memory_peak_bytes", "gauge"),
        ] {
            #expect(families[name]?.type == type, "\(name)\n\(prom.stdout)")
            #expect(families[name]?.help?.isEmpty == false, "\(name) has HELP")
        }
        let total = "toold_executions_total"
        #expect(value(total, total, ["tool": "exec", "status": "exited"]) == 4)
        #expect(value(total, total, ["tool": "exec", "status": "timeout"]) == 1)
        #expect(value(total, total, ["tool": "exec", "status": "denied"]) == 1)
        #expect(value("toold_denied_total", "toold_denied_total", ["tool": "exec"]) == 1)
        let duration = "toold_execution_duration_seconds"
        #expect(value(duration, duration + "_count", ["tool": "exec"]) == Double(exec.totals.durationCount))
        #expect(value(duration, duration, ["tool": "exec", "quantile": "0.5"]) == Double(durations?.p50 ?? -1) / 1000)
        #expect(value("toold_success_ratio", "toold_success_ratio", ["tool": "exec"]) == 0.6)
        #expect(prom.stdout == PrometheusExposition.render(result), "the same rendering as the library's")
        // And Prometheus' own checker: scripts/deps installs promtool (from Debian's prometheus package).
        let promtool = try #require(
            ["/usr/local/bin/promtool", "/usr/bin/promtool"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }),
            "promtool is missing: scripts/deps installs it")
        let checked = try runProgram(promtool, ["check", "metrics"], stdin: Array(prom.stdout.utf8))
        #expect(checked.status == 0, "promtool check metrics: \(checked.stdout) \(checked.stderr)")

        for bad in [["--format", "prometheus", "--json"], ["--format", "xml"], ["--since", "soon"]] {
            let out = try Self.toolc(daemon, nil, ["metrics"] + bad)
            #expect(out.status == 64, "\(bad): \(out)")
        }
    }

    // MARK: records unavailable

    /// The state directory on a small tmpfs, then filled: `toolc exec` and `toolc call` exit 117 with the
    /// daemon's reason (nothing ran); the error frame carries the call's id and matches error.json; once
    /// space returns, calls run and are recorded again.
    @Test func aCallThatCannotBeRecordedExits117() throws {
        let dir = try TempDir("toolc-records-full")
        defer { dir.remove() }
        let state = dir.url.appendingPathComponent("state").path
        try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true)
        let mount = try runProgram("/usr/bin/mount", ["-t", "tmpfs", "-o", "size=4m,mode=0755", "tmpfs", state])
        #expect(mount.status == 0, "\(mount)")
        defer { _ = try? runProgram("/usr/bin/umount", ["-l", state]) }
        let daemon = try TestDaemon(["--state-dir", state])  // the last --state-dir wins
        defer { daemon.stop() }  // before the unmount
        #expect(FileManager.default.fileExists(atPath: state + "/toold.db"), "the daemon uses the tmpfs")
        #expect(try Self.toolc(daemon, nil, ["exec", "--", "/bin/true"]).status == 0)

        let fill = try runProgram("/usr/bin/dd", ["if=/dev/zero", "of=\(state)/filler", "bs=64k"])
        #expect(fill.stderr.contains("No space left"), "\(fill)")
        let refused = try Self.toolc(daemon, nil, ["exec", "--", "/bin/echo", "unrecorded"])
        #expect(refused.status == 117, "\(refused)")
        #expect(refused.stdout.isEmpty && refused.stderr.contains("records unavailable, nothing ran"), "\(refused)")
        let call = try Self.toolc(daemon, Self.ana, ["call", "shell", "--arg", "script=echo unrecorded"])
        #expect(call.status == 117 && call.stdout.isEmpty, "\(call)")
        let c = try daemon.client()
        defer { c.close() }
        let frame = try c.roundTrip(#"{"jsonrpc":"2.0","id":1,"method":"exec","params":{"argv":["/bin/true"]}}"#)
        #expect(frame.errorCode == RPCErrorCode.recordsUnavailable, "\(frame)")
        #expect(frame["error"]?["data"]?["execution_id"]?.stringValue?.hasPrefix("ex_") == true, "\(frame)")
        try ProtocolSchemaTests.expectValid(frame, "error")
        let history = try Self.toolc(daemon, nil, ["history"])
        #expect(
            history.status == 0 && Self.table(history.stdout, Self.historyColumns).count == 1, "reads work: \(history)")

        try FileManager.default.removeItem(atPath: state + "/filler")
        let after = try Self.exec(daemon, nil, ["/bin/echo", "recorded"])
        #expect(after["stdout"] == "recorded\n", "\(after)")
        let shown = try Self.toolc(daemon, nil, ["show", Self.id(after)])
        #expect(shown.status == 0 && shown.stdout.contains("\nrecorded\n"), "\(shown)")
    }
}
