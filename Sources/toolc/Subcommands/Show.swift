import ArgumentParser
import ToolClient
import ToolProtocol

/// `toolc show ID`: one execution in full (`executions.get`).
struct Show: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show one execution in full: who, when, the arguments, the outcome and the stored output.",
        discussion: """
            Every recorded field: method and tool, status and exit code or signal, the caller (uid, gid, pid), \
            times (local, and UTC), duration, queued time, CPU and peak memory, policy's decision and rule, \
            attempts, violations, the arguments (pretty JSON, redacted as they were recorded), the error a \
            refused call got, whether it was answered from the result cache, and stdout and stderr as stored \
            (redacted, cut to the daemon's records.output_bytes). Users may show their own executions; admins \
            anyone's. The ids come from `toolc history`, `toolc exec --json` and `toolc call --json`.
            """)

    @OptionGroup var options: ClientOptions
    @Argument(help: "The execution id (ex_…).") var executionID: String

    func run() throws {
        let json = try callDaemon(
            options, RPCMethod.executionsGet, try encode(ExecutionsGetParams(executionId: executionID)))
        if options.json { return printJSON(json) }
        guard let record = try? JSONCoding.fromJSON(ExecutionRecord.self, json) else {
            throw fail(.protocolError("executions.get returned an unexpected shape"))
        }
        writeAll(1, Array(Self.render(record, cachedFrom: json["cached_from"]?.stringValue).utf8))
    }

    static func render(_ r: ExecutionRecord, cachedFrom: String?) -> String {
        var lines: [String] = []
        func field(_ name: String, _ value: String) {
            let label = name + ":"
            lines.append(label + String(repeating: " ", count: max(1, 12 - label.count)) + value)
        }
        field("execution", r.executionId)
        field("method", r.method.rawValue)
        field("tool", r.tool)
        field("status", status(r))
        var cached = "no"
        if r.cached {
            cached = "yes: answered from the result cache, nothing ran"
            if let cachedFrom { cached += " (the result of \(cachedFrom))" }
        }
        field("cached", cached)
        field("user", "\(r.user) (uid \(r.uid), gid \(r.gid), pid \(r.pid))")
        field("request id", r.requestId.map(JSONCoding.serializeString) ?? "none (a notification)")
        field("started", "\(RecordsText.local(r.startedAt, milliseconds: true))  (\(r.startedAt.rfc3339))")
        field(
            "finished",
            r.finishedAt.map { "\(RecordsText.local($0, milliseconds: true))  (\($0.rfc3339))" }
                ?? (r.status == .running ? "still running" : "-"))
        if let d = r.durationMs { field("duration", "\(d) ms") }
        if let q = r.queuedMs { field("queued", "\(q) ms") }
        if let cpu = r.cpuMs { field("cpu", "\(cpu) ms") }
        if let memory = r.memoryPeakBytes { field("memory", "\(RecordsText.bytes(memory)) at peak") }
        if r.decision != nil || r.rule != nil {
            field("decision", [r.decision, r.rule.map { "rule: \($0)" }].compactMap { $0 }.joined(separator: "; "))
        }
        field("attempts", String(r.attempts))
        field("violations", r.violations.isEmpty ? "none" : r.violations.joined(separator: ", "))
        if let failure = r.failure { field("failure", failure) }
        if let error = r.error { field("error", "\(error.code) \(error.message)") }
        lines.append("arguments:")
        lines.append(prettyJSON(r.arguments))
        var text = lines.joined(separator: "\n") + "\n"
        text += output(
            "stdout", stored: r.stdout, encoding: r.stdoutEncoding, storedTruncated: r.stdoutStoredTruncated,
            bytes: r.stdoutBytes, sha256: r.stdoutSha256, truncated: r.stdoutTruncated)
        text += output(
            "stderr", stored: r.stderr, encoding: r.stderrEncoding, storedTruncated: r.stderrStoredTruncated,
            bytes: r.stderrBytes, sha256: r.stderrSha256, truncated: r.stderrTruncated)
        return text
    }

    /// `exited with 0`, `signaled (signal 9)`, `denied (refused before anything ran)`, …
    static func status(_ r: ExecutionRecord) -> String {
        switch r.status {
        case .exited: return "exited" + (r.exitCode.map { " with \($0)" } ?? "")
        case .signaled: return "signaled" + (r.signal.map { " (signal \($0))" } ?? "")
        case .running: return "running"
        case .interrupted: return "interrupted (the daemon stopped while it ran)"
        case let s where s.isRefusal: return "\(s.rawValue) (refused before anything ran)"
        case let s:
            return s.rawValue + (r.exitCode.map { " (exit code \($0))" } ?? "")
        }
    }

    /// One stream: what the execution produced (size, digest, cut by output_bytes), then the stored copy.
    static func output(
        _ name: String, stored: String?, encoding: OutputEncoding?, storedTruncated: Bool?, bytes: Int?,
        sha256: String?, truncated: Bool?
    ) -> String {
        guard let bytes else { return "" }  // nothing ran (a refusal), or it is still running
        var head = "\(name):      \(bytes) bytes"
        if let sha256, bytes > 0 { head += ", sha256 \(sha256)" }
        if truncated == true { head += ", cut at the output limit" }
        guard bytes > 0 else { return head + "\n" }
        guard let stored else { return head + "; not stored (records.output_bytes is 0, or the history was pruned)\n" }
        if storedTruncated == true { head += "; stored: the first \(storedBytes(stored, encoding)) bytes" }
        if encoding == .base64 { head += "; stored as base64 (not UTF-8)" }
        head += "\n"
        return head + stored + (stored.hasSuffix("\n") ? "" : "\n")
    }

    static func storedBytes(_ stored: String, _ encoding: OutputEncoding?) -> Int {
        encoding == .base64 ? (Base64.decode(stored)?.count ?? 0) : stored.utf8.count
    }
}
