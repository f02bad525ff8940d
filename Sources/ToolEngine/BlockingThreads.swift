import Foundation
import JSONSchema
import Synchronization
import ToolProtocol

/// Threads for work that may block or run long, kept off NIO's event loops (which must never block) and
/// off Swift's cooperative pool (only as wide as the machine has cores, so one stuck call per core would
/// stall every request of every client). At most `width` threads run jobs; threads start when work
/// arrives and end when none waits, and jobs beyond `width` wait their turn in order.
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

    public let width: Int
    public let name: String
    private let state = Mutex(State())

    private struct State {
        var threads = 0
        /// Short (at most one per connection or execution): `removeFirst` is cheap enough.
        var queue: [@Sendable () -> Void] = []
    }

    public init(width: Int, name: String) {
        precondition(width > 0)
        self.width = width
        self.name = name
    }

    /// Runs `body` on one of these threads; calls `completion` with its result on that thread.
    public func submit<T: Sendable>(_ body: @escaping @Sendable () -> T, completion: @escaping @Sendable (T) -> Void) {
        let startThread = state.withLock { s -> Bool in
            s.queue.append { completion(body()) }
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
    /// show; Foundation's `Thread.name` stays its own, and the thread would show its creator's name.
    private static func nameKernelThread(_ name: String) {
        let fd = open("/proc/thread-self/comm", O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { return }
        let bytes = Array(name.utf8.prefix(15))
        _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
    }

    /// Runs `body` on one of these threads and waits for it without holding a cooperative thread.
    public func run<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            submit(body) { continuation.resume(returning: $0) }
        }
    }

    private func drain() {
        while let job = state.withLock({ s -> (@Sendable () -> Void)? in
            guard !s.queue.isEmpty else {
                s.threads -= 1
                return nil
            }
            return s.queue.removeFirst()
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
