import Foundation
import Logging
import ToolEngine
import ToolProtocol
import ToolRecords

/// Every setting of the daemon, as one plain value: built once from the config file and the command-line
/// flags (flags win), validated once, then passed to the parts that need it.
public struct DaemonConfiguration: Sendable, Equatable {
    /// The config file this came from, if any (reloaded on SIGHUP).
    public var configFile: String?
    public var socketPath = "/run/toold.sock"
    public var stateDirectory = ProcessInfo.processInfo.environment["STATE_DIRECTORY"]?
        .split(separator: ":").first.map(String.init) ?? "/var/lib/toold"
    /// Group that owns the socket file (mode 0660). When the default group does not exist the socket keeps root's group.
    public var socketGroup = "toold"
    /// Members of this group (and root) are admins.
    public var adminGroup = "toold-admin"
    public var logLevel: Logger.Level = .info
    public var maxFrameBytes = Framing.defaultMaxFrameBytes
    public var maxConnections = 256
    /// Connections one uid may hold at once (root is not capped): a client leaking connections cannot lock
    /// the other users out of the global `maxConnections`.
    public var maxConnectionsPerUser = 64
    /// A partial frame that receives no byte for this long closes the connection.
    public var readTimeoutMs = 10_000
    /// On SIGTERM, requests in flight get this long to finish before they are cancelled.
    public var shutdownGraceMs = 10_000
    public var sandboxUser = "toold-sandbox"
    /// Fresh network namespaces kept ready (0: create one per call).
    public var netnsPoolSize = 4
    /// Sandboxes prepared ahead of demand (0: every call sets its own up).
    public var warmPoolSize = 4
    /// How long (ms) a pool at least half full waits for running executions to end before it replaces what
    /// they took (0: at once); see Sources/Sandbox/RefillPacing.swift.
    public var refillWaitMs = 10
    /// Refuse executions when cgroup memory/pids limits cannot be enforced (fail closed).
    public var requireCgroupLimits = true
    public var execLimits = ExecLimitsConfiguration()
    /// Tool manifests (`*.json`) loaded at start and on SIGHUP.
    public var toolsDirectory = "/etc/toold/tools.d"
    /// The policy file, reloaded on SIGHUP. When it is missing and was not named (file `policy` or
    /// `--policy`), the built-in default policy applies.
    public var policyFile = "/etc/toold/policy.json"
    public var policyFileRequired = false
    /// Sandboxes running at once (nil: four per CPU, at most what memory holds at the default memory limit).
    public var maxRunning: Int?
    /// Calls waiting for a sandbox, in all and per user; a call that waits longer than the timeout is refused.
    public var maxQueued = 256
    public var maxQueuedPerUser = 64
    public var queueTimeoutMs = 60_000
    /// Tests only: the policy clock moves only by `testing.clock.advance` (admins).
    public var manualClock = false
    /// Records (`<state_dir>/toold.db`): off only for the benchmark's baseline.
    public var recordsEnabled = true
    /// Bytes of each output stream kept per execution (0: none), after redaction.
    public var recordsOutputBytes = 64 << 10
    /// History and stored outputs are pruned after this many days; the audit after `recordsAuditDays`.
    public var recordsHistoryDays = 30
    public var recordsAuditDays = 365
    public var recordsCacheMaxEntries = 10_000
    public var recordsCacheMaxBytes = 64 << 20

    public init() {}

    /// The record store's settings that a reload may change.
    public var recordSettings: RecordSettings {
        RecordSettings(
            outputBytesPerStream: recordsOutputBytes, cacheMaxEntries: recordsCacheMaxEntries, cacheMaxBytes: recordsCacheMaxBytes)
    }

    /// The scheduler's settings, with the default maximum worked out from this machine.
    public var schedulerSettings: Scheduler.Settings {
        Scheduler.Settings(
            maxRunning: maxRunning ?? Scheduler.Settings.defaultMaxRunning(defaultMemoryBytes: execLimits.memoryBytes.defaultValue),
            maxQueued: maxQueued, maxQueuedPerUser: maxQueuedPerUser, queueTimeoutMs: queueTimeoutMs)
    }

    /// Names of the settings a config file may hold, as written in the file.
    static let fileKeys: Set<String> = [
        "socket", "state_dir", "socket_group", "admin_group", "log_level", "max_frame_bytes", "max_connections",
        "max_connections_per_user", "read_timeout_ms", "shutdown_grace_ms", "sandbox_user", "netns_pool_size", "warm_pool_size", "refill_wait_ms",
        "require_cgroup_limits", "limits",
        "tools_dir", "policy", "scheduler", "records",
    ]
    static let recordsKeys: Set<String> = [
        "enabled", "output_bytes", "history_days", "audit_days", "cache_max_entries", "cache_max_bytes",
    ]
    static let recordsRanges: [String: ClosedRange<Int>] = [
        "output_bytes": 0...(64 << 20), "history_days": 1...36_500, "audit_days": 1...36_500,
        "cache_max_entries": 0...10_000_000, "cache_max_bytes": 0...(16 << 30),
    ]
    static let schedulerKeys: Set<String> = ["max_running", "max_queued", "max_queued_per_user", "queue_timeout_ms"]
    static let schedulerRanges: [String: ClosedRange<Int>] = [
        "max_running": 1...100_000, "max_queued": 0...1_000_000, "max_queued_per_user": 0...1_000_000,
        "queue_timeout_ms": 1...86_400_000,
    ]
}

extension DaemonConfiguration {
    /// Applies a config file over `self`. A missing file is an error only when `required`.
    public mutating func apply(file path: String, required: Bool) throws(ConfigurationError) {
        configFile = path
        guard let data = FileManager.default.contents(atPath: path) else {
            if required || FileManager.default.fileExists(atPath: path) {
                throw ConfigurationError(file: path, reason: "cannot be read (missing or no permission)")
            }
            return
        }
        let value: JSONValue
        do {
            value = try JSONCoding.parse(Array(data))
        } catch {
            throw ConfigurationError(file: path, reason: error.description)
        }
        guard case .object(let o) = value else {
            throw ConfigurationError(file: path, reason: "must hold a JSON object, got \(value.typeName)")
        }
        let reader = FieldReader(file: path, object: o)
        try reader.rejectUnknown(Self.fileKeys)
        try reader.string("socket") { socketPath = $0 }
        try reader.string("state_dir") { stateDirectory = $0 }
        try reader.string("socket_group") { socketGroup = $0 }
        try reader.string("admin_group") { adminGroup = $0 }
        try reader.string("sandbox_user") { sandboxUser = $0 }
        try reader.string("tools_dir") { toolsDirectory = $0 }
        try reader.string("policy") {
            policyFile = $0
            policyFileRequired = true
        }
        if let value = o["scheduler"] {
            guard case .object(let sched) = value else {
                throw ConfigurationError(file: path, field: "scheduler", reason: "must be an object")
            }
            let r = FieldReader(file: path, object: sched, prefix: "scheduler.")
            try r.rejectUnknown(Self.schedulerKeys)
            try r.integer("max_running", in: Self.schedulerRanges["max_running"]!) { maxRunning = $0 }
            try r.integer("max_queued", in: Self.schedulerRanges["max_queued"]!) { maxQueued = $0 }
            try r.integer("max_queued_per_user", in: Self.schedulerRanges["max_queued_per_user"]!) { maxQueuedPerUser = $0 }
            try r.integer("queue_timeout_ms", in: Self.schedulerRanges["queue_timeout_ms"]!) { queueTimeoutMs = $0 }
        }
        if let value = o["records"] {
            guard case .object(let rec) = value else {
                throw ConfigurationError(file: path, field: "records", reason: "must be an object")
            }
            let r = FieldReader(file: path, object: rec, prefix: "records.")
            try r.rejectUnknown(Self.recordsKeys)
            try r.bool("enabled") { recordsEnabled = $0 }
            try r.integer("output_bytes", in: Self.recordsRanges["output_bytes"]!) { recordsOutputBytes = $0 }
            try r.integer("history_days", in: Self.recordsRanges["history_days"]!) { recordsHistoryDays = $0 }
            try r.integer("audit_days", in: Self.recordsRanges["audit_days"]!) { recordsAuditDays = $0 }
            try r.integer("cache_max_entries", in: Self.recordsRanges["cache_max_entries"]!) { recordsCacheMaxEntries = $0 }
            try r.integer("cache_max_bytes", in: Self.recordsRanges["cache_max_bytes"]!) { recordsCacheMaxBytes = $0 }
        }
        try reader.string("log_level") { (text) throws(ConfigurationError) in
            guard let level = Logger.Level(rawValue: text) else {
                throw ConfigurationError(
                    file: path, field: "log_level",
                    reason: "must be one of \(Logger.Level.allCases.map(\.rawValue).joined(separator: ", ")), got \"\(text)\"")
            }
            logLevel = level
        }
        try reader.integer("max_frame_bytes", in: 64...(1 << 30)) { maxFrameBytes = $0 }
        try reader.integer("max_connections", in: 1...100_000) { maxConnections = $0 }
        try reader.integer("max_connections_per_user", in: 1...100_000) { maxConnectionsPerUser = $0 }
        try reader.integer("read_timeout_ms", in: 10...3_600_000) { readTimeoutMs = $0 }
        try reader.integer("shutdown_grace_ms", in: 0...3_600_000) { shutdownGraceMs = $0 }
        try reader.integer("netns_pool_size", in: 0...256) { netnsPoolSize = $0 }
        try reader.integer("warm_pool_size", in: 0...256) { warmPoolSize = $0 }
        try reader.integer("refill_wait_ms", in: 0...1_000) { refillWaitMs = $0 }
        try reader.bool("require_cgroup_limits") { requireCgroupLimits = $0 }
        if let limits = o["limits"] {
            try execLimits.apply(limits, file: path)
        }
    }

    /// Applies one `limits` entry (`{"default": N, "max": N}`), as the `--limit` flag does.
    public mutating func applyLimit(name: String, _ value: JSONValue) throws(ConfigurationError) {
        try execLimits.apply(.object([name: value]), file: "(flags)")
    }

    /// Checks what single fields cannot: relations between settings.
    public func validate() throws(ConfigurationError) {
        // What follows the ranges can come from either the file or a flag.
        let file = configFile.map { "\($0) or flags" } ?? "(flags)"
        // The same ranges the file reader applies, so a flag cannot set what the file may not.
        for (name, value, range) in [
            ("max_frame_bytes", maxFrameBytes, 64...(1 << 30)), ("max_connections", maxConnections, 1...100_000),
            ("max_connections_per_user", maxConnectionsPerUser, 1...100_000),
            ("read_timeout_ms", readTimeoutMs, 10...3_600_000), ("shutdown_grace_ms", shutdownGraceMs, 0...3_600_000),
            ("netns_pool_size", netnsPoolSize, 0...256), ("warm_pool_size", warmPoolSize, 0...256),
            ("refill_wait_ms", refillWaitMs, 0...1_000),
            ("scheduler.max_running", maxRunning ?? 1, Self.schedulerRanges["max_running"]!),
            ("scheduler.max_queued", maxQueued, Self.schedulerRanges["max_queued"]!),
            ("scheduler.max_queued_per_user", maxQueuedPerUser, Self.schedulerRanges["max_queued_per_user"]!),
            ("scheduler.queue_timeout_ms", queueTimeoutMs, Self.schedulerRanges["queue_timeout_ms"]!),
            ("records.output_bytes", recordsOutputBytes, Self.recordsRanges["output_bytes"]!),
            ("records.history_days", recordsHistoryDays, Self.recordsRanges["history_days"]!),
            ("records.audit_days", recordsAuditDays, Self.recordsRanges["audit_days"]!),
            ("records.cache_max_entries", recordsCacheMaxEntries, Self.recordsRanges["cache_max_entries"]!),
            ("records.cache_max_bytes", recordsCacheMaxBytes, Self.recordsRanges["cache_max_bytes"]!),
        ] where !range.contains(value) {
            // The file's values were checked as it was read: one out of range here came from a flag.
            throw ConfigurationError(
                file: "(flags)", field: name, reason: "must be between \(range.lowerBound) and \(range.upperBound), got \(value)")
        }
        guard socketPath.hasPrefix("/") else {
            throw ConfigurationError(file: file, field: "socket", reason: "must be an absolute path, got \"\(socketPath)\"")
        }
        guard stateDirectory.hasPrefix("/") else {
            throw ConfigurationError(file: file, field: "state_dir", reason: "must be an absolute path, got \"\(stateDirectory)\"")
        }
        guard policyFile.hasPrefix("/") else {
            throw ConfigurationError(file: file, field: "policy", reason: "must be an absolute path, got \"\(policyFile)\"")
        }
        guard toolsDirectory.hasPrefix("/") else {
            throw ConfigurationError(file: file, field: "tools_dir", reason: "must be an absolute path, got \"\(toolsDirectory)\"")
        }
        try execLimits.validate(file: file)
    }
}

extension ExecLimitsConfiguration {
    mutating func apply(_ value: JSONValue, file: String) throws(ConfigurationError) {
        guard case .object(let o) = value else {
            throw ConfigurationError(file: file, field: "limits", reason: "must be an object")
        }
        for (name, entry) in o {
            let field = "limits.\(name)"
            guard Self.names.contains(name) else {
                throw ConfigurationError(
                    file: file, field: field, reason: "unknown limit; known: \(Self.names.joined(separator: ", "))")
            }
            guard case .object(let pair) = entry else {
                throw ConfigurationError(file: file, field: field, reason: "must be an object {\"default\": N, \"max\": N}")
            }
            let reader = FieldReader(file: file, object: pair, prefix: field + ".")
            try reader.rejectUnknown(["default", "max"])
            var d: Int?
            var m: Int?
            try reader.integer("default", in: 1...Int(Int64.max)) { d = $0 }
            try reader.integer("max", in: 1...Int(Int64.max)) { m = $0 }
            switch name {
            case "timeout_ms": timeoutMs.set(d, m)
            case "memory_bytes": memoryBytes.set(d.map(UInt64.init), m.map(UInt64.init))
            case "pids": pids.set(d, m)
            case "cpu_millicores": cpuMillicores.set(d, m)
            case "output_bytes": outputBytes.set(d, m)
            case "file_bytes": fileBytes.set(d.map(UInt64.init), m.map(UInt64.init))
            default: tmpBytes.set(d.map(UInt64.init), m.map(UInt64.init))
            }
        }
    }

    func validate(file: String) throws(ConfigurationError) {
        func check<T>(_ name: String, _ limit: Limit<T>) throws(ConfigurationError) {
            if limit.defaultValue > limit.maximum {
                throw ConfigurationError(
                    file: file, field: "limits.\(name)",
                    reason: "default \(limit.defaultValue) is above the maximum \(limit.maximum)")
            }
        }
        try check("timeout_ms", timeoutMs)
        try check("memory_bytes", memoryBytes)
        try check("pids", pids)
        try check("cpu_millicores", cpuMillicores)
        try check("output_bytes", outputBytes)
        try check("file_bytes", fileBytes)
        try check("tmp_bytes", tmpBytes)
    }
}

extension ExecLimitsConfiguration.Limit {
    mutating func set(_ d: T?, _ m: T?) {
        if let d { defaultValue = d }
        if let m { maximum = m }
    }
}
