import Foundation
import Testing

@testable import Sandbox

/// When the pools replace what a call took (Sources/Sandbox/RefillPacing.swift): after the running executions
/// end, unless the pool is low, the machine is busy, or the wait reaches its bound.
@Suite struct RefillPacingTests {
    /// Runs `waitToPrepare` on a thread of its own; the result lands in the box.
    func waitInBackground(_ pacing: RefillPacing, ready: Int = 3, capacity: Int = 4) -> Shared<RefillPacing.Wait?> {
        let result = Shared<RefillPacing.Wait?>(nil)
        Thread { result.set(pacing.waitToPrepare(ready: ready, capacity: capacity)) }.start()
        return result
    }

    func eventually(_ condition: () -> Bool) async -> Bool {
        for _ in 0..<1000 {
            if condition() { return true }
            try? await Task.sleep(for: .milliseconds(5))
        }
        return false
    }

    @Test func nothingRunningPreparesAtOnce() {
        let pacing = RefillPacing(busyAt: 2, maxWaitMs: 600_000)
        #expect(pacing.waitToPrepare(ready: 4, capacity: 4) == .quiet)
        pacing.began()
        pacing.ended()
        #expect(pacing.waitToPrepare(ready: 3, capacity: 4) == .quiet)
    }

    @Test func aHalfFullPoolWaitsUntilTheRunningExecutionEnds() async {
        let pacing = RefillPacing(busyAt: 2, maxWaitMs: 600_000)
        pacing.began()
        let result = waitInBackground(pacing, ready: 2, capacity: 4)
        #expect(await eventually { pacing.counts.waiters == 1 })
        try? await Task.sleep(for: .milliseconds(50))
        #expect(result.current == nil, "it prepared while the execution ran")
        pacing.ended()
        #expect(await eventually { result.current == .quiet })
        #expect(pacing.counts.waiters == 0)
    }

    @Test func aPoolLessThanHalfFullPreparesAtOnce() {
        let pacing = RefillPacing(busyAt: 2, maxWaitMs: 600_000)
        pacing.began()
        #expect(pacing.waitToPrepare(ready: 1, capacity: 4) == .poolLow)
        #expect(pacing.waitToPrepare(ready: 0, capacity: 1) == .poolLow)
    }

    @Test func asManyExecutionsAsCoresPrepareAtOnce() async {
        let pacing = RefillPacing(busyAt: 2, maxWaitMs: 600_000)
        pacing.began()
        let result = waitInBackground(pacing)
        #expect(await eventually { pacing.counts.waiters == 1 })
        // A second execution starts: no core is left to keep free, and the pool must keep up.
        pacing.began()
        #expect(await eventually { result.current == .busy })
        #expect(pacing.waitToPrepare(ready: 4, capacity: 4) == .busy)
    }

    @Test func theWaitEndsAtItsBound() {
        let pacing = RefillPacing(busyAt: 2, maxWaitMs: 20)
        pacing.began()
        #expect(pacing.waitToPrepare(ready: 4, capacity: 4) == .waitedOut)
        let never = RefillPacing(busyAt: 2, maxWaitMs: 0)
        never.began()
        #expect(never.waitToPrepare(ready: 4, capacity: 4) == .waitedOut)
    }
}
