import Foundation
import Testing
import ToolProtocol
import ToolRecords

#if canImport(Glibc)
    import Glibc
#endif

/// A full disk: writes fail with `.diskFull`, the database stays sound and readable, nothing is half
/// recorded, and recording resumes by itself once space returns.
@Suite(.serialized) struct DiskFullTests {
    /// Writes `path` until the file system refuses with ENOSPC. Returns the bytes written.
    static func fill(_ path: String) throws -> Int {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw SQLite.Failure(description: "open \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let chunk = [UInt8](repeating: 0xAB, count: 4096)
        var total = 0
        while true {
            let n = chunk.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if n > 0 {
                total += n
                continue
            }
            if n < 0 && errno == EINTR { continue }
            guard n < 0 && errno == ENOSPC else {
                throw SQLite.Failure(
                    description: "write \(path): \(String(cString: strerror(errno))) instead of ENOSPC")
            }
            return total
        }
    }

    @Test(.enabled(if: getuid() == 0, "mounting a tmpfs needs root"))
    func writesFailAsDiskFullWithoutDamageAndSucceedAgainOnceSpaceIsFreed() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        try SQLite.run("/bin/mount", ["-t", "tmpfs", "-o", "size=512k,mode=0700", "tmpfs", dir.path])
        defer { _ = try? SQLite.run("/bin/umount", [dir.path]) }

        let store = try dir.store(RecordSettings(outputBytesPerStream: 256 * 1024))
        try Fixture.record(store, 1)
        #expect(
            try store.cachePut(
                key: "k", tool: "shell", manifestDigest: "m", result: [1, 2], now: Fixture.t0,
                expiresAt: Fixture.at(60_000)))
        let filler = dir.path + "/filler"
        #expect(try Self.fill(filler) > 0)

        let big = Array(repeating: UInt8(ascii: "y"), count: 40 * 1024)
        var failures = 0
        for n in 2...4 {
            do {
                try store.recordCompleted(Fixture.start(n), Fixture.outcome(stdout: big))
                Issue.record("a 40 KiB record fitted on a full file system")
            } catch {
                failures += 1
                guard case .diskFull(_, let path) = error else {
                    Issue.record("expected diskFull, got \(error)")
                    continue
                }
                #expect(path == dir.databasePath)
                #expect(error.description.contains("is full") && error.description.contains(dir.databasePath))
            }
        }
        #expect(failures == 3)
        #expect(try store.cacheGet(key: "k", now: Fixture.at(1))?.result == [1, 2], "a hit stays a hit on a full disk")
        #expect(throws: RecordError.self) {
            try store.cachePut(
                key: "big", tool: "shell", manifestDigest: "m", result: big, now: Fixture.t0,
                expiresAt: Fixture.at(60_000))
        }
        #expect(try store.integrityCheck(), "a failed write leaves the file sound")
        #expect(try store.get(Fixture.executionID(1), viewer: Fixture.ana).status == .exited, "reads keep working")
        #expect(throws: RecordError.notFound(executionID: Fixture.executionID(2)), "nothing half recorded") {
            try store.get(Fixture.executionID(2), viewer: Fixture.ana)
        }

        try FileManager.default.removeItem(atPath: filler)
        try store.recordCompleted(Fixture.start(2), Fixture.outcome(stdout: big))
        #expect(try store.get(Fixture.executionID(2), viewer: Fixture.ana).stdoutBytes == big.count)
        try Fixture.record(store, 3)
        #expect(try store.list(ExecutionsListParams(), viewer: Fixture.ana).executions.count == 3)
        #expect(try store.integrityCheck())
    }
}
