// Zygote: the process sandboxes are cloned from (CSandbox/zygote.c), and its
// socket. A zygote can die — the OOM killer, an operator's kill, a bug — and
// every sandbox it cloned dies with it (PR_SET_PDEATHSIG). Without a restart
// each later call would clone from the daemon (slower, an error logged per
// call) and the prepared-sandbox pool would stop for good. So a spawn that
// finds the zygote gone reaps it and starts another, at most once a second;
// the spawn is then retried once on the new zygote.
#if canImport(Glibc)
import Glibc
#endif
import CSandbox
import Foundation
import Logging
import Synchronization

final class Zygote: Sendable {
    private struct State {
        var socket: Int32
        var pid: pid_t
        /// When the last start was attempted (monotonic ns): restarts are at most once a second.
        var startedAt: UInt64
        var restarts = 0
        var stopped = false
    }

    /// The zygote executable (nil: re-run the daemon's own image as the zygote).
    private let executable: String?
    private let logger: Logger
    // Held across a whole spawn; cs_zygote_spawn serializes on its own lock anyway (one zygote, one
    // request at a time), so this adds no waiting — it only keeps the socket from being swapped mid-call.
    private let state: Mutex<State>

    /// Starts a zygote; nil when it cannot start (then sandboxes are cloned from the daemon).
    init?(executable: String?, logger: Logger) {
        self.executable = executable
        self.logger = logger
        guard let (socket, pid) = Self.launch(executable, logger: logger, failure: "sandbox zygote did not start; cloning from the daemon")
        else { return nil }
        state = Mutex(State(socket: socket, pid: pid, startedAt: Posix.monotonicNs()))
    }

    /// Starts a zygote process: its socket and pid, or nil (logged with `failure`).
    private static func launch(_ executable: String?, logger: Logger, failure: String) -> (Int32, pid_t)? {
        var socket: Int32 = -1
        var pid: pid_t = 0
        let r = executable.map { cs_zygote_start($0, &socket, &pid) } ?? cs_zygote_start(nil, &socket, &pid)
        guard r == 0 else {
            logger.error("\(failure)", metadata: ["toold.errno": "\(errnoString(-r))"])
            return nil
        }
        return (socket, pid)
    }

    /// The current zygote's pid (0 while none runs) and how often it was restarted.
    var status: (pid: pid_t, restarts: Int) {
        state.withLock { ($0.socket >= 0 ? $0.pid : 0, $0.restarts) }
    }

    /// Whether `code` (a negative errno from cs_zygote_spawn) means the zygote is gone, not that the
    /// clone failed.
    static func isGone(_ code: pid_t) -> Bool {
        code == -EPIPE || code == -ECONNRESET || code == -ENOTCONN
    }

    /// Clones a sandbox through the zygote: its pid (`pidfd` set), or a negative errno. When the zygote
    /// is found gone it is replaced and the spawn retried once; -ENOTCONN means no zygote runs now
    /// (stopped, or a restart within the last second failed or is not due): the caller clones itself.
    func spawn(_ config: inout cs_spawn_config, pidfd: inout Int32, placed: inout Int32) -> pid_t {
        state.withLock { s -> pid_t in
            guard !s.stopped else { return -ENOTCONN }
            if s.socket < 0 && !restart(&s) { return -ENOTCONN }
            let r = cs_zygote_spawn(s.socket, &config, &pidfd, &placed)
            guard Self.isGone(r) else { return r }
            logger.error("sandbox zygote is gone; starting another", metadata: ["toold.zygote_pid": "\(s.pid)"])
            retire(&s)
            guard restart(&s) else { return -ENOTCONN }
            return cs_zygote_spawn(s.socket, &config, &pidfd, &placed)
        }
    }

    /// Reaps the current zygote: it closed its end, so it is exiting or gone; SIGKILL makes sure.
    private func retire(_ s: inout State) {
        guard s.socket >= 0 else { return }
        close(s.socket)
        s.socket = -1
        kill(s.pid, SIGKILL)
        var status: Int32 = 0
        _ = waitpid(s.pid, &status, 0)
    }

    /// Starts a new zygote unless one was started less than a second ago.
    private func restart(_ s: inout State) -> Bool {
        let now = Posix.monotonicNs()
        guard now &- s.startedAt >= 1_000_000_000 else { return false }
        s.startedAt = now
        guard
            let (socket, pid) = Self.launch(
                executable, logger: logger, failure: "sandbox zygote did not restart; cloning from the daemon meanwhile")
        else { return false }
        s.socket = socket
        s.pid = pid
        s.restarts += 1
        logger.notice("sandbox zygote restarted", metadata: ["toold.zygote_pid": "\(pid)", "toold.restarts": "\(s.restarts)"])
        return true
    }

    /// Ends the zygote (EOF on its socket) and reaps it; no spawn goes through it afterwards.
    func stop() {
        state.withLock { s in
            s.stopped = true
            guard s.socket >= 0 else { return }
            close(s.socket)
            s.socket = -1
            var status: Int32 = 0
            _ = waitpid(s.pid, &status, 0)
        }
    }
}
