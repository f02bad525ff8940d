import Testing

@testable import ToolEngine

/// The bucket behind "refusals cannot fill the disk": a burst, then a steady rate, and the count of what was
/// turned away reported with the next refusal let through.
@Suite struct RefusalBudgetTests {
    @Test func aBurstThenTheRateAndTheTurnedAwayAreCounted() {
        let second: UInt64 = 1_000_000_000
        var budget = RefusalBudget(now: 5 * second)
        for _ in 0..<ExecutionRecorder.refusalBurst {
            #expect(budget.take(now: 5 * second) == (true, 0))
        }
        #expect(budget.take(now: 5 * second) == (false, 1))
        #expect(budget.take(now: 5 * second + second / 20) == (false, 2))
        // One token per 100 ms: the next one through says two were not recorded.
        #expect(budget.take(now: 5 * second + second / 10) == (true, 2))
        #expect(budget.take(now: 5 * second + second / 10) == (false, 1))
        // A quiet spell refills the burst, never more.
        let later = 60 * second
        for _ in 0..<ExecutionRecorder.refusalBurst {
            #expect(budget.take(now: later).admitted)
        }
        #expect(!budget.take(now: later).admitted)
    }
}
