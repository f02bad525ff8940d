import Foundation
import Logging
import NIOCore
import NIOPosix
import Synchronization
import ToolClient
import ToolEngine
import ToolProtocol

/// The listening socket and everything shared by its connections: admission (connection limit, shutdown),
/// the dispatcher, and the count of requests in flight for a graceful stop.
final class Server: Sendable {
    let logger: Logger
    let dispatcher: Dispatcher
    private let settings: Mutex<DaemonConfiguration>
    private let state = Mutex(State())
    private let inFlight = Atomic<Int>(0)
    private let connectionIDs = Atomic<UInt64>(0)

    private struct State {
        var connections: [UInt64: Connection] = [:]
        /// The peer uid of each connection counted against `maxConnectionsPerUser`, and the counts.
        var peers: [UInt64: UInt32] = [:]
        var perUser: [UInt32: Int] = [:]
        var draining = false
    }

    init(configuration: DaemonConfiguration, dispatcher: Dispatcher, logger: Logger) {
        self.settings = Mutex(configuration)
        self.dispatcher = dispatcher
        self.logger = logger
    }

    var configuration: DaemonConfiguration { settings.withLock { $0 } }

    /// Applies a reloaded configuration to new connections and requests.
    func update(_ configuration: DaemonConfiguration) { settings.withLock { $0 = configuration } }

    var isDraining: Bool { state.withLock { $0.draining } }
    var connectionCount: Int { state.withLock { $0.connections.count } }
    var requestsInFlight: Int { inFlight.load(ordering: .relaxed) }

    func nextConnectionID() -> UInt64 { connectionIDs.add(1, ordering: .relaxed).newValue }

    /// Admits a new connection, or says why it is refused.
    func admit(_ connection: Connection) -> RPCError? {
        let limit = configuration.maxConnections
        return state.withLock { s -> RPCError? in
            if s.draining { return .shuttingDown() }
            if s.connections.count >= limit {
                return .overloaded("connection limit of \(limit) reached", retryAfterMs: 1000)
            }
            s.connections[connection.id] = connection
            return nil
        }
    }

    /// Counts an admitted connection against its peer's uid once the kernel has told who it is, or says
    /// why it is refused: one uid (root excepted) holds at most `maxConnectionsPerUser`, so a client that
    /// leaks connections exhausts its own share, not everyone's.
    func admitPeer(_ connection: Connection, uid: UInt32) -> RPCError? {
        guard uid != 0 else { return nil }
        let limit = configuration.maxConnectionsPerUser
        return state.withLock { s -> RPCError? in
            guard s.connections[connection.id] != nil else { return nil }  // already gone: nothing to count
            let held = s.perUser[uid, default: 0]
            if held >= limit {
                return .overloaded("connection limit of \(limit) per user reached (uid \(uid))", retryAfterMs: 1000)
            }
            s.perUser[uid] = held + 1
            s.peers[connection.id] = uid
            return nil
        }
    }

    func release(_ connection: Connection) {
        state.withLock { s in
            s.connections.removeValue(forKey: connection.id)
            guard let uid = s.peers.removeValue(forKey: connection.id) else { return }
            let held = s.perUser[uid, default: 1] - 1
            s.perUser[uid] = held > 0 ? held : nil
        }
    }

    func requestStarted() { inFlight.add(1, ordering: .relaxed) }
    func requestFinished() { inFlight.subtract(1, ordering: .relaxed) }

    /// Opens the listening channel: the socket systemd passed, or a socket bound at the configured path.
    func listen(group: any EventLoopGroup, activatedFD: CInt?) async throws -> any Channel {
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.backlog, value: 512)
            .childChannelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ConnectionHandler(server: self))
                }
            }
        if let fd = activatedFD {
            return try await bootstrap.withBoundSocket(fd).get()
        }
        let path = configuration.socketPath
        try SocketFile.prepare(path: path)
        // Bound under a temporary name and linked into place once its owner and mode are set, so no client
        // finds the socket at `path` before the socket group may connect (a client polling for the socket
        // used to meet EACCES in between). link, not rename: a daemon that bound `path` meanwhile keeps it.
        let staging = path + ".\(getpid()).new"
        guard staging.utf8.count < 108 else {
            // sun_path would not hold the longer name: bind in place (the short window stays).
            let channel = try await bootstrap.bind(unixDomainSocketPath: path).get()
            try SocketFile.setPermissions(path: path, group: configuration.socketGroup, logger: logger)
            return channel
        }
        unlink(staging)  // a crashed daemon's, with this pid
        let channel = try await bootstrap.bind(unixDomainSocketPath: staging).get()
        defer { unlink(staging) }
        do {
            try SocketFile.setPermissions(path: staging, group: configuration.socketGroup, logger: logger)
            guard link(staging, path) == 0 else {
                throw errno == EEXIST
                    ? DaemonError.startup("another daemon bound \(path) while this one started; refusing to take its socket")
                    : DaemonError.system("link \(staging) to \(path)", errno)
            }
        } catch {
            try? await channel.close()
            throw error
        }
        return channel
    }

    /// Stops admitting, waits up to `grace` for requests in flight, then cancels the rest.
    func drain(grace: Duration) async {
        state.withLock { $0.draining = true }
        let deadline = ContinuousClock.now + grace
        while requestsInFlight > 0 && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
        let remaining = requestsInFlight
        if remaining > 0 {
            logger.notice("grace period over; cancelling requests in flight", metadata: ["toold.requests": "\(remaining)"])
            let connections = state.withLock { Array($0.connections.values) }
            for connection in connections { connection.cancelAll() }
            let cancelDeadline = ContinuousClock.now + .seconds(5)
            while requestsInFlight > 0 && ContinuousClock.now < cancelDeadline {
                try? await Task.sleep(for: .milliseconds(20))
            }
        }
        let connections = state.withLock { Array($0.connections.values) }
        for connection in connections { connection.channel.close(promise: nil) }
    }
}

/// The socket file when toold binds it itself (not socket-activated).
enum SocketFile {
    /// Refuses to take over a socket a live daemon answers on; removes a stale one.
    static func prepare(path: String) throws {
        var st = stat()
        guard lstat(path, &st) == 0 else { return }
        guard (st.st_mode & S_IFMT) == S_IFSOCK else {
            throw DaemonError.startup("\(path) exists and is not a socket; refusing to replace it")
        }
        if isLive(path: path) {
            throw DaemonError.startup("another daemon is answering on \(path); refusing to take its socket")
        }
        guard unlink(path) == 0 else { throw DaemonError.system("unlink \(path)", errno) }
    }

    /// A daemon answers when a connection succeeds (the same connect toolc makes).
    static func isLive(path: String) -> Bool {
        guard let client = try? ToolClient(socketPath: path) else { return false }
        client.close()
        return true
    }

    /// Mode 0660, owned by root and the socket group, so members of the group (and root) may connect.
    static func setPermissions(path: String, group: String, logger: Logger) throws {
        if let gid = UserDatabase.groupID(group) {
            guard chown(path, 0, gid) == 0 || getuid() != 0 else { throw DaemonError.system("chown \(path)", errno) }
        } else {
            logger.warning("socket group does not exist; only root can connect", metadata: ["toold.group": "\(group)"])
        }
        guard chmod(path, 0o660) == 0 else { throw DaemonError.system("chmod \(path)", errno) }
    }
}
