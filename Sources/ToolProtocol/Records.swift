/// Wire types of the records methods: `executions.list`, `executions.get` and `metrics.get`, with the field
/// names of `protocol/PROTOCOL.md`. Times travel as RFC 3339 strings in UTC with millisecond precision
/// (`2026-11-21T09:30:00.125Z`); `Timestamp` formats and parses them.

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

extension RPCMethod {
    public static let executionsList = "executions.list"
    public static let executionsGet = "executions.get"
    public static let metricsGet = "metrics.get"
}

// MARK: Timestamp

/// A point in time with millisecond precision. On the wire it is an RFC 3339 string; it always prints in UTC
/// with exactly three fraction digits, so equal times are equal strings and strings sort as times do.
/// Parsing accepts any RFC 3339 `date-time` (offset `Z` or `±hh:mm`, any number of fraction digits, which are
/// cut to milliseconds); a malformed string fails decoding with a message saying what is expected.
public struct Timestamp: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    public var millisecondsSince1970: Int64

    public init(millisecondsSince1970: Int64) { self.millisecondsSince1970 = millisecondsSince1970 }

    /// The current time of the system clock.
    public static func now() -> Timestamp {
        Timestamp(millisecondsSince1970: Int64((Date().timeIntervalSince1970 * 1000).rounded(.down)))
    }

    public func adding(milliseconds: Int64) -> Timestamp {
        Timestamp(millisecondsSince1970: millisecondsSince1970 + milliseconds)
    }

    public static func < (lhs: Timestamp, rhs: Timestamp) -> Bool {
        lhs.millisecondsSince1970 < rhs.millisecondsSince1970
    }

    /// `YYYY-MM-DDTHH:MM:SS.mmmZ`.
    public var rfc3339: String {
        let ms = millisecondsSince1970
        let days = Self.floorDiv(ms, 86_400_000)
        let msOfDay = ms - days * 86_400_000
        let (year, month, day) = Self.civil(fromDays: days)
        func pad(_ value: Int64, _ width: Int) -> String {
            let digits = String(value)
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        return "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))T\(pad(msOfDay / 3_600_000, 2)):"
            + "\(pad(msOfDay / 60_000 % 60, 2)):\(pad(msOfDay / 1000 % 60, 2)).\(pad(msOfDay % 1000, 3))Z"
    }

    public var description: String { rfc3339 }

    /// Parses an RFC 3339 `date-time`; nil when `text` is not one (or names a day that does not exist).
    public init?(rfc3339 text: String) {
        let b = Array(text.utf8)
        var i = 0
        func number(_ width: Int) -> Int64? {
            guard i + width <= b.count else { return nil }
            var value: Int64 = 0
            for byte in b[i..<(i + width)] {
                guard byte >= 0x30, byte <= 0x39 else { return nil }
                value = value * 10 + Int64(byte - 0x30)
            }
            i += width
            return value
        }
        func expect(_ chars: String) -> Bool {
            guard i < b.count, chars.utf8.contains(b[i]) else { return false }
            i += 1
            return true
        }
        guard let year = number(4), expect("-"), let month = number(2), expect("-"), let day = number(2),
            expect("Tt "), let hour = number(2), expect(":"), let minute = number(2), expect(":"),
            let second = number(2)
        else { return nil }
        var millis: Int64 = 0
        if i < b.count, b[i] == UInt8(ascii: ".") {
            i += 1
            var digits = 0
            while i < b.count, b[i] >= 0x30, b[i] <= 0x39 {
                if digits < 3 { millis = millis * 10 + Int64(b[i] - 0x30) }
                digits += 1
                i += 1
            }
            guard digits > 0 else { return nil }
            for _ in digits..<max(digits, 3) { millis *= 10 }
        }
        var offsetMinutes: Int64 = 0
        if !expect("Zz") {
            guard i < b.count, b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") else { return nil }
            let sign: Int64 = b[i] == UInt8(ascii: "-") ? -1 : 1
            i += 1
            guard let oh = number(2), expect(":"), let om = number(2), oh < 24, om < 60 else { return nil }
            offsetMinutes = sign * (oh * 60 + om)
        }
        // Leap seconds (:60) are accepted by RFC 3339 but have no place on this clock: refused.
        guard i == b.count, (1...12).contains(month), day >= 1, day <= Self.daysIn(month: month, year: year),
            hour < 24, minute < 60, second < 60
        else { return nil }
        let days = Self.days(fromCivil: year, month, day)
        let local = ((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000 + millis
        millisecondsSince1970 = local - offsetMinutes * 60_000
    }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let parsed = Timestamp(rfc3339: text) else {
            throw DecodingError.dataCorrupted(
                DecodingError.Context(
                    codingPath: decoder.codingPath,
                    debugDescription: "expected an RFC 3339 time such as 2026-11-21T09:30:00.000Z, got \"\(text)\""))
        }
        self = parsed
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rfc3339)
    }

    // Civil-calendar conversions (proleptic Gregorian), after Howard Hinnant's days_from_civil/civil_from_days.
    static func floorDiv(_ a: Int64, _ b: Int64) -> Int64 { a >= 0 ? a / b : (a - b + 1) / b }

    static func days(fromCivil year: Int64, _ month: Int64, _ day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = floorDiv(y, 400)
        let yoe = y - era * 400
        let doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    static func civil(fromDays z0: Int64) -> (Int64, Int64, Int64) {
        let z = z0 + 719_468
        let era = floorDiv(z, 146_097)
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    static func daysIn(month: Int64, year: Int64) -> Int64 {
        switch month {
        case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }
}

// MARK: statuses

/// The method that made an execution.
public enum ExecutionMethod: String, Sendable, Codable, CaseIterable {
    case exec
    case toolsCall = "tools.call"
}

/// Where an execution stands in the history: how it ended (`tools.call`'s statuses), still `running`,
/// `interrupted` (the daemon stopped while it ran), or refused before running (`denied`, `rate_limited`,
/// `overloaded`, `approval_denied`, `invalid_params`).
public enum ExecutionStatus: String, Sendable, Codable, CaseIterable {
    case exited, signaled, timeout, oom
    case outputLimit = "output_limit"
    case cancelled
    case failedToStart = "failed_to_start"
    case invalidOutput = "invalid_output"
    case running
    case interrupted
    case denied
    case rateLimited = "rate_limited"
    case overloaded
    case approvalDenied = "approval_denied"
    case invalidParams = "invalid_params"

    /// Refused before anything ran.
    public var isRefusal: Bool {
        switch self {
        case .denied, .rateLimited, .overloaded, .approvalDenied, .invalidParams: return true
        default: return false
        }
    }

    /// The outcome of something that ran (or started to): every status but `running` and the refusals.
    public var isOutcome: Bool { self != .running && !isRefusal }

    public init(_ status: ExecStatus) { self = ExecutionStatus(rawValue: status.rawValue) ?? .failedToStart }
    public init(_ status: ToolCallStatus) { self = ExecutionStatus(rawValue: status.rawValue) ?? .failedToStart }
}

// MARK: executions.list

/// `executions.list` params. Every filter is optional; `user` is for admins (others may only name
/// themselves). `since` is inclusive and `until` exclusive, both on the start time.
public struct ExecutionsListParams: Sendable, Equatable, Codable, ClosedWireType {
    public static let defaultLimit = 50
    public static let maximumLimit = 1000

    public var tool: String?
    public var status: ExecutionStatus?
    public var since: Timestamp?
    public var until: Timestamp?
    public var user: String?
    /// 1 … 1000, default 50.
    public var limit: Int?
    /// `next_cursor` of the previous page.
    public var cursor: String?

    public init(
        tool: String? = nil, status: ExecutionStatus? = nil, since: Timestamp? = nil, until: Timestamp? = nil,
        user: String? = nil, limit: Int? = nil, cursor: String? = nil
    ) {
        self.tool = tool
        self.status = status
        self.since = since
        self.until = until
        self.user = user
        self.limit = limit
        self.cursor = cursor
    }

    enum CodingKeys: String, CodingKey, CaseIterable { case tool, status, since, until, user, limit, cursor }
    public static var knownFields: [String] { CodingKeys.allCases.map(\.stringValue) }
}

/// One line of the history: who ran what, when, and how it ended.
public struct ExecutionSummary: Sendable, Equatable, Codable {
    public var executionId: String
    public var startedAt: Timestamp
    /// Absent while `running`.
    public var finishedAt: Timestamp?
    public var method: ExecutionMethod
    /// The tool; `exec` for the `exec` method.
    public var tool: String
    public var user: String
    public var uid: UInt32
    public var status: ExecutionStatus
    public var exitCode: Int32?
    public var durationMs: Int?
    public var queuedMs: Int?
    /// Answered from the result cache.
    public var cached: Bool

    public init(
        executionId: String, startedAt: Timestamp, finishedAt: Timestamp?, method: ExecutionMethod, tool: String,
        user: String, uid: UInt32, status: ExecutionStatus, exitCode: Int32?, durationMs: Int?, queuedMs: Int?,
        cached: Bool
    ) {
        self.executionId = executionId
        self.startedAt = startedAt
        self.finishedAt = finishedAt
        self.method = method
        self.tool = tool
        self.user = user
        self.uid = uid
        self.status = status
        self.exitCode = exitCode
        self.durationMs = durationMs
        self.queuedMs = queuedMs
        self.cached = cached
    }

    enum CodingKeys: String, CodingKey {
        case method, tool, user, uid, status, cached
        case executionId = "execution_id"
        case startedAt = "started_at"
        case finishedAt = "finished_at"
        case exitCode = "exit_code"
        case durationMs = "duration_ms"
        case queuedMs = "queued_ms"
    }
}

/// `executions.list` result: newest first. `next_cursor` is present when more rows follow.
public struct ExecutionsListResult: Sendable, Equatable, Codable {
    public var executions: [ExecutionSummary]
    public var nextCursor: String?

    public init(executions: [ExecutionSummary], nextCursor: String?) {
        self.executions = executions
        self.nextCursor = nextCursor
    }

    enum CodingKeys: String, CodingKey {
        case executions
        case nextCursor = "next_cursor"
    }
}

// MARK: executions.get

/// `executions.get` params: the execution to show in full.
public struct ExecutionsGetParams: Sendable, Equatable, Codable, ClosedWireType {
    public var executionId: String
    public init(executionId: String) { self.executionId = executionId }
    enum CodingKeys: String, CodingKey, CaseIterable { case executionId = "execution_id" }
    public static var knownFields: [String] { CodingKeys.allCases.map(\.stringValue) }
}

/// The JSON-RPC error a call was refused with (for the statuses that are refusals).
public struct RecordedError: Sendable, Equatable, Codable {
    public var code: Int
    public var message: String
    public init(code: Int, message: String) {
        self.code = code
        self.message = message
    }
}

/// One execution in full, as recorded. Output text is present only when output storage was on and the
/// history has not been pruned; it is what was stored (redacted, cut to the configured size, which the
/// `*_stored_truncated` flags say), while `*_bytes`, `*_sha256` and `*_truncated` describe the whole stream as
/// the execution produced it.
public struct ExecutionRecord: Sendable, Equatable, Codable {
    public var executionId: String
    /// The JSON-RPC id of the request (string, number or null).
    public var requestId: JSONValue?
    public var startedAt: Timestamp
    public var finishedAt: Timestamp?
    public var method: ExecutionMethod
    public var tool: String
    public var user: String
    public var uid: UInt32
    public var gid: UInt32
    public var pid: Int32
    public var status: ExecutionStatus
    /// The arguments, redacted before they were recorded (for `exec`: argv, env, cwd…).
    public var arguments: JSONValue
    /// Policy's decision (`allow`, `approval`, `deny`) and the rule behind it.
    public var decision: String?
    public var rule: String?
    public var exitCode: Int32?
    public var signal: Int32?
    public var durationMs: Int?
    public var queuedMs: Int?
    public var cpuMs: Int?
    public var memoryPeakBytes: UInt64?
    public var stdout: String?
    public var stdoutEncoding: OutputEncoding?
    public var stdoutStoredTruncated: Bool?
    public var stderr: String?
    public var stderrEncoding: OutputEncoding?
    public var stderrStoredTruncated: Bool?
    public var stdoutBytes: Int?
    public var stderrBytes: Int?
    public var stdoutSha256: String?
    public var stderrSha256: String?
    public var stdoutTruncated: Bool?
    public var stderrTruncated: Bool?
    public var violations: [String]
    public var attempts: Int
    public var cached: Bool
    /// Why the command failed to start, or why the execution was interrupted.
    public var failure: String?
    /// For refusals: the error the caller got.
    public var error: RecordedError?

    public init(
        executionId: String, requestId: JSONValue?, startedAt: Timestamp, finishedAt: Timestamp?,
        method: ExecutionMethod, tool: String, user: String, uid: UInt32, gid: UInt32, pid: Int32,
        status: ExecutionStatus, arguments: JSONValue, decision: String? = nil, rule: String? = nil,
        exitCode: Int32? = nil, signal: Int32? = nil, durationMs: Int? = nil, queuedMs: Int? = nil,
        cpuMs: Int? = nil, memoryPeakBytes: UInt64? = nil, stdout: String? = nil,
        stdoutEncoding: OutputEncoding? = nil, stdoutStoredTruncated: Bool? = nil, stderr: String? = nil,
        stderrEncoding: OutputEncoding? = nil, stderrStoredTruncated: Bool? = nil, stdoutBytes: Int? = nil,
        stderrBytes: Int? = nil, stdoutSha256: String? = nil, stderrSha256: String? = nil,
        stdoutTruncated: Bool? = nil, stderrTruncated: Bool? = nil, violations: [String] = [], attempts: Int = 1,
        cached: Bool = false, failure: String? = nil, error: RecordedError? = nil
    ) {
        self.executionId = executionId
        self.requestId = requestId
        self.startedAt = startedAt
        self.finishedAt = finishedAt
        self.method = method
        self.tool = tool
        self.user = user
        self.uid = uid
        self.gid = gid
        self.pid = pid
        self.status = status
        self.arguments = arguments
        self.decision = decision
        self.rule = rule
        self.exitCode = exitCode
        self.signal = signal
        self.durationMs = durationMs
        self.queuedMs = queuedMs
        self.cpuMs = cpuMs
        self.memoryPeakBytes = memoryPeakBytes
        self.stdout = stdout
        self.stdoutEncoding = stdoutEncoding
        self.stdoutStoredTruncated = stdoutStoredTruncated
        self.stderr = stderr
        self.stderrEncoding = stderrEncoding
        self.stderrStoredTruncated = stderrStoredTruncated
        self.stdoutBytes = stdoutBytes
        self.stderrBytes = stderrBytes
        self.stdoutSha256 = stdoutSha256
        self.stderrSha256 = stderrSha256
        self.stdoutTruncated = stdoutTruncated
        self.stderrTruncated = stderrTruncated
        self.violations = violations
        self.attempts = attempts
        self.cached = cached
        self.failure = failure
        self.error = error
    }

    /// The history line of this record.
    public var summary: ExecutionSummary {
        ExecutionSummary(
            executionId: executionId, startedAt: startedAt, finishedAt: finishedAt, method: method, tool: tool,
            user: user, uid: uid, status: status, exitCode: exitCode, durationMs: durationMs, queuedMs: queuedMs,
            cached: cached)
    }

    enum CodingKeys: String, CodingKey {
        case method, tool, user, uid, gid, pid, status, arguments, decision, rule, signal, stdout, stderr
        case violations, attempts, cached, failure, error
        case executionId = "execution_id"
        case requestId = "request_id"
        case startedAt = "started_at"
        case finishedAt = "finished_at"
        case exitCode = "exit_code"
        case durationMs = "duration_ms"
        case queuedMs = "queued_ms"
        case cpuMs = "cpu_ms"
        case memoryPeakBytes = "memory_peak_bytes"
        case stdoutEncoding = "stdout_encoding"
        case stdoutStoredTruncated = "stdout_stored_truncated"
        case stderrEncoding = "stderr_encoding"
        case stderrStoredTruncated = "stderr_stored_truncated"
        case stdoutBytes = "stdout_bytes"
        case stderrBytes = "stderr_bytes"
        case stdoutSha256 = "stdout_sha256"
        case stderrSha256 = "stderr_sha256"
        case stdoutTruncated = "stdout_truncated"
        case stderrTruncated = "stderr_truncated"
    }
}

// MARK: metrics.get

/// `metrics.get` params. The period is `[since, until)` on start times: `until` defaults to now, `since` to
/// 24 hours before `until`. `user` is for admins (others may only name themselves).
public struct MetricsGetParams: Sendable, Equatable, Codable, ClosedWireType {
    public var tool: String?
    public var user: String?
    public var since: Timestamp?
    public var until: Timestamp?

    public init(tool: String? = nil, user: String? = nil, since: Timestamp? = nil, until: Timestamp? = nil) {
        self.tool = tool
        self.user = user
        self.since = since
        self.until = until
    }

    enum CodingKeys: String, CodingKey, CaseIterable { case tool, user, since, until }
    public static var knownFields: [String] { CodingKeys.allCases.map(\.stringValue) }
}

/// Exact percentiles (nearest rank: the smallest value with at least p % of the values at or below it) and
/// the mean of a set of durations, in milliseconds.
public struct DurationStats: Sendable, Equatable, Codable {
    public var p50: Int
    public var p95: Int
    public var p99: Int
    public var mean: Double
    public init(p50: Int, p95: Int, p99: Int, mean: Double) {
        self.p50 = p50
        self.p95 = p95
        self.p99 = p99
        self.mean = mean
    }
}

/// The figures of a set of calls in one period. `calls = succeeded + failed + refused`: `succeeded` exited 0
/// (cache hits of such results included), `failed` ran or tried to and did not (non-zero exit, signal,
/// timeout, oom, output limit, cancelled, failed to start, invalid output, interrupted), `refused` never ran
/// (denied — by policy or by an approver —, rate limited, overloaded, invalid params). `timeouts` and `oom` are
/// parts of `failed`; `denied` and `rate_limited` parts of `refused`. Rates are over `succeeded + failed`
/// (the calls that got a result); latency, CPU and memory over the executions that actually ran (cache hits
/// excluded). Absent figures had no data.
public struct ExecutionFigures: Sendable, Equatable, Codable {
    public var calls: Int
    public var succeeded: Int
    public var failed: Int
    public var refused: Int
    public var timeouts: Int
    public var oom: Int
    public var denied: Int
    public var rateLimited: Int
    public var cacheHits: Int
    /// `cache_hits / (succeeded + failed)`; 0 when no call got a result.
    public var cacheHitRate: Double
    /// `succeeded / (succeeded + failed)`.
    public var successRate: Double?
    public var durationMs: DurationStats?
    public var queuedMsP95: Int?
    public var cpuMsMean: Double?
    public var memoryBytesMean: Double?
    public var memoryBytesPeak: UInt64?

    public init(
        calls: Int = 0, succeeded: Int = 0, failed: Int = 0, refused: Int = 0, timeouts: Int = 0, oom: Int = 0,
        denied: Int = 0, rateLimited: Int = 0, cacheHits: Int = 0, cacheHitRate: Double = 0,
        successRate: Double? = nil, durationMs: DurationStats? = nil, queuedMsP95: Int? = nil,
        cpuMsMean: Double? = nil, memoryBytesMean: Double? = nil, memoryBytesPeak: UInt64? = nil
    ) {
        self.calls = calls
        self.succeeded = succeeded
        self.failed = failed
        self.refused = refused
        self.timeouts = timeouts
        self.oom = oom
        self.denied = denied
        self.rateLimited = rateLimited
        self.cacheHits = cacheHits
        self.cacheHitRate = cacheHitRate
        self.successRate = successRate
        self.durationMs = durationMs
        self.queuedMsP95 = queuedMsP95
        self.cpuMsMean = cpuMsMean
        self.memoryBytesMean = memoryBytesMean
        self.memoryBytesPeak = memoryBytesPeak
    }

    enum CodingKeys: String, CodingKey {
        case calls, succeeded, failed, refused, timeouts, oom, denied
        case rateLimited = "rate_limited"
        case cacheHits = "cache_hits"
        case cacheHitRate = "cache_hit_rate"
        case successRate = "success_rate"
        case durationMs = "duration_ms"
        case queuedMsP95 = "queued_ms_p95"
        case cpuMsMean = "cpu_ms_mean"
        case memoryBytesMean = "memory_bytes_mean"
        case memoryBytesPeak = "memory_bytes_peak"
    }
}

/// A figure of the previous period (same length, just before) and the relative change to the current one:
/// `(current − previous) / previous`, null when `previous` is 0 or the current period has no such figure.
public struct MetricChange: Sendable, Equatable, Codable {
    public var previous: Double
    public var relative: Double?
    public init(previous: Double, relative: Double?) {
        self.previous = previous
        self.relative = relative
    }

    enum CodingKeys: String, CodingKey { case previous, relative }

    public func encode(to encoder: any Encoder) throws {
        // `relative` is always present: null says "no meaningful ratio", which a reader must not confuse with 0.
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(previous, forKey: .previous)
        try c.encode(relative, forKey: .relative)
    }

    /// The change from `previous` to `current`; nil when there is no previous figure.
    public static func between(previous: Double?, current: Double?) -> MetricChange? {
        guard let previous else { return nil }
        guard let current, previous != 0 else { return MetricChange(previous: previous, relative: nil) }
        return MetricChange(previous: previous, relative: (current - previous) / previous)
    }
}

/// How a tool's figures moved against the previous period. Entries are null when the previous period had no
/// such figure (no call that got a result, no execution that ran).
public struct MetricsChange: Sendable, Equatable, Codable {
    public var calls: MetricChange
    public var successRate: MetricChange?
    public var durationMsP50: MetricChange?
    public var durationMsP95: MetricChange?

    public init(
        calls: MetricChange, successRate: MetricChange?, durationMsP50: MetricChange?, durationMsP95: MetricChange?
    ) {
        self.calls = calls
        self.successRate = successRate
        self.durationMsP50 = durationMsP50
        self.durationMsP95 = durationMsP95
    }

    enum CodingKeys: String, CodingKey {
        case calls
        case successRate = "success_rate"
        case durationMsP50 = "duration_ms_p50"
        case durationMsP95 = "duration_ms_p95"
    }

    public func encode(to encoder: any Encoder) throws {
        // Explicit nulls: "no previous figure" is information, not an omission.
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(calls, forKey: .calls)
        try c.encode(successRate, forKey: .successRate)
        try c.encode(durationMsP50, forKey: .durationMsP50)
        try c.encode(durationMsP95, forKey: .durationMsP95)
    }
}

/// Counters since the database was created, never pruned and never decreasing (Prometheus counters are
/// built from them): finished or refused calls by status, cache hits, and the sums behind the means.
public struct ExecutionTotals: Sendable, Equatable, Codable {
    /// Status → calls (every status but `running`).
    public var byStatus: [String: Int]
    public var cacheHits: Int
    /// Sum and count of `duration_ms` over executions that ran.
    public var durationMsSum: Int64
    public var durationCount: Int
    /// Sum and count of `queued_ms`.
    public var queuedMsSum: Int64
    public var queuedCount: Int

    public init(
        byStatus: [String: Int] = [:], cacheHits: Int = 0, durationMsSum: Int64 = 0, durationCount: Int = 0,
        queuedMsSum: Int64 = 0, queuedCount: Int = 0
    ) {
        self.byStatus = byStatus
        self.cacheHits = cacheHits
        self.durationMsSum = durationMsSum
        self.durationCount = durationCount
        self.queuedMsSum = queuedMsSum
        self.queuedCount = queuedCount
    }

    enum CodingKeys: String, CodingKey {
        case byStatus = "by_status"
        case cacheHits = "cache_hits"
        case durationMsSum = "duration_ms_sum"
        case durationCount = "duration_count"
        case queuedMsSum = "queued_ms_sum"
        case queuedCount = "queued_count"
    }
}

/// One tool's figures in the period (flattened into the object), the change against the previous period
/// (null when it had no calls), and its all-time totals.
public struct ToolMetrics: Sendable, Equatable, Codable {
    public var tool: String
    public var figures: ExecutionFigures
    public var change: MetricsChange?
    public var totals: ExecutionTotals

    public init(tool: String, figures: ExecutionFigures, change: MetricsChange?, totals: ExecutionTotals) {
        self.tool = tool
        self.figures = figures
        self.change = change
        self.totals = totals
    }

    enum CodingKeys: String, CodingKey { case tool, change, totals }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        tool = try c.decode(String.self, forKey: .tool)
        change = try c.decodeIfPresent(MetricsChange.self, forKey: .change)
        totals = try c.decode(ExecutionTotals.self, forKey: .totals)
        figures = try ExecutionFigures(from: decoder)
    }

    public func encode(to encoder: any Encoder) throws {
        try figures.encode(to: encoder)
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(tool, forKey: .tool)
        try c.encode(change, forKey: .change)
        try c.encode(totals, forKey: .totals)
    }
}

/// One user's figures in the period (flattened into the object); admins only.
public struct UserMetrics: Sendable, Equatable, Codable {
    public var user: String
    public var uid: UInt32
    public var figures: ExecutionFigures

    public init(user: String, uid: UInt32, figures: ExecutionFigures) {
        self.user = user
        self.uid = uid
        self.figures = figures
    }

    enum CodingKeys: String, CodingKey { case user, uid }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        user = try c.decode(String.self, forKey: .user)
        uid = try c.decode(UInt32.self, forKey: .uid)
        figures = try ExecutionFigures(from: decoder)
    }

    public func encode(to encoder: any Encoder) throws {
        try figures.encode(to: encoder)
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(user, forKey: .user)
        try c.encode(uid, forKey: .uid)
    }
}

/// `metrics.get` result: the period, one entry per tool with calls in it or in the previous period (sorted by
/// name), and for admins one entry per user (sorted by name). Non-admins' figures cover their own calls only.
public struct MetricsResult: Sendable, Equatable, Codable {
    public var since: Timestamp
    public var until: Timestamp
    public var tools: [ToolMetrics]
    public var users: [UserMetrics]?

    public init(since: Timestamp, until: Timestamp, tools: [ToolMetrics], users: [UserMetrics]?) {
        self.since = since
        self.until = until
        self.tools = tools
        self.users = users
    }
}
