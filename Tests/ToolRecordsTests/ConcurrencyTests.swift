import Foundation
import Synchronization
import Testing
import ToolProtocol
import ToolRecords

/// Writers on many threads, through one store and through a second store on the same file (as another
/// process would be): every write lands, none fails with SQLITE_BUSY, the file stays sound.
@Suite struct ConcurrencyTests {
    @Test func concurrentWritersAndReadersNeverFailAndLoseNothing() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let first = try dir.store()
        let second = try dir.store()
        let errors = Mutex<[String]>([])
        let workers = 8
        let perWorker = 40
        DispatchQueue.concurrentPerform(iterations: workers) { worker in
            let store = worker % 2 == 0 ? first : second
            for i in 0..<perWorker {
                let n = worker * 1000 + i
                do {
                    let start = Fixture.start(n, caller: worker % 3 == 0 ? Fixture.bob : Fixture.ana, at: Int64(n))
                    try store.executionStarted(start)
                    try store.cachePut(
                        key: "k\(n % 50)", tool: "shell", manifestDigest: "m",
                        result: [UInt8](repeating: 1, count: 100),
                        now: Fixture.at(Int64(n)), expiresAt: Fixture.at(1_000_000))
                    _ = try store.cacheGet(key: "k\((n + 7) % 50)", now: Fixture.at(Int64(n)))
                    try store.executionFinished(start.executionID, Fixture.outcome(finishedAt: Int64(n) + 1))
                    if i % 10 == 0 {
                        _ = try store.list(ExecutionsListParams(limit: 20), viewer: Fixture.root)
                        _ = try store.metrics(MetricsGetParams(), viewer: Fixture.ana, now: Fixture.at(1_000_000))
                    }
                } catch {
                    errors.withLock { $0.append("worker \(worker) #\(i): \(error)") }
                }
            }
        }
        #expect(errors.withLock { $0 }.isEmpty)
        let all = try first.list(ExecutionsListParams(limit: 1000), viewer: Fixture.root).executions
        #expect(all.count == workers * perWorker && all.allSatisfy { $0.status == .exited })
        #expect(try second.auditEntries(limit: 10_000).count == workers * perWorker)
        #expect(try first.integrityCheck())
    }
}
