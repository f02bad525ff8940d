import Foundation
import Synchronization
import ToolProtocol

/// Threads for work that may block or run long, kept off NIO's event loops (which must never block) and
/// off Swift's cooperative pool (only as wide as the machine has cores, so one stuck call per core would
/// stall every request of every client). At most `width` threads run jobs; threads start when work
/// arrives and end when none waits, and jobs beyond `width` wait their turn in order.
/// - `lookups`: NSS lookups (`getpwuid_r`, `getgrgid_r`, …), which wait on whatever the host's nsswitch
///   names — LDAP, sssd, a directory that is down. Each connection queues at most one, plus its admin's
///   `policy.get` lookups.
/// - `matching`: pattern matching over a large text a caller controls — redacting an output or arguments
///   (`Redactor`), validating arguments or a tool's output against its schema, deny patterns: linear in
///   the text's length, and up to the call's matching budget (`RegexBudget`) on crafted text — seconds,
///   for the biggest.
public final class BlockingThreads: Sendable {
    /// The daemon's NSS lookup threads.
    public static let lookups = BlockingThreads(width: 16, name: "toold-lookup")
    /// The daemon's matching threads (CPU-bound work: about one per core).
    public static let matching = BlockingThreads(
        width: max(2, ProcessInfo.processInfo.activeProcessorCount), name: "toold-match")

    /// Texts below this many bytes are matched inline, on the calling task (well under a millisecond with
    /// linear patterns; up to the budget's base, a quarter second, with a runaway one); larger ones on
    /// `matching`.
    public static let inlineMatchingBytes = 4 << 10

    /// Runs `body`, matching work over `bytes` bytes of text, inline when they are few and otherwise on
    /// `matching`, so a large or crafted text never holds a cooperative thread for the seconds it may take.
    public static func matchingOffloaded<T: Sendable>(bytes: Int, _ body: @escaping @Sendable () -> T) async -> T {
        guard bytes >= inlineMatchingBytes else { return body() }
        return await matching.run(body)
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
            let thread = Thread { [self] in drain() }
            thread.name = name
            thread.start()
        }
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
