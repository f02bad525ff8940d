import Foundation
import JSONSchema
import Synchronization
import ToolProtocol

/// Threads for work that may block or run long, kept off NIO's event loops (which must never block) and
/// off Swift's cooperative pool (only as wide as the machine has cores, so one stuck call per core would
/// stall every request of every client). At most `width` threads run jobs; threads start when work
/// arrives and end when none waits. Jobs beyond `width` wait their turn: in order for one owner (the user a
/// request runs for, `owner`), round-robin across owners, so one caller's flood of work (many large
/// outputs, many texts that make a pattern run out of time) delays another caller's by at most the jobs
/// already running.
/// - `lookups`: NSS lookups (`getpwuid_r`, `getgrgid_r`, …), which wait on whatever the host's nsswitch
///   names — LDAP, sssd, a directory that is down. Each connection queues at most one, plus its admin's
///   `policy.get` lookups.
/// - `matching`: pattern matching over a text a caller controls — redacting an output or arguments
///   (`Redactor`), validating arguments or a tool's output against its schema, deny patterns: linear in
///   the text's length, and up to the call's matching budget (`RegexBudget`) on crafted text — seconds,
///   for the biggest. Large texts go there at once, small ones when a quick inline attempt cannot
///   decide (`matchingBounded`).
public final class BlockingThreads: Sendable {
    /// The daemon's NSS lookup threads.
    public static let lookups = BlockingThreads(width: 16, name: "toold-lookup")
    /// The daemon's matching threads (CPU-bound work: about one per core).
    public static let matching = BlockingThreads(
        width: max(2, ProcessInfo.processInfo.activeProcessorCount), name: "toold-match")

    /// Texts below this many bytes are first matched inline, on the calling task, within
    /// `inlineBudgetNs`; larger ones on `matching`.
    public static let inlineMatchingBytes = 4 << 10

    /// The matching budget of an inline attempt, flat (no allowance per character), shared by all of the
    /// attempt's matching: far more than linear patterns spend on a small text (a few hundred
    /// microseconds for 4 KiB and the shipped redaction rules), far less than the quarter second a runaway
    /// one would hold a cooperative thread for with the full budget.
    public static let inlineBudgetNs: Int64 = 5_000_000

    /// A fresh inline attempt's budget (`inlineBudgetNs`, flat).
    public static func inlineBudget() -> RegexBudget { RegexBudget(ns: inlineBudgetNs, perUnitNs: 0) }

    /// Matching work over `bytes` bytes of a caller's text that never holds a cooperative thread for
    /// long. A small text is tried inline first: `quick` runs with one `inlineBudget()` for all of its
    /// matching and returns its answer, or nil when a pattern gave up within that budget (it cannot say).
    /// Then, and for a large text at once, `full` runs on `matching` with the full budget. Both must
    /// compute the same answer when neither gives up, and change nothing else (both may run).
    public static func matchingBounded<T: Sendable>(
        bytes: Int, quick: () -> T?, full: @escaping @Sendable () -> T
    ) async -> T {
        if bytes < inlineMatchingBytes, let answer = quick() { return answer }
        return await matching.run(full)
    }

    /// Whose work a job submitted from this task is: the uid of the caller a request runs for (the
    /// dispatcher sets it per request; tasks it starts inherit it), nil for the daemon's own work (a
    /// policy reload). Naming a new connection's caller passes its uid to `submit` itself.
    @TaskLocal public static var owner: UInt32?

    public let width: Int
    public let name: String
    private let state = Mutex(State())

    private struct State {
        var threads = 0
        /// Waiting jobs per owner, in order. Short each (a few per execution): `removeFirst` is cheap enough.
        var queues: [UInt32?: [@Sendable () -> Void]] = [:]
        /// The owners with waiting jobs, in the order they are served next.
        var turns: [UInt32?] = []

        mutating func append(_ job: @escaping @Sendable () -> Void, owner: UInt32?) {
            if queues[owner, default: []].isEmpty { turns.append(owner) }
            queues[owner, default: []].append(job)
        }

        /// The next owner's first job; that owner goes to the back of the turns when it has more.
        mutating func next() -> (@Sendable () -> Void)? {
            guard !turns.isEmpty else { return nil }
            let owner = turns.removeFirst()
            var jobs = queues.removeValue(forKey: owner) ?? []
            guard !jobs.isEmpty else { return next() }
            let job = jobs.removeFirst()
            if !jobs.isEmpty {
                queues[owner] = jobs
                turns.append(owner)
            }
            return job
        }
    }

    public init(width: Int, name: String) {
        precondition(width > 0)
        self.width = width
        self.name = name
    }

    /// Runs `body` on one of these threads, in `owner`'s turn; calls `completion` with its result on that
    /// thread.
    public func submit<T: Sendable>(
        owner: UInt32? = BlockingThreads.owner, _ body: @escaping @Sendable () -> T,
        completion: @escaping @Sendable (T) -> Void
    ) {
        let startThread = state.withLock { s -> Bool in
            s.append({ completion(body()) }, owner: owner)
            guard s.threads < width else { return false }
            s.threads += 1
            return true
        }
        if startThread {
            let thread = Thread { [self] in
                Self.nameKernelThread(name)
                drain()
            }
            thread.name = name
            thread.start()
        }
    }

    /// Gives the calling thread `name` (up to 15 bytes) in the kernel too — what ps, top, perf and /proc
    /// show: Foundation's `Thread.name` did not reach it here, and the thread showed its creator's name
    /// (a cooperative pool thread's, `oot.default-qos`).
    private static func nameKernelThread(_ name: String) {
        let fd = open("/proc/thread-self/comm", O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { return }
        let bytes = Array(name.utf8.prefix(15))
        _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
    }

    /// Runs `body` on one of these threads, in the turn of this task's `owner`, and waits for it without
    /// holding a cooperative thread.
    public func run<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        let owner = Self.owner
        return await withCheckedContinuation { continuation in
            submit(owner: owner, body) { continuation.resume(returning: $0) }
        }
    }

    private func drain() {
        while let job = state.withLock({ s -> (@Sendable () -> Void)? in
            guard let job = s.next() else {
                s.threads -= 1
                return nil
            }
            return job
        }) {
            job()
        }
    }
}

extension JSONValue {
    /// The bytes of every string and member name inside: what pattern matching over the value reads.
    var textBytes: Int {
        switch self {
        case .string(let s): return s.utf8.count
        case .array(let items): return items.reduce(0) { $0 + $1.textBytes }
        case .object(let o): return o.reduce(0) { $0 + $1.key.utf8.count + $1.value.textBytes }
        default: return 0
        }
    }
}
