import Foundation
import Synchronization

/// Threads for calls that may block for a long time: NSS lookups (`getpwuid_r`, `getgrgid_r`, …), which
/// wait on whatever the host's nsswitch names — LDAP, sssd, a directory that is down. Swift's cooperative
/// pool is only as wide as the machine has cores and event loops must never block, so one hanging lookup
/// per core on either would stall every request of every client. Here at most `width` threads run
/// lookups; threads start when work arrives and end when none waits, and calls beyond `width` wait their
/// turn in order (each connection queues at most one, plus its admin's `policy.get` lookups).
public final class LookupThreads: Sendable {
    /// The daemon's lookup threads.
    public static let shared = LookupThreads(width: 16)

    public let width: Int
    private let state = Mutex(State())

    private struct State {
        var threads = 0
        /// Short (one per connection at most): `removeFirst` is cheap enough.
        var queue: [@Sendable () -> Void] = []
    }

    public init(width: Int) {
        precondition(width > 0)
        self.width = width
    }

    /// Runs `body` on a lookup thread; calls `completion` with its result on that thread.
    public func submit<T: Sendable>(_ body: @escaping @Sendable () -> T, completion: @escaping @Sendable (T) -> Void) {
        let startThread = state.withLock { s -> Bool in
            s.queue.append { completion(body()) }
            guard s.threads < width else { return false }
            s.threads += 1
            return true
        }
        if startThread {
            let thread = Thread { [self] in drain() }
            thread.name = "toold-lookup"
            thread.start()
        }
    }

    /// Runs `body` on a lookup thread and waits for it without holding a cooperative thread.
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
