import ArgumentParser
import ToolClient
import ToolProtocol

/// `toolc history`: the execution history (`executions.list`) as a table, newest first, a page at a time.
struct History: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List past executions: who ran what, when, and how it ended (newest first).",
        discussion: """
            Users see their own executions; admins see everyone's (--user narrows it to one user). \
            --since and --until take a duration ago (90m, 24h, 7d) or an RFC 3339 time \
            (2026-11-21T09:30:00Z); the period is [since, until) on start times. Times in the table are local \
            (TZ=UTC toolc history for UTC). When more executions match than --limit, toolc prints on stderr \
            the command that shows the next page. `toolc show ID` shows one execution in full.
            Statuses: \(ExecutionStatus.allCases.map(\.rawValue).joined(separator: ", ")).
            Example: toolc history --tool shell --status timeout --since 7d
            """)

    @OptionGroup var options: ClientOptions
    @Option(help: "Only this tool (exec for the exec method).") var tool: String?
    @Option(help: "Only this status (see below).") var status: String?
    @Option(help: "Only executions started at or after this time: 90m, 24h, 7d ago, or RFC 3339.") var since: String?
    @Option(help: "Only executions started before this time: a duration ago or RFC 3339.") var until: String?
    @Option(help: "Only this user's executions, by user name as recorded (admins; others may name only themselves).")
    var user: String?
    @Option(
        help:
            "Executions per page, 1–\(ExecutionsListParams.maximumLimit) (default \(ExecutionsListParams.defaultLimit))."
    )
    var limit: Int?
    @Option(help: "Start after this position: the cursor printed by the previous page.") var cursor: String?

    func validate() throws {
        if let status, ExecutionStatus(rawValue: status) == nil {
            throw ValidationError(
                "--status must be one of \(ExecutionStatus.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        if let limit, !(1...ExecutionsListParams.maximumLimit).contains(limit) {
            throw ValidationError("--limit must be between 1 and \(ExecutionsListParams.maximumLimit)")
        }
    }

    func run() throws {
        let now = Timestamp.now()
        let params = ExecutionsListParams(
            tool: tool, status: status.flatMap(ExecutionStatus.init(rawValue:)),
            since: try since.map { try RecordsText.time($0, flag: "--since", now: now) },
            until: try until.map { try RecordsText.time($0, flag: "--until", now: now) }, user: user, limit: limit,
            cursor: cursor)
        let json = try callDaemon(options, RPCMethod.executionsList, try encode(params))
        guard let page = try? JSONCoding.fromJSON(ExecutionsListResult.self, json) else {
            throw fail(.protocolError("executions.list returned an unexpected shape"))
        }
        if options.json {
            printJSON(json)
        } else if page.executions.isEmpty {
            let filtered = tool != nil || status != nil || since != nil || until != nil || user != nil
            writeAll(1, Array((filtered ? "no executions match\n" : "no executions\n").utf8))
        } else {
            writeAll(1, Array(Self.render(page.executions).utf8))
        }
        if let next = page.nextCursor, !options.json {
            printError("toolc: more executions: \(nextPageCommand(params, cursor: next))")
        }
    }

    static func render(_ executions: [ExecutionSummary]) -> String {
        var rows = [["STARTED", "EXECUTION ID", "USER", "TOOL", "STATUS", "EXIT", "DURATION", "QUEUED"]]
        for e in executions {
            rows.append([
                RecordsText.local(e.startedAt), e.executionId, RecordsText.user(e.user, e.uid), e.tool,
                e.status.rawValue + (e.cached ? " (cached)" : ""), e.exitCode.map(String.init) ?? "-",
                RecordsText.milliseconds(e.durationMs), RecordsText.milliseconds(e.queuedMs),
            ])
        }
        return table(rows)
    }

    /// The command line of the next page: the same filters, with relative times fixed to the instants this
    /// page used (a cursor is a position within one period), and the cursor.
    func nextPageCommand(_ params: ExecutionsListParams, cursor: String) -> String {
        var words = ["toolc", "history"]
        if let socket = options.socket { words += ["--socket", socket] }
        if let tool = params.tool { words += ["--tool", tool] }
        if let status = params.status { words += ["--status", status.rawValue] }
        if let since = params.since { words += ["--since", since.rfc3339] }
        if let until = params.until { words += ["--until", until.rfc3339] }
        if let user = params.user { words += ["--user", user] }
        if let limit = params.limit { words += ["--limit", String(limit)] }
        words += ["--cursor", cursor]
        return words.map(shellQuoted).joined(separator: " ")
    }
}

/// A wire type as params.
func encode<T: Encodable>(_ params: T) throws -> JSONValue {
    do {
        return try JSONCoding.toJSON(params)
    } catch {
        throw fail(.protocolError("cannot encode params: \(error)"))
    }
}

/// A word as a POSIX shell reads it back: as is when it is only safe characters, else in single quotes.
func shellQuoted(_ word: String) -> String {
    let safe = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:=+,@%")
    if !word.isEmpty, word.allSatisfy(safe.contains) { return word }
    return "'" + word.replacing("'", with: "'\\''") + "'"
}
