// RefillPacing: when the pools (prepared sandboxes, network namespaces)
// replace what an execution took. Preparing a sandbox is about a millisecond
// of CPU, creating a network namespace half of one, most of it in system
// calls that a kernel built without full preemption (this development host's:
// PREEMPT_NONE) does not preempt. Done at once, it ran while the execution
// that took the sandbox was still running, on the core its next step was
// waiting for: on two cores a sequential caller's report waited 0.6 ms behind
// an unshare(CLONE_NEWNET).
//
// So a pool that is at least half full waits, before preparing, until no
// execution runs — at most `maxWaitMs`, so a long command never starves it.
// It prepares at once when it is (or, while it waits, becomes) less than half
// full, so a burst does not find it empty, and when `busyAt` executions run
// (as many as the CPUs toold may use, at least two): no idle core is left to
// keep free, and the pool must keep up with the load. "No execution runs" is
// the sandbox's side: an execution counts until its sandbox is torn down; the
// daemon's own work on the result (redaction, the end record, the answer)
// runs after, on other threads, and is not waited for.
#if canImport(Glibc)
import Glibc
#endif

/// The count of running executions the pools pace their refills by. Thread-safe.
final class RefillPacing: @unchecked Sendable {
    // @unchecked: every mutable field is touched only with `mutex` held; the pthread objects are
    // allocated in init, never moved, and destroyed in deinit.
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let changed = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var running = 0
    /// How many times `running` fell to zero: a waiter that missed the moment (another execution began
    /// before it woke) still sees that it came.
    private var quietMoments = 0
    private var waiters = 0
    private var stopped = false
    /// With this many executions running, the pools prepare at once.
    let busyAt: Int
    /// The longest a pool waits for the running executions to end; 0 never waits.
    let maxWaitMs: Int

    init(busyAt: Int, maxWaitMs: Int) {
        self.busyAt = max(1, busyAt)
        self.maxWaitMs = max(0, maxWaitMs)
        pthread_mutex_init(mutex, nil)
        // The bound is kept on the monotonic clock: a wall-clock step must not stretch a wait.
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(changed, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    deinit {
        pthread_cond_destroy(changed)
        pthread_mutex_destroy(mutex)
        changed.deallocate()
        mutex.deallocate()
    }

    private func locked<T>(_ body: () -> T) -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return body()
    }

    /// An execution starts (the pools hold off).
    func began() {
        locked {
            running += 1
            // Under load the pools must keep up: wake them.
            if running == busyAt { pthread_cond_broadcast(changed) }
        }
    }

    /// An execution has ended and torn its sandbox down.
    func ended() {
        locked {
            running -= 1
            if running == 0 {
                quietMoments += 1
                pthread_cond_broadcast(changed)
            }
        }
    }

    /// A pool's level dropped (a call took from it): a waiting pool looks again.
    func poolChanged() {
        locked { _ = pthread_cond_broadcast(changed) }
    }

    /// The runtime shuts down: waiting pools return at once, and later waits do not wait.
    func stop() {
        locked {
            stopped = true
            pthread_cond_broadcast(changed)
        }
    }

    /// How a pool's wait ended.
    enum Wait: Equatable {
        /// Nothing was running, or everything running ended.
        case quiet
        /// The pool was, or became, less than half full.
        case poolLow
        /// As many executions ran as `busyAt`.
        case busy
        /// `maxWaitMs` passed with executions still running.
        case waitedOut
        /// Pacing is off (`maxWaitMs` 0).
        case off
        /// The runtime is shutting down.
        case stopped
    }

    /// Called by a pool before it prepares one more: returns when it should. `ready` reads the pool's
    /// level (called with this object's lock held: it may take the pool's own lock, which is never held
    /// while calling into this object).
    @discardableResult
    func waitToPrepare(capacity: Int, ready: () -> Int) -> Wait {
        guard maxWaitMs > 0 else { return .off }
        let deadline = Posix.monotonicNs() + UInt64(maxWaitMs) * 1_000_000
        return locked {
            waiters += 1
            defer { waiters -= 1 }
            let seen = quietMoments
            while true {
                if stopped { return .stopped }
                if ready() * 2 < capacity { return .poolLow }
                if running == 0 || quietMoments != seen { return .quiet }
                if running >= busyAt { return .busy }
                let now = Posix.monotonicNs()
                if now >= deadline { return .waitedOut }
                var until = timespec(tv_sec: Int(deadline / 1_000_000_000), tv_nsec: Int(deadline % 1_000_000_000))
                _ = pthread_cond_timedwait(changed, mutex, &until)
            }
        }
    }

    /// Executions running, and pools waiting for them (tests).
    var counts: (running: Int, waiters: Int) { locked { (running, waiters) } }
}
