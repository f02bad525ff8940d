import CSystemd
import Foundation
import Logging

/// The daemon's side of systemd's service protocol: sd_notify messages, the watchdog and socket activation.
/// Every call is silent when the daemon was not started by systemd (no `NOTIFY_SOCKET`, no passed fds).
public enum Systemd {
    /// Sends one notification (`READY=1`, `STATUS=…`). Returns false when it could not be delivered.
    @discardableResult
    public static func notify(_ state: String) -> Bool {
        sd_notify(0, state) >= 0
    }

    /// The watchdog interval systemd asked for, if any (`WATCHDOG_USEC` for this pid).
    public static func watchdogInterval() -> Duration? {
        var usec: UInt64 = 0
        guard sd_watchdog_enabled(0, &usec) > 0, usec > 0 else { return nil }
        return .microseconds(Int64(usec))
    }

    /// The listening socket passed by socket activation, if exactly one was passed.
    /// Unsets `LISTEN_FDS`/`LISTEN_PID` so no child could see them.
    public static func activatedSocket() throws -> CInt? {
        let n = sd_listen_fds(1)
        if n < 0 { throw DaemonError.system("sd_listen_fds", -n) }
        if n == 0 { return nil }
        if n > 1 { throw DaemonError.startup("socket activation passed \(n) sockets; toold.socket must define exactly one") }
        let fd = SD_LISTEN_FDS_START
        guard sd_is_socket_unix(fd, Int32(SOCK_STREAM.rawValue), 1, nil, 0) > 0 else {
            throw DaemonError.startup("the socket passed by systemd (fd \(fd)) is not a listening Unix stream socket")
        }
        return fd
    }

    /// True when stderr is the journal's stream (`JOURNAL_STREAM=dev:ino` matches fd 2).
    public static var stderrIsJournal: Bool {
        guard let value = ProcessInfo.processInfo.environment["JOURNAL_STREAM"] else { return false }
        let parts = value.split(separator: ":").compactMap { UInt64($0) }
        var st = stat()
        guard parts.count == 2, fstat(2, &st) == 0 else { return false }
        return UInt64(st.st_dev) == parts[0] && UInt64(st.st_ino) == parts[1]
    }
}

/// Writes log events to the systemd journal with structured fields: the message, its priority, and every
/// metadata key as an upper-case field (`toold.execution_id` → `TOOLD_EXECUTION_ID=`), so operators can filter
/// with `journalctl -u toold TOOLD_EXECUTION_ID=…`.
public struct JournalLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    public var logLevel: Logger.Level
    let label: String

    public init(label: String, level: Logger.Level) {
        self.label = label
        self.logLevel = level
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var fields: [String] = [
            "MESSAGE=\(event.message)",
            "PRIORITY=\(Self.priority(event.level))",
            "SYSLOG_IDENTIFIER=toold",
            "TOOLD_LOGGER=\(label)",
        ]
        var all = metadata
        if let provided = metadataProvider?.get() { all.merge(provided) { _, new in new } }
        if let extra = event.metadata { all.merge(extra) { _, new in new } }
        for (key, value) in all {
            fields.append("\(Self.fieldName(key))=\(value)")
        }
        if let error = event.error { fields.append("TOOLD_ERROR=\(error)") }
        Self.send(fields)
    }

    static func send(_ fields: [String]) {
        let cStrings = fields.map { strdup($0) }
        defer { cStrings.forEach { free($0) } }
        var iovecs = cStrings.map { iovec(iov_base: UnsafeMutableRawPointer($0), iov_len: strlen($0!)) }
        _ = sd_journal_sendv(&iovecs, Int32(iovecs.count))
    }

    /// Journal field names: upper-case letters, digits and underscores, not starting with an underscore.
    static func fieldName(_ key: String) -> String {
        var name = String(key.uppercased().map { $0.isLetter || $0.isNumber ? $0 : "_" })
        if !name.hasPrefix("TOOLD_") { name = "TOOLD_" + name }
        return name
    }

    static func priority(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: return 7
        case .info: return 6
        case .notice: return 5
        case .warning: return 4
        case .error: return 3
        case .critical: return 2
        }
    }
}

/// Failures of the daemon itself (not of a request).
public enum DaemonError: Error, CustomStringConvertible, Sendable {
    case startup(String)
    case system(String, Int32)

    public var description: String {
        switch self {
        case .startup(let why): return why
        case .system(let call, let err): return "\(call): \(String(cString: strerror(err)))"
        }
    }
}
