import Foundation
import Testing

@testable import Sandbox

/// When the pools replace what an execution took (Sources/Sandbox/RefillPacing.swift): after the running
/// executions end, unless the pool is or becomes low, the machine is busy, the wait reaches its bound, or
/// the runtime stops. A wait that should end by itself has a two-minute bound: a broken one fails its test
/// (the polls give up after 30 s) rather than passing when the bound runs out.
@Suite struct RefillPacingTests {
    /// Runs `waitToPrepare` on a thread of its own (the pool's level read from `level`); the result lands
    /// in the box.
    func waitInBackground(_ pacing: RefillPacing, level: Shared<Int> = Shared(3), capacity: Int = 4)
        -> Shared<RefillPacing.Wait?>
    {
        let result = Shared<RefillPacing.Wait?>(nil)
        Thread { result.set(pacing.waitToPrepare(capacity: capacity) { level.current }) }.start()
        return result
    }

    /// A pacing object with one execution running and a pool (at `level` of 4) waiting on it.
    func waitingPool(busyAt: Int = 2, level: Shared<Int> = Shared(3)) async
        -> (pacing: RefillPacing, result: Shared<RefillPacing.Wait?>)
    {
        let pacing = RefillPacing(busyAt: busyAt, maxWaitMs: 120_000)
        pacing.began()
        let result = waitInBackground(pacing, level: level)
        #expect(await eventually { pacing.counts.waiters == 1 })
        return (pacing, result)
    }

    /// Polls for up to 30 s of wall time: the suite runs beside others that can keep the cooperative pool
    /// (two threads here) busy for seconds, so the polling task may not run for a while.
    func eventually(_ condition: () -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            if condition() { return true }
            try? await Task.sleep(for: .milliseconds(5))
        }
        return condition()
    }

    @Test func nothingRunningPreparesAtOnce() {
        let pacing = RefillPacing(busyAt: 2, maxWaitMs: 120_000)
        #expect(pacing.waitToPrepare(capacity: 4) { 4 } == .quiet)
        pacing.began()
        pacing.ended()
        #expect(pacing.waitToPrepare(capacity: 4) { 3 } == .quiet)
    }

    @Test func aHalfFullPoolWaitsUntilTheRunningExecutionEnds() async {
        let (pacing, result) = await waitingPool(level: Shared(2))
        try? await Task.sleep(for: .milliseconds(50))
        #expect(result.current == nil, "it prepared while the execution ran")
        pacing.ended()
        #expect(await eventually { result.current == .quiet })
        #expect(pacing.counts.waiters == 0)
    }

    /// The moment the running executions end counts even when another begins before the pool wakes.
    @Test func aQuietMomentIsNotMissed() async {
        let (pacing, result) = await waitingPool(busyAt: 3)
        pacing.ended()
        pacing.began()
        #expect(await eventually { result.current == .quiet })
    }

    @Test func aPoolLessThanHalfFullPreparesAtOnce() {
        let pacing = RefillPacing(busyAt: 2, maxWaitMs: 120_000)
        pacing.began()
        #expect(pacing.waitToPrepare(capacity: 4) { 1 } == .poolLow)
        #expect(pacing.waitToPrepare(capacity: 1) { 0 } == .poolLow)
    }

    /// Calls that take from the pool while it waits bring it below half: it prepares then.
    @Test func aPoolDrainedWhileItWaitsPreparesAtOnce() async {
        let level = Shared(3)
        let (pacing, result) = await waitingPool(level: level)
        level.set(1)
        pacing.poolChanged()
        #expect(await eventually { result.current == .poolLow })
    }

    @Test func asManyExecutionsAsCoresPrepareAtOnce() async {
        let (pacing, result) = await waitingPool()
        // A second execution starts: no core is left to keep free, and the pool must keep up.
        pacing.began()
        #expect(await eventually { result.current == .busy })
        #expect(pacing.waitToPrepare(capacity: 4) { 4 } == .busy)
    }

    @Test func theWaitEndsAtItsBound() {
        let pacing = RefillPacing(busyAt: 2, maxWaitMs: 30)
        pacing.began()
        let started = ContinuousClock.now
        #expect(pacing.waitToPrepare(capacity: 4) { 4 } == .waitedOut)
        #expect(ContinuousClock.now - started >= .milliseconds(25), "it did wait")
        let off = RefillPacing(busyAt: 2, maxWaitMs: 0)
        off.began()
        #expect(off.waitToPrepare(capacity: 4) { 4 } == .off)
    }

    @Test func stoppingReleasesAWaitingPool() async {
        let (pacing, result) = await waitingPool()
        pacing.stop()
        #expect(await eventually { result.current == .stopped })
        #expect(pacing.waitToPrepare(capacity: 4) { 4 } == .stopped)
    }
}
