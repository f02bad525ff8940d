import Synchronization

/// The time policy reads: rate windows, cooldowns, approval expiry and queue timeouts. Milliseconds on a
/// monotonic scale that starts at the daemon's start. Injected so tests observe limits exactly without
/// sleeping (`toold --manual-clock` + `testing.clock.advance`).
public protocol PolicyClock: Sendable {
    var nowMs: Int64 { get }
    /// Returns once `nowMs >= deadline`; throws `CancellationError` when the task is cancelled first.
    func sleep(untilMs deadline: Int64) async throws
}

/// The real clock: `ContinuousClock` from the moment it was made.
public struct SystemPolicyClock: PolicyClock {
    private let origin = ContinuousClock.now
    public init() {}
    public var nowMs: Int64 { Int64((ContinuousClock.now - origin) / .milliseconds(1)) }
    public func sleep(untilMs deadline: Int64) async throws {
        try await Task.sleep(until: origin + .milliseconds(deadline), clock: .continuous)
    }
}

/// A clock that moves only when told (tests). Sleepers wake when `advance` passes their deadline.
public final class ManualPolicyClock: PolicyClock {
    private struct State {
        var now: Int64 = 0
        var nextID = 0
        var sleepers: [Int: (deadline: Int64, continuation: CheckedContinuation<Void, any Error>)] = [:]
    }
    private let state = Mutex(State())

    public init() {}

    public var nowMs: Int64 { state.withLock { $0.now } }

    /// Moves the clock forward and wakes every sleeper now due; returns the new time.
    @discardableResult
    public func advance(byMs delta: Int64) -> Int64 {
        let (now, due) = state.withLock { s -> (Int64, [CheckedContinuation<Void, any Error>]) in
            s.now += max(0, delta)
            let dueIDs = s.sleepers.filter { $0.value.deadline <= s.now }.map(\.key)
            return (s.now, dueIDs.compactMap { s.sleepers.removeValue(forKey: $0)?.continuation })
        }
        for continuation in due { continuation.resume() }
        return now
    }

    public func sleep(untilMs deadline: Int64) async throws {
        let id = state.withLock { s -> Int in
            s.nextID += 1
            return s.nextID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let resumeNow: (any Error)?? = state.withLock { s in
                    if Task.isCancelled { return .some(CancellationError()) }
                    if deadline <= s.now { return .some(nil) }
                    s.sleepers[id] = (deadline, continuation)
                    return .none
                }
                switch resumeNow {
                case .some(.some(let error)): continuation.resume(throwing: error)
                case .some(.none): continuation.resume()
                case .none: break
                }
            }
        } onCancel: {
            let continuation = state.withLock { $0.sleepers.removeValue(forKey: id)?.continuation }
            continuation?.resume(throwing: CancellationError())
        }
    }
}
