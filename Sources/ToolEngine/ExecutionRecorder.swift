import Foundation
import Logging
import Synchronization
import ToolProtocol
import ToolRecords

/// Writes what happens to the record store (`<state_dir>/toold.db`) and the journal. What a failed write
/// does, by kind (README, "Records"):
/// - **Start of an execution**: committed before any sandbox runs. When it cannot be (full disk, damaged
///   database) the call is refused with `-32009 records unavailable` — nothing runs unrecorded.
/// - **End of an execution**: committed before the response is sent. When it cannot be, the result still
///   goes out (the work is done; withholding it helps nobody), and the record waits in memory (at most
///   1,000) and is retried before every later write, every second, and when the daemon stops, so it
///   lands as soon as space returns. Until then the history shows the execution `running` (and
///   `interrupted` if the daemon is killed, or stops while the disk is still full).
/// - **Refusals, cache hits and admin actions**: written when possible; a failure is logged.
/// With records off (`records.enabled: false`, the benchmark's baseline), only the journal gets events.
public final class ExecutionRecorder: Sendable {
    public let store: RecordStore?
    private let backlog = Mutex<[(id: String, outcome: ExecutionOutcome)]>([])
    private let logger: Logger
    static let backlogLimit = 1_000
    /// Refusals cost a row each and nothing else: a caller can send them as fast as it writes (20,000 in 12 s
    /// grew the database by 165 MB). Per uid, `refusalBurst` in a row and `refusalsPerSecond` after that are
    /// recorded; the rest are counted and said in the journal.
    static let refusalsPerSecond: UInt64 = 10
    static let refusalBurst: UInt64 = 100
    private let refusalBudgets = Mutex<[UInt32: RefusalBudget]>([:])
    private let clock: @Sendable () -> UInt64

    public init(store: RecordStore?, logger: Logger, clock: @escaping @Sendable () -> UInt64 = { DispatchTime.now().uptimeNanoseconds }) {
        self.store = store
        self.logger = logger
        self.clock = clock
    }

    /// Records an execution as running. Throws `recordsUnavailable` when the record cannot be written.
    public func started(_ start: ExecutionStart) throws(RPCError) {
        guard let store else { return }
        flushBacklog()
        do {
            try store.executionStarted(start)
        } catch {
            logger.error(
                "execution refused: its record cannot be written",
                metadata: ["toold.execution_id": "\(start.executionID)", "toold.error": "\(error)", "toold.event": "records"])
            throw .recordsUnavailable(error.description)
        }
    }

    /// Records how an execution ended; false when the record waits in memory for a later retry.
    @discardableResult
    public func finished(_ executionID: String, _ outcome: ExecutionOutcome) -> Bool {
        guard let store else { return true }
        do {
            try store.executionFinished(executionID, outcome)
            return true
        } catch {
            let kept = backlog.withLock { b -> Bool in
                guard b.count < Self.backlogLimit else { return false }
                b.append((executionID, outcome))
                return true
            }
            logger.error(
                kept ? "execution record kept in memory until it can be written" : "execution record lost: the backlog is full",
                metadata: ["toold.execution_id": "\(executionID)", "toold.error": "\(error)", "toold.event": "records"])
            return false
        }
    }

    /// Records a call refused before anything ran, or answered without running (cancelled while waiting).
    public func refused(_ start: ExecutionStart, error: RPCError) {
        let status: ExecutionStatus
        switch error.code {
        case RPCErrorCode.permissionDenied: status = .denied
        case RPCErrorCode.rateLimited: status = .rateLimited
        case RPCErrorCode.overloaded: status = .overloaded
        case RPCErrorCode.approvalDenied: status = .approvalDenied
        case RPCErrorCode.invalidParams, RPCErrorCode.notFound: status = .invalidParams
        case RPCErrorCode.cancelled:
            completed(start, ExecutionOutcome(status: .cancelled, finishedAt: .now(), durationMs: 0))
            return
        default: return  // internal errors, records unavailable, shutting down: nothing to add
        }
        // The journal gets every refusal (journald bounds its own rate); the history at most the budget.
        var fields: Logger.Metadata = [
            "toold.execution_id": "\(start.executionID)", "toold.tool": "\(start.tool)", "toold.uid": "\(start.caller.uid)",
            "toold.status": "\(status.rawValue)", "toold.method": "\(start.method.rawValue)",
        ]
        if let rule = error.data?["rule"]?.stringValue { fields["toold.rule"] = "\(rule)" }  // absent: not policy's refusal
        logger.notice("call refused", metadata: fields)
        guard let store else { return }
        let now = clock()
        let (admitted, dropped) = refusalBudgets.withLock { budgets in
            budgets[start.caller.uid, default: RefusalBudget(now: now)].take(now: now)
        }
        guard admitted else {
            if dropped == 1 {
                logger.notice(
                    "refused calls of this user are not written to the history for now: more than \(Self.refusalsPerSecond) per second",
                    metadata: ["toold.uid": "\(start.caller.uid)", "toold.event": "refusals_not_recorded"])
            }
            return
        }
        if dropped > 0 {
            logger.notice(
                "refused calls not written to the history: more than \(Self.refusalsPerSecond) per second",
                metadata: ["toold.uid": "\(start.caller.uid)", "toold.count": "\(dropped)", "toold.event": "refusals_not_recorded"])
        }
        flushBacklog()
        bestEffort("refused call", start.executionID) { () throws(RecordError) in
            try store.recordRefused(RefusedCall(start: start, status: status, error: RecordedError(code: error.code, message: error.message)))
        }
    }

    /// Records a call answered in one step (a cache hit, a cancel before start).
    public func completed(_ start: ExecutionStart, _ outcome: ExecutionOutcome) {
        guard let store else { return }
        flushBacklog()
        bestEffort("completed call", start.executionID) { () throws(RecordError) in try store.recordCompleted(start, outcome) }
    }

    /// Records an administrative action in the audit (and the journal).
    public func admin(_ action: AdminAction) {
        logger.notice(
            "admin action",
            metadata: [
                "toold.action": "\(action.action)", "toold.uid": "\(action.caller.uid)", "toold.tool": "\(action.tool ?? "")",
                "toold.execution_id": "\(action.executionID ?? "")", "toold.event": "audit",
            ])
        guard let store else { return }
        flushBacklog()
        bestEffort("admin action", action.executionID ?? "-") { () throws(RecordError) in try store.audit(action) }
    }

    /// Writes the kept end records now if possible (a timer calls it while any wait, and the daemon on
    /// stop); returns how many still wait.
    @discardableResult
    public func flush() -> Int {
        flushBacklog()
        return backlogCount
    }

    /// Retries finish records that could not be written; stops at the first failure.
    private func flushBacklog() {
        guard let store else { return }
        while let next = backlog.withLock({ $0.first }) {
            do {
                try store.executionFinished(next.id, next.outcome)
            } catch {
                return
            }
            backlog.withLock { b in
                if b.first?.id == next.id { b.removeFirst() }
            }
            logger.notice("kept execution record written", metadata: ["toold.execution_id": "\(next.id)", "toold.event": "records"])
        }
    }

    public var backlogCount: Int { backlog.withLock { $0.count } }

    private func bestEffort(_ what: String, _ id: String, _ body: () throws(RecordError) -> Void) {
        do {
            try body()
        } catch {
            logger.error(
                "\(what) not recorded", metadata: ["toold.execution_id": "\(id)", "toold.error": "\(error)", "toold.event": "records"])
        }
    }
}

extension ExecutionOutcome {
    /// The record of a finished execution: the result's figures, the (redacted) output bytes as the
    /// caller got them, with their size and SHA-256.
    public init(_ result: ExecResult, status: ExecutionStatus, attempts: Int, finishedAt: Timestamp = .now()) {
        func captured(_ stream: OutputStreamName, truncated: Bool) -> CapturedOutput {
            let bytes = result.bytes(of: stream)
            return CapturedOutput(bytes: bytes, sizeBytes: bytes.count, sha256: SHA256.hex(bytes), truncated: truncated)
        }
        self.init(
            status: status, finishedAt: finishedAt, exitCode: result.exitCode, signal: result.signal,
            durationMs: result.durationMs, queuedMs: result.queuedMs, cpuMs: result.cpuMs,
            memoryPeakBytes: result.memoryPeakBytes,
            stdout: captured(.stdout, truncated: result.stdoutTruncated),
            stderr: captured(.stderr, truncated: result.stderrTruncated), violations: result.violations,
            attempts: attempts, cached: false, failure: result.failure?.message)
    }
}

/// A token bucket of refusal records for one uid (`ExecutionRecorder.refusalsPerSecond`, `refusalBurst`), with
/// the count of refusals it turned away since the last one it let through.
struct RefusalBudget {
    private var tokens: UInt64
    private var lastNs: UInt64
    private var dropped = 0

    init(now: UInt64) {
        tokens = ExecutionRecorder.refusalBurst
        lastNs = now
    }

    /// Whether a refusal at `now` is recorded; when it is, how many were not since the last one that was, and
    /// when it is not, how many (this one included) were not in a row.
    mutating func take(now: UInt64) -> (admitted: Bool, dropped: Int) {
        let perToken = 1_000_000_000 / ExecutionRecorder.refusalsPerSecond
        let earned = now > lastNs ? (now - lastNs) / perToken : 0
        if earned > 0 {
            tokens = min(ExecutionRecorder.refusalBurst, tokens + earned)
            lastNs += earned * perToken
        }
        if tokens == ExecutionRecorder.refusalBurst { lastNs = max(lastNs, now) }
        guard tokens > 0 else {
            dropped += 1
            return (false, dropped)
        }
        tokens -= 1
        defer { dropped = 0 }
        return (true, dropped)
    }
}
