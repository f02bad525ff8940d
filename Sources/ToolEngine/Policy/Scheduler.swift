import Foundation
import Synchronization
import ToolProtocol

/// Admission of executions into sandboxes: at most `maxRunning` at once, the rest wait in a bounded
/// queue that is fair across users.
///
/// - Each user has a FIFO queue; users are served round-robin, so one user's flood waits behind its own
///   calls only: another user's call starts at the next free slot whatever the flood's length.
/// - A user's `concurrency` (from policy) caps its running executions; its queued calls wait for its own
///   slots without holding up others.
/// - The queue is bounded in all (`maxQueued`) and per user (`maxQueuedPerUser`); a call that does not fit
///   is refused `overloaded` with `retry_after_ms` (an estimate from recent run times). A call that waits
///   longer than `queueTimeoutMs` is refused the same way. Cancelling the waiting task leaves the queue.
public final class Scheduler: Sendable {
    public struct Settings: Sendable, Equatable {
        public var maxRunning: Int
        public var maxQueued: Int
        public var maxQueuedPerUser: Int
        public var queueTimeoutMs: Int
        public init(maxRunning: Int, maxQueued: Int = 256, maxQueuedPerUser: Int = 64, queueTimeoutMs: Int = 60_000) {
            self.maxRunning = maxRunning
            self.maxQueued = maxQueued
            self.maxQueuedPerUser = maxQueuedPerUser
            self.queueTimeoutMs = queueTimeoutMs
        }

        /// Default: four sandboxes per CPU, and no more than memory holds at the default memory limit.
        public static func defaultMaxRunning(defaultMemoryBytes: UInt64) -> Int {
            let cpus = ProcessInfo.processInfo.activeProcessorCount
            let byMemory = Int(ProcessInfo.processInfo.physicalMemory / max(defaultMemoryBytes, 1))
            return max(1, min(4 * cpus, byMemory))
        }
    }

    private struct Waiter {
        var uid: UInt32
        var concurrency: Int?
        var enqueuedAt: Int64
        var continuation: CheckedContinuation<Void, any Error>?
        var timer: Task<Void, Never>?
    }
    private struct UserState {
        var user: String
        var running = 0
        var queue: [Int] = []
    }
    private struct State {
        var settings: Settings
        var running = 0
        var queued = 0
        var users: [UInt32: UserState] = [:]
        var waiters: [Int: Waiter] = [:]
        /// Users with queued calls, in serving order; `next` is where the next round starts.
        var ring: [UInt32] = []
        var next = 0
        var nextID = 0
        /// Moving average of run times, for `retry_after_ms`.
        var meanRunMs: Double = 100
    }
    private enum Wake: Error {
        case timedOut
        case cancelled
    }

    private let state: Mutex<State>
    private let clock: any PolicyClock

    public init(settings: Settings, clock: any PolicyClock) {
        state = Mutex(State(settings: settings))
        self.clock = clock
    }

    public var settings: Settings { state.withLock { $0.settings } }

    /// New limits apply from the next admission; running executions are never stopped by a change.
    public func update(_ settings: Settings) {
        let due = state.withLock { s -> [CheckedContinuation<Void, any Error>] in
            s.settings = settings
            return Self.dispatch(&s)
        }
        for continuation in due { continuation.resume() }
    }

    /// A place among the running executions; `release()` it when the execution ends (exactly once).
    public struct Slot: Sendable {
        public let queuedMs: Int
        fileprivate let uid: UInt32
        fileprivate let startedAt: Int64
        fileprivate let scheduler: Scheduler

        public func release() { scheduler.release(self) }
    }

    /// Waits for a slot. Throws `overloaded` (queue full or queue timeout) or `cancelled`.
    public func acquire(uid: UInt32, user: String, concurrency: Int?) async throws(RPCError) -> Slot {
        let now = clock.nowMs
        enum Admission {
            case granted
            case refused(RPCError)
            case queued(id: Int, timeoutMs: Int)
        }
        let admission = state.withLock { s -> Admission in
            var u = s.users[uid] ?? UserState(user: user)
            u.user = user
            if u.queue.isEmpty, s.running < s.settings.maxRunning, u.running < (concurrency ?? .max) {
                u.running += 1
                s.running += 1
                s.users[uid] = u
                return .granted
            }
            if u.queue.count >= s.settings.maxQueuedPerUser {
                return .refused(
                    .overloaded(
                        "\(u.queue.count) calls of \(user) already wait (the most one user may queue)",
                        retryAfterMs: Self.estimate(s, ahead: u.queue.count)))
            }
            if s.queued >= s.settings.maxQueued {
                return .refused(
                    .overloaded("the queue is full (\(s.queued) calls wait)", retryAfterMs: Self.estimate(s, ahead: s.queued)))
            }
            s.nextID += 1
            let id = s.nextID
            s.waiters[id] = Waiter(uid: uid, concurrency: concurrency, enqueuedAt: now)
            u.queue.append(id)
            s.users[uid] = u
            s.queued += 1
            if !s.ring.contains(uid) { s.ring.append(uid) }
            return .queued(id: id, timeoutMs: s.settings.queueTimeoutMs)
        }
        switch admission {
        case .granted:
            return Slot(queuedMs: 0, uid: uid, startedAt: now, scheduler: self)
        case .refused(let error):
            throw error
        case .queued(let id, let timeoutMs):
            do {
                try await wait(id: id, deadline: now + Int64(timeoutMs))
            } catch Wake.timedOut {
                let estimate = state.withLock { Self.estimate($0, ahead: $0.queued) }
                throw .overloaded("waited \(timeoutMs) ms in the queue without a free sandbox", retryAfterMs: estimate)
            } catch {
                throw .cancelled("cancelled while waiting in the queue")
            }
            let started = clock.nowMs
            return Slot(queuedMs: Int(started - now), uid: uid, startedAt: started, scheduler: self)
        }
    }

    private func wait(id: Int, deadline: Int64) async throws {
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                // A waiter is dispatched only once its continuation is here; the dispatch run now catches
                // a slot that freed up between enqueueing and this point.
                let (ready, due) = state.withLock { s -> ((any Error)??, [CheckedContinuation<Void, any Error>]) in
                    guard s.waiters[id] != nil else { return (.some(nil), []) }
                    if Task.isCancelled {
                        Self.remove(id, &s)
                        return (.some(Wake.cancelled), [])
                    }
                    s.waiters[id]?.continuation = continuation
                    return (.none, Self.dispatch(&s))
                }
                for other in due { other.resume() }
                switch ready {
                case .some(.some(let error)): continuation.resume(throwing: error)
                case .some(.none): continuation.resume()
                case .none:
                    let timer = Task { [clock] in
                        guard (try? await clock.sleep(untilMs: deadline)) != nil else { return }
                        self.wake(id, with: .timedOut)
                    }
                    let keep = state.withLock { s -> Bool in
                        guard s.waiters[id] != nil else { return false }
                        s.waiters[id]?.timer = timer
                        return true
                    }
                    if !keep { timer.cancel() }
                }
            }
        } onCancel: {
            wake(id, with: .cancelled)
        }
    }

    /// Takes a waiter out of the queue and fails it (timeout or cancel); no-op once granted.
    private func wake(_ id: Int, with reason: Wake) {
        let waiter = state.withLock { s -> Waiter? in
            guard let w = s.waiters[id], w.continuation != nil else { return nil }
            Self.remove(id, &s)
            return w
        }
        waiter?.timer?.cancel()
        waiter?.continuation?.resume(throwing: reason)
    }

    private static func remove(_ id: Int, _ s: inout State) {
        guard let w = s.waiters.removeValue(forKey: id) else { return }
        s.queued -= 1
        s.users[w.uid]?.queue.removeAll { $0 == id }
        if s.users[w.uid]?.queue.isEmpty == true {
            s.ring.removeAll { $0 == w.uid }
            if s.users[w.uid]?.running == 0 { s.users.removeValue(forKey: w.uid) }
        }
    }

    fileprivate func release(_ slot: Slot) {
        let ran = Double(max(0, clock.nowMs - slot.startedAt))
        let due = state.withLock { s -> [CheckedContinuation<Void, any Error>] in
            s.running -= 1
            s.users[slot.uid]?.running -= 1
            if let u = s.users[slot.uid], u.running == 0, u.queue.isEmpty { s.users.removeValue(forKey: slot.uid) }
            s.meanRunMs = s.meanRunMs * 0.9 + ran * 0.1
            return Self.dispatch(&s)
        }
        for continuation in due { continuation.resume() }
    }

    /// Grants free slots round-robin across users whose next call may run; returns whom to wake.
    private static func dispatch(_ s: inout State) -> [CheckedContinuation<Void, any Error>] {
        var woken: [CheckedContinuation<Void, any Error>] = []
        while s.running < s.settings.maxRunning, !s.ring.isEmpty {
            var granted = false
            for step in 0..<s.ring.count {
                let index = (s.next + step) % s.ring.count
                let uid = s.ring[index]
                guard var u = s.users[uid], let head = u.queue.first, let waiter = s.waiters[head],
                    waiter.continuation != nil, u.running < (waiter.concurrency ?? .max)
                else { continue }
                u.queue.removeFirst()
                u.running += 1
                s.users[uid] = u
                s.running += 1
                s.queued -= 1
                s.waiters.removeValue(forKey: head)
                waiter.timer?.cancel()
                woken.append(waiter.continuation!)
                if u.queue.isEmpty {
                    s.ring.remove(at: index)
                    s.next = s.ring.isEmpty ? 0 : index % s.ring.count
                } else {
                    s.next = (index + 1) % s.ring.count
                }
                granted = true
                break
            }
            if !granted { break }
        }
        return woken
    }

    private static func estimate(_ s: State, ahead: Int) -> Int {
        let ms = s.meanRunMs * Double(ahead + 1) / Double(max(1, s.settings.maxRunning))
        return min(60_000, max(100, Int(ms.rounded(.up))))
    }

    /// Running and queued calls, in all and per user.
    public func counts() -> (running: Int, queued: Int, perUser: [UInt32: (user: String, running: Int, queued: Int)]) {
        state.withLock { s in
            (s.running, s.queued, s.users.mapValues { ($0.user, $0.running, $0.queue.count) })
        }
    }
}
