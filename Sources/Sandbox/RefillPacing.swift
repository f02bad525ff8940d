// RefillPacing: when the pools (prepared sandboxes, network namespaces)
// replace what a call took. Preparing a sandbox is about a millisecond of
// CPU, creating a network namespace half of one, most of it in system calls
// the kernel does not preempt (PREEMPT_NONE, the usual server setting). Done
// at once, it ran while the call that took the sandbox was still running, on
// the core the call's next step was waiting for: on two cores a sequential
// caller's report waited 0.6 ms behind an unshare(CLONE_NEWNET).
//
// So a pool that is at least half full waits, before preparing, until no
// execution runs — at most `maxWaitMs`, so a long command never starves it.
// It prepares at once when it is less than half full (a burst must not find
// it empty) or when as many executions run as there are cores (no idle core
// is left to keep free, and the pool must keep up with the load).
#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// The count of running executions the pools pace their refills by. Thread-safe.
final class RefillPacing: @unchecked Sendable {
    // @unchecked: `running` and `waiters` are only touched with `condition` locked.
    private let condition = NSCondition()
    private var running = 0
    private var waiters = 0
    /// With this many executions running, the pools prepare at once.
    let busyAt: Int
    /// The longest a pool waits for the running executions to end; 0 never waits.
    let maxWaitMs: Int

    init(busyAt: Int, maxWaitMs: Int) {
        self.busyAt = max(1, busyAt)
        self.maxWaitMs = max(0, maxWaitMs)
    }

    /// An execution starts (the pools hold off).
    func began() {
        condition.lock()
        running += 1
        // Under load the pools must keep up: wake them.
        if running == busyAt { condition.broadcast() }
        condition.unlock()
    }

    /// An execution has ended and torn its sandbox down.
    func ended() {
        condition.lock()
        running -= 1
        if running == 0 { condition.broadcast() }
        condition.unlock()
    }

    /// How a pool's wait ended.
    enum Wait: Equatable {
        /// Nothing was running, or everything running ended.
        case quiet
        /// The pool was less than half full.
        case poolLow
        /// As many executions ran as `busyAt`.
        case busy
        /// `maxWaitMs` passed with executions still running.
        case waitedOut
    }

    /// Called by a pool before it prepares one more (`ready` of `capacity` are ready): returns when it should.
    @discardableResult
    func waitToPrepare(ready: Int, capacity: Int) -> Wait {
        guard ready * 2 >= capacity else { return .poolLow }
        let deadline = Date().addingTimeInterval(Double(maxWaitMs) / 1000)
        condition.lock()
        defer { condition.unlock() }
        waiters += 1
        defer { waiters -= 1 }
        while running > 0 {
            if running >= busyAt { return .busy }
            if !condition.wait(until: deadline) { return running > 0 ? .waitedOut : .quiet }
        }
        return .quiet
    }

    /// Executions running, and pools waiting for them (tests).
    var counts: (running: Int, waiters: Int) {
        condition.lock()
        defer { condition.unlock() }
        return (running, waiters)
    }
}
