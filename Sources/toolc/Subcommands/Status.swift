import ArgumentParser
import ToolClient
import ToolProtocol

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show the daemon's status and who you are to it.")

    @OptionGroup var options: ClientOptions

    func run() throws {
        let client = try options.connect()
        let result: JSONValue
        do {
            result = try client.call(RPCMethod.daemonStatus)
        } catch {
            throw fail(error)
        }
        if options.json {
            printJSON(result)
            return
        }
        guard let status = try? JSONCoding.fromJSON(DaemonStatusResult.self, result) else {
            throw fail(.protocolError("daemon.status returned an unexpected shape"))
        }
        let c = status.caller
        let e = status.executions
        var lines = [
            "toold \(status.version), pid \(status.pid), up \(formatDuration(ms: status.uptimeMs))",
            "you:        \(c.user) (uid \(c.uid), gid \(c.gid), pid \(c.pid))\(c.admin ? ", admin" : "")",
            "groups:     \(c.groups.joined(separator: ", "))",
            "cgroups:    \(status.cgroup.layout) (usable: \(status.cgroup.controllers.isEmpty ? "none" : status.cgroup.controllers.joined(separator: ", ")))",
            "sandbox:    user namespaces \(status.sandbox.userNamespaces ? "yes" : "no"), seccomp \(status.sandbox.seccomp ? "yes" : "no")",
            preparedLine(status.sandbox.prepared),
            "executions: \(e.running) running, \(e.queued) queued, \(e.pendingApproval) waiting for approval",
        ]
        for u in e.perUser ?? [] {
            let who = u.user == String(u.uid) ? u.user : "\(u.user) (uid \(u.uid))"
            lines.append("  \(who): \(u.running) running, \(u.queued) queued, \(u.pendingApproval) waiting for approval")
        }
        let s = status.scheduler
        lines.append(
            "scheduler:  at most \(s.maxRunning) running; queue \(s.maxQueued) (\(s.maxQueuedPerUser) per user), "
                + "timeout \(formatDuration(ms: Int64(s.queueTimeoutMs)))")
        lines.append("policy:     \(status.policy.source), loaded \(status.policy.loadedAt)")
        if let error = status.policy.error { lines.append("            last reload failed, previous policy kept: \(error)") }
        for warning in status.policy.warnings ?? [] { lines.append("            warning: \(warning)") }
        writeAll(1, Array((lines.joined(separator: "\n") + "\n").utf8))
    }
}

func formatDuration(ms: Int64) -> String {
    let s = ms / 1000
    if s < 60 { return "\(s)s" }
    if s < 3600 { return "\(s / 60)m\(s % 60)s" }
    if s < 86400 { return "\(s / 3600)h\((s % 3600) / 60)m" }
    return "\(s / 86400)d\((s % 86400) / 3600)h"
}

/// "prepared:   3 of 4 ready; 120 calls used one, 5 found none ready" (or "off").
func preparedLine(_ p: PreparedSandboxes) -> String {
    guard p.poolSize > 0 else { return "prepared:   off (warm_pool_size 0): every call sets its sandbox up" }
    return "prepared:   \(p.ready) of \(p.poolSize) sandboxes ready; \(p.used) calls used one, \(p.missed) found none ready"
}
