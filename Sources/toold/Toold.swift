import ArgumentParser
import Foundation
import Logging
import ToolDaemon
import ToolEngine
import ToolProtocol

/// `toold`: parses flags into a configuration source and hands over to `Daemon.run`.
@main
struct Toold: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "toold",
        abstract: "Runs tools for local AI agents in throwaway sandboxes, over JSON-RPC on a Unix socket.",
        discussion: """
            Settings come from the config file (default /etc/toold/toold.json; absent is fine unless --config \
            names it), then from these flags. SIGHUP reloads the file; SIGTERM stops gracefully. Under systemd \
            use toold.socket (socket activation) and toold.service (Type=notify). See README.md and protocol/PROTOCOL.md.
            """,
        version: "toold \(TooldVersion.current)")

    @Option(help: "Config file (JSON).") var config: String?
    @Option(help: "Socket path to bind when not socket-activated (default /run/toold.sock).") var socket: String?
    @Option(name: .customLong("state-dir"), help: "State directory (default $STATE_DIRECTORY or /var/lib/toold).") var stateDir: String?
    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.") var logLevel: String?
    @Option(name: .customLong("socket-group"), help: "Group owning the socket file (default toold).") var socketGroup: String?
    @Option(name: .customLong("admin-group"), help: "Members of this group are admins (default toold-admin).") var adminGroup: String?
    @Option(name: .customLong("max-frame-bytes"), help: "Largest frame accepted (default 16777216).") var maxFrameBytes: Int?
    @Option(name: .customLong("max-connections"), help: "Connections served at once (default 256).") var maxConnections: Int?
    @Option(name: .customLong("max-connections-per-user"), help: "Connections one user may hold at once; root is not capped (default 64).")
    var maxConnectionsPerUser: Int?
    @Option(name: .customLong("read-timeout-ms"), help: "A stalled partial frame closes the connection after this (default 10000).") var readTimeoutMs: Int?
    @Option(name: .customLong("shutdown-grace-ms"), help: "Time requests get to finish on stop (default 10000).") var shutdownGraceMs: Int?
    @Option(name: .customLong("sandbox-user"), help: "Unprivileged host user sandboxes run as (default toold-sandbox).") var sandboxUser: String?
    @Option(name: .customLong("netns-pool-size"), help: "Network namespaces prepared ahead (default 4; 0 disables).") var netnsPoolSize: Int?
    @Option(name: .customLong("warm-pool-size"), help: "Sandboxes prepared ahead of demand (default 4; 0 disables).") var warmPoolSize: Int?
    @Option(
        name: .customLong("refill-wait-ms"),
        help: "How long a pool at least half full waits for running executions to end before it replaces what they took (default 10; 0: at once).")
    var refillWaitMs: Int?
    @Option(name: .customLong("tools-dir"), help: "Directory of tool manifests, *.json (default /etc/toold/tools.d).") var toolsDir: String?
    @Option(name: .customLong("require-cgroup-limits"), help: "Refuse executions when memory/pids limits cannot be enforced (default true).")
    var requireCgroupLimits: Bool?
    @Option(name: .customLong("policy"), help: "Policy file (default /etc/toold/policy.json; the built-in default applies when that is absent).")
    var policy: String?
    @Option(name: .customLong("max-running"), help: "Sandboxes running at once (default: 4 per CPU, within memory).") var maxRunning: Int?
    @Option(name: .customLong("max-queued"), help: "Calls waiting for a sandbox, in all (default 256).") var maxQueued: Int?
    @Option(name: .customLong("max-queued-per-user"), help: "Calls one user may have waiting (default 64).") var maxQueuedPerUser: Int?
    @Option(name: .customLong("queue-timeout-ms"), help: "A call waiting longer is refused overloaded (default 60000).") var queueTimeoutMs: Int?
    @Flag(name: .customLong("manual-clock"), help: "Tests only: the policy clock moves only by testing.clock.advance (admins).")
    var manualClock = false
    @Option(name: .customLong("records-enabled"), help: "Record executions in <state-dir>/toold.db (default true; false only for benchmarks).")
    var recordsEnabled: Bool?
    @Option(name: .customLong("records-output-bytes"), help: "Bytes of each output stream kept per execution, 0 for none (default 65536).")
    var recordsOutputBytes: Int?
    @Option(name: .customLong("records-history-days"), help: "Days history and outputs are kept (default 30).") var recordsHistoryDays: Int?
    @Option(name: .customLong("records-audit-days"), help: "Days the audit is kept (default 365).") var recordsAuditDays: Int?
    @Option(name: .customLong("records-cache-max-entries"), help: "Result cache entries kept at most (default 10000).")
    var recordsCacheMaxEntries: Int?
    @Option(name: .customLong("records-cache-max-bytes"), help: "Result cache bytes kept at most (default 67108864).")
    var recordsCacheMaxBytes: Int?
    @Flag(name: .customLong("print-default-policy"), help: "Print the built-in default policy and exit.")
    var printDefaultPolicy = false
    @Option(name: .customLong("limit"), help: ArgumentHelp("Execution limit default and maximum: NAME=DEFAULT[:MAX] (repeatable).", valueName: "NAME=DEFAULT[:MAX]"))
    var limits: [String] = []

    func run() async throws {
        if printDefaultPolicy {
            print(DefaultPolicy.json)
            return
        }
        let flags = self
        let status = await Daemon.run {
            var configuration = DaemonConfiguration()
            try configuration.apply(file: flags.config ?? "/etc/toold/toold.json", required: flags.config != nil)
            try flags.applyFlags(to: &configuration)
            return configuration
        }
        throw ExitCode(status)
    }

    /// Flags over the file: each file setting has its flag, named the same with dashes.
    func applyFlags(to c: inout DaemonConfiguration) throws {
        if let socket { c.socketPath = socket }
        if let stateDir { c.stateDirectory = stateDir }
        if let socketGroup { c.socketGroup = socketGroup }
        if let adminGroup { c.adminGroup = adminGroup }
        if let sandboxUser { c.sandboxUser = sandboxUser }
        if let logLevel {
            guard let level = Logger.Level(rawValue: logLevel) else {
                throw ValidationError("--log-level must be one of \(Logger.Level.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            c.logLevel = level
        }
        if let maxFrameBytes { c.maxFrameBytes = maxFrameBytes }
        if let maxConnections { c.maxConnections = maxConnections }
        if let maxConnectionsPerUser { c.maxConnectionsPerUser = maxConnectionsPerUser }
        if let readTimeoutMs { c.readTimeoutMs = readTimeoutMs }
        if let shutdownGraceMs { c.shutdownGraceMs = shutdownGraceMs }
        if let netnsPoolSize { c.netnsPoolSize = netnsPoolSize }
        if let warmPoolSize { c.warmPoolSize = warmPoolSize }
        if let refillWaitMs { c.refillWaitMs = refillWaitMs }
        if let requireCgroupLimits { c.requireCgroupLimits = requireCgroupLimits }
        if let toolsDir { c.toolsDirectory = toolsDir }
        if let policy {
            c.policyFile = policy
            c.policyFileRequired = true
        }
        if let maxRunning { c.maxRunning = maxRunning }
        if let maxQueued { c.maxQueued = maxQueued }
        if let maxQueuedPerUser { c.maxQueuedPerUser = maxQueuedPerUser }
        if let queueTimeoutMs { c.queueTimeoutMs = queueTimeoutMs }
        c.manualClock = manualClock
        if let recordsEnabled { c.recordsEnabled = recordsEnabled }
        if let recordsOutputBytes { c.recordsOutputBytes = recordsOutputBytes }
        if let recordsHistoryDays { c.recordsHistoryDays = recordsHistoryDays }
        if let recordsAuditDays { c.recordsAuditDays = recordsAuditDays }
        if let recordsCacheMaxEntries { c.recordsCacheMaxEntries = recordsCacheMaxEntries }
        if let recordsCacheMaxBytes { c.recordsCacheMaxBytes = recordsCacheMaxBytes }
        for entry in limits {
            let parts = entry.split(separator: "=", maxSplits: 1)
            let values = parts.count == 2 ? parts[1].split(separator: ":").map { Int($0) } : []
            guard parts.count == 2, (1...2).contains(values.count), values.allSatisfy({ ($0 ?? 0) > 0 }) else {
                throw ValidationError("--limit \(entry): expected NAME=DEFAULT[:MAX] with positive integers")
            }
            var object: [String: JSONValue] = ["default": .int(Int64(values[0]!))]
            if values.count == 2 { object["max"] = .int(Int64(values[1]!)) }
            try c.applyLimit(name: String(parts[0]), .object(object))
        }
    }
}

