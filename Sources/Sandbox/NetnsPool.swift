// NetnsPool: fresh network namespaces (only `lo`, up) prepared ahead of
// demand by one background thread, because creating a namespace dominates
// spawn cost. Each namespace is handed to exactly one sandbox and closed by
// the runtime right after the spawn; none is ever shared or reused.
#if canImport(Glibc)
import Glibc
#endif
import CSandbox
import Foundation
import Logging

final class NetnsPool: @unchecked Sendable {
    // @unchecked: all mutable state is guarded by `condition`.
    private let condition = NSCondition()
    private var ready: [Int32] = []
    private var stopped = false
    private var lastError: Int32 = 0
    private let capacity: Int
    private let pacing: RefillPacing
    private let logger: Logger

    init(capacity: Int, pacing: RefillPacing, logger: Logger) {
        self.capacity = capacity
        self.pacing = pacing
        self.logger = logger
        guard capacity > 0 else { return }
        let thread = Thread { [self] in self.refillLoop() }
        thread.name = "toold-netns-pool"
        thread.stackSize = 256 << 10
        thread.start()
    }

    /// A prepared namespace (the caller owns and closes the fd), or nil when
    /// the pool is empty — the caller then asks the kernel for a fresh one.
    func take() -> Int32? {
        guard capacity > 0 else { return nil }
        condition.lock()
        guard let fd = ready.popLast() else {
            condition.unlock()
            return nil
        }
        condition.signal()
        condition.unlock()
        pacing.poolChanged()
        return fd
    }

    private var readyCount: Int {
        condition.lock()
        defer { condition.unlock() }
        return ready.count
    }

    func stop() {
        condition.lock()
        stopped = true
        let fds = ready
        ready.removeAll()
        condition.broadcast()
        condition.unlock()
        for fd in fds { close(fd) }
    }

    private func refillLoop() {
        while true {
            condition.lock()
            while !stopped && ready.count >= capacity { condition.wait() }
            if stopped {
                condition.unlock()
                return
            }
            condition.unlock()
            pacing.waitToPrepare(capacity: capacity) { readyCount }
            condition.lock()
            let stop = stopped
            condition.unlock()
            if stop { return }
            let fd = cs_netns_create()
            condition.lock()
            if fd >= 0 {
                if stopped {
                    close(fd)
                } else {
                    ready.append(fd)
                }
                lastError = 0
                condition.unlock()
            } else {
                let first = lastError == 0
                lastError = -fd
                condition.unlock()
                if first {
                    logger.error("creating a pooled network namespace failed", metadata: ["toold.errno": "\(errnoString(-fd))"])
                }
                // Back off; spawns meanwhile fall back to CLONE_NEWNET.
                Posix.sleepMs(1000)
            }
        }
    }
}
