// Zygote: the process sandboxes are cloned from (CSandbox/zygote.c), and its
// socket. A zygote can die — the OOM killer, an operator's kill, a bug — and
// every sandbox it cloned dies with it (PR_SET_PDEATHSIG). Without a restart
// each later call would clone from the daemon (slower, an error logged per
// call) and the prepared-sandbox pool would stop for good. So a spawn that
// finds the zygote gone reaps it and starts another, and retries once on it.
// The start runs outside the lock: meanwhile other spawns get -ENOTCONN and
// clone from the daemon. Only a zygote found gone before it had the whole
// request is retried: one that dies after may have cloned the sandbox (with
// this request's fds and cgroup), so that spawn fails (-EOWNERDEAD) rather
// than risk running the command twice. Starts are at least a second apart, doubling after
// each failed start up to a minute (a zygote that cannot start, e.g. one of
// another build after an upgrade, whose hello does not match, is not retried
// in a loop).
#if canImport(Glibc)
import Glibc
#endif
import CSandbox
import Foundation
import Logging
import Synchronization

final class Zygote: Sendable {
    private struct State {
        /// -1 while no zygote runs.
        var socket: Int32
        var pid: pid_t
        /// When the last start was attempted (monotonic ns), and the wait before the next one.
        var startedAt: UInt64
        var backoffNs: UInt64 = Zygote.minimumBackoffNs
        /// A start is under way (outside the lock).
        var starting = false
        var restarts = 0
        var stopped = false
    }

    static let minimumBackoffNs: UInt64 = 1_000_000_000
    static let maximumBackoffNs: UInt64 = 60_000_000_000

    /// The zygote executable (nil: re-run the daemon's own image as the zygote).
    private let executable: String?
    private let logger: Logger
    // Held across a spawn's request and reply; cs_zygote_spawn serializes on its own lock anyway (one
    // zygote, one request at a time), so this adds no waiting — it keeps the socket from being closed
    // or swapped mid-call. Never held while a zygote starts or is reaped.
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

    /// Whether `code` (a negative errno from cs_zygote_spawn) means the zygote is gone and never had the
    /// request: the spawn may be retried elsewhere.
    static func isGone(_ code: pid_t) -> Bool {
        code == -EPIPE || code == -ECONNRESET || code == -ENOTCONN
    }

    /// Clones a sandbox through the zygote: its pid (`pidfd` set), or a negative errno. When the zygote
    /// is found gone it is replaced and the spawn retried once; -ENOTCONN means no zygote runs now
    /// (stopped, starting, or a start not yet due): the caller clones itself. -EOWNERDEAD: the zygote
    /// died holding this request (it is replaced too) — the caller must not retry it.
    func spawn(_ config: inout cs_spawn_config, pidfd: inout Int32, placed: inout Int32) -> pid_t {
        var dead: pid_t = 0
        let (r, startNow) = state.withLock { s -> (pid_t, Bool) in
            guard !s.stopped else { return (-ENOTCONN, false) }
            var r: pid_t = -ENOTCONN
            if s.socket >= 0 {
                r = cs_zygote_spawn(s.socket, &config, &pidfd, &placed)
                guard Self.isGone(r) || r == -EOWNERDEAD else { return (r, false) }
                logger.error("sandbox zygote is gone; starting another", metadata: ["toold.zygote_pid": "\(s.pid)"])
                close(s.socket)
                s.socket = -1
                dead = s.pid
                if r != -EOWNERDEAD { r = -ENOTCONN }
            }
            return (r, claimStart(&s))
        }
        if dead > 0 { Self.reap(dead) }
        guard startNow, start(), r != -EOWNERDEAD else { return r }
        return state.withLock { s -> pid_t in
            guard s.socket >= 0 else { return -ENOTCONN }
            return cs_zygote_spawn(s.socket, &config, &pidfd, &placed)
        }
    }

    /// Whether this caller should start a zygote now: none runs, none is starting, and the wait since the
    /// last start is over.
    private func claimStart(_ s: inout State) -> Bool {
        let now = Posix.monotonicNs()
        guard !s.starting, s.socket < 0, now &- s.startedAt >= s.backoffNs else { return false }
        s.starting = true
        s.startedAt = now
        return true
    }

    /// Starts a zygote (outside the lock) and installs it; false when it did not start.
    private func start() -> Bool {
        let started = Self.launch(executable, logger: logger, failure: "sandbox zygote did not restart; cloning from the daemon meanwhile")
        let orphan = state.withLock { s -> (Int32, pid_t)? in
            s.starting = false
            guard let (socket, pid) = started else {
                s.backoffNs = min(s.backoffNs * 2, Self.maximumBackoffNs)
                return nil
            }
            guard !s.stopped else { return (socket, pid) }
            s.socket = socket
            s.pid = pid
            s.backoffNs = Self.minimumBackoffNs
            s.restarts += 1
            logger.notice("sandbox zygote restarted", metadata: ["toold.zygote_pid": "\(pid)", "toold.restarts": "\(s.restarts)"])
            return nil
        }
        if let (socket, pid) = orphan {
            // Stopped while it started: end it like stop() would.
            close(socket)
            Self.reap(pid)
            return false
        }
        return started != nil
    }

    /// Reaps a zygote that is gone or going (it closed its socket, or ours is closed): SIGKILL makes sure.
    private static func reap(_ pid: pid_t) {
        kill(pid, SIGKILL)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    }

    /// Ends the zygote (EOF on its socket) and reaps it; no spawn goes through it afterwards.
    func stop() {
        let running = state.withLock { s -> (Int32, pid_t)? in
            s.stopped = true
            guard s.socket >= 0 else { return nil }
            defer { s.socket = -1 }
            return (s.socket, s.pid)
        }
        guard let (socket, pid) = running else { return }
        close(socket)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    }
}
