import Foundation
import Logging
import Testing

@testable import Sandbox

/// Spawn latency of /bin/true, pool on and off. Opt-in (TOOLD_SANDBOX_BENCH=1):
/// it measures, it does not assert, and it would slow the suite down.
@Suite("Spawn latency", .serialized, .enabled(if: ProcessInfo.processInfo.environment["TOOLD_SANDBOX_BENCH"] == "1"))
struct SpawnLatencyBenchmark {
    @Test(arguments: [4, 0])
    func trueLatency(poolSize: Int) async throws {
        TestRuntime.ensureSandboxUser()
        var logger = Logger(label: "toold.sandbox.bench")
        logger.logLevel = ProcessInfo.processInfo.environment["TOOLD_SANDBOX_TRACE"] != nil ? .notice : .warning
        let runtime = try SandboxRuntime(
            configuration: SandboxConfiguration(stateDirectory: "/tmp/toold-sandbox-bench-\(poolSize)", netnsPoolSize: poolSize),
            logger: logger
        )
        defer { runtime.shutdown() }
        try await Task.sleep(for: .milliseconds(300))  // let the pool fill
        let runs = Int(ProcessInfo.processInfo.environment["TOOLD_SANDBOX_BENCH_RUNS"] ?? "200") ?? 200
        var samples: [Double] = []
        for i in 0..<runs {
            let start = ContinuousClock.now
            let o = await runtime.run(SandboxSpec(executionID: "bench-\(i)", argv: ["/bin/true"])) { _, _ in }
            let elapsed = ContinuousClock.now - start
            #expect(o.status == .exited)
            samples.append(Double(elapsed.components.attoseconds) / 1e15 + Double(elapsed.components.seconds) * 1000)
            // Give the pool a fair chance between calls, as a daemon would see
            // it at moderate load; the pool is measured, not its refill rate.
            if poolSize > 0 { try await Task.sleep(for: .milliseconds(2)) }
        }
        samples.sort()
        let p50 = samples[samples.count / 2]
        let p99 = samples[min(samples.count - 1, samples.count * 99 / 100)]
        print(String(format: "spawn latency /bin/true pool=%d runs=%d p50=%.2fms p99=%.2fms min=%.2fms", poolSize, runs, p50, p99, samples[0]))
    }
}
