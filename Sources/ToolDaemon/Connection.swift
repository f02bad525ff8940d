import CSystemd
import Foundation
import Logging
import NIOCore
import NIOPosix
import Synchronization
import ToolEngine
import ToolProtocol

/// One client connection, shared between the event loop (which feeds it frames) and the tasks that serve
/// its requests. Requests run concurrently; responses go out as each finishes, in any order.
final class Connection: Sendable {
    let id: UInt64
    let channel: any Channel
    let server: Server
    let logger: Logger
    private let identity: EventLoopPromise<CallerIdentity>
    private let state = Mutex(State())
    /// Bytes handed to the channel and not yet written to the socket: what the client has left unread.
    private let unread = Atomic<Int>(0)
    /// When a write last drained, or the client last had nothing unread (monotonic ns).
    private let progressNs = Atomic<UInt64>(0)

    private struct State {
        var tasks: [UInt64: Task<Void, Never>] = [:]
        var nextTask: UInt64 = 0
        var closed = false
        /// Closed for leaving its answers unread (said once).
        var unreadClosed = false
    }

    init(id: UInt64, channel: any Channel, server: Server) {
        self.id = id
        self.channel = channel
        self.server = server
        self.identity = channel.eventLoop.makePromise(of: CallerIdentity.self)
        var logger = server.logger
        logger[metadataKey: "toold.connection"] = "\(id)"
        self.logger = logger
    }

    /// Reads the peer's credentials from the kernel and resolves them; every request waits for this.
    func start() {
        guard let provider = channel as? any SocketOptionProvider else {
            identity.fail(DaemonError.startup("the channel cannot report peer credentials"))
            return
        }
        let adminGroup = server.configuration.adminGroup
        let credentials: EventLoopFuture<toold_peer_credentials> = provider.unsafeGetSocketOption(
            level: SocketOptionLevel(SOL_SOCKET), name: SocketOptionName(SO_PEERCRED))
        // The kernel's list of the peer's groups; nil when it has more than fit (then the user database decides).
        let groups: EventLoopFuture<[gid_t]?> = provider.unsafeGetSocketOption(
            level: SocketOptionLevel(SOL_SOCKET), name: SocketOptionName(SO_PEERGROUPS)
        ).map { (raw: toold_peer_groups) in PeerIdentity.groups(fromKernel: raw) }
            .recover { _ in nil }
        credentials.and(groups).whenComplete { [self, identity, logger] result in
            switch result {
            case .success(let (cred, kernelGroups)):
                if let refusal = server.admitPeer(self, uid: cred.uid) {
                    logger.debug("connection refused: per-user limit", metadata: ["toold.uid": "\(cred.uid)"])
                    identity.fail(PeerRefused())
                    fail(refusal)
                    return
                }
                // NSS lookups may block (LDAP, sssd): neither on the event loop nor on the cooperative pool;
                // in this uid's turn, so one user's connections waiting on a directory delay no one else's.
                BlockingThreads.lookups.submit(owner: cred.uid) {
                    PeerIdentity.resolve(
                        uid: cred.uid, gid: cred.gid, pid: cred.pid, groups: kernelGroups, adminGroup: adminGroup)
                } completion: { caller in
                    logger.debug("client connected", metadata: ["toold.uid": "\(caller.uid)", "toold.pid": "\(caller.pid)"])
                    identity.succeed(caller)
                }
            case .failure(let error):
                identity.fail(error)
            }
        }
    }

    /// Handles one complete frame payload.
    func receive(_ payload: [UInt8]) {
        let incoming: RPCIncoming
        do {
            incoming = try RPCServerCodec.decode(payload)
        } catch {
            send(error.response.json)
            return
        }
        spawn { [self] in
            let caller: CallerIdentity
            do {
                caller = try await identity.futureResult.get()
            } catch is PeerRefused {
                return  // answered and closing (per-user connection limit)
            } catch {
                logger.error("cannot read peer credentials; closing", metadata: ["toold.error": "\(error)"])
                channel.close(promise: nil)
                return
            }
            switch incoming {
            case .single(let member):
                if let response = await server.dispatcher.respond(to: member, caller: caller, connection: self) {
                    send(response.json)
                }
            case .batch(let members):
                let responses = await withTaskGroup(of: (Int, RPCResponse?).self) { group in
                    for (index, member) in members.enumerated() {
                        group.addTask {
                            (index, await self.server.dispatcher.respond(to: member, caller: caller, connection: self))
                        }
                    }
                    var collected: [(Int, RPCResponse)] = []
                    for await (index, response) in group {
                        if let response { collected.append((index, response)) }
                    }
                    return collected.sorted { $0.0 < $1.0 }.map(\.1)
                }
                if let bytes = RPCServerCodec.encode(responses: responses, asBatch: true) {
                    sendPayload(bytes)
                }
            }
        }
    }

    /// Sends a JSON message (response or notification) as one frame.
    func send(_ message: JSONValue) {
        sendPayload(JSONCoding.serialize(message))
    }

    func sendNotification(method: String, params: JSONValue) {
        send(RPCRequest(id: nil, method: method, params: params).json)
    }

    private func sendPayload(_ payload: [UInt8]) {
        let limit = server.configuration.maxFrameBytes
        if payload.count > limit {
            // Clients read frames up to the same maximum: say so instead of sending what they would refuse.
            let answer = try? JSONCoding.parse(payload)
            if answer?["method"] != nil {
                // A notification (a stream's chunk: up to 64 KiB, six times that as escaped control characters)
                // answers no request: an error in its place would end the client's wait for something else.
                // The result still carries the whole output.
                logger.warning("notification larger than the maximum frame size not sent", metadata: ["toold.bytes": "\(payload.count)"])
                return
            }
            logger.warning("answer larger than the maximum frame size replaced by an error", metadata: ["toold.bytes": "\(payload.count)"])
            let id = answer?["id"] ?? .null
            var error = RPCError.internalError(
                answer?.arrayValue != nil
                    ? "the batch's answers (\(payload.count) bytes) exceed the maximum frame size of \(limit) bytes; send fewer requests per batch"
                    : "the answer (\(payload.count) bytes) exceeds the maximum frame size of \(limit) bytes; lower output_bytes")
            // The work was done and recorded: its id lets the caller find it in the history.
            if let executionID = answer?["result"]?["execution_id"]?.stringValue { error = error.with(executionID: executionID) }
            sendPayload(JSONCoding.serialize(RPCResponse(id: id, outcome: .failure(error)).json))
            return
        }
        let framed = Framing.encode(payload)
        // A client that does not read its answers (or a stream's output) would make the daemon hold them all:
        // past the bound, and when nothing has drained for a second, it is disconnected, which cancels what it
        // started. A client that reads, however slowly or whatever the burst, keeps its connection.
        let (before, waiting) = unread.add(framed.count, ordering: .relaxed)
        let now = DispatchTime.now().uptimeNanoseconds
        if before == 0 { progressNs.store(now, ordering: .relaxed) }
        let bound = Self.unreadBound(maxFrameBytes: limit)
        if waiting > bound && now &- progressNs.load(ordering: .relaxed) > Self.unreadStallNs {
            unread.subtract(framed.count, ordering: .relaxed)
            if state.withLock({ s in
                defer { s.unreadClosed = true }
                return !s.unreadClosed
            }) {
                logger.notice(
                    "closing a connection that leaves its answers unread",
                    metadata: ["toold.unread_bytes": "\(waiting - framed.count)", "toold.bound_bytes": "\(bound)"])
                channel.close(promise: nil)
            }
            return
        }
        let written = channel.eventLoop.makePromise(of: Void.self)
        written.futureResult.whenComplete { [self] _ in
            unread.subtract(framed.count, ordering: .relaxed)
            progressNs.store(DispatchTime.now().uptimeNanoseconds, ordering: .relaxed)
        }
        channel.writeAndFlush(channel.allocator.buffer(bytes: framed), promise: written)
    }

    /// How many answer bytes a client may leave unread before it may be disconnected: four frames of the
    /// largest size (64 MiB at the default), so one answer of any size always fits.
    static func unreadBound(maxFrameBytes: Int) -> Int { 4 * (maxFrameBytes + 4) }
    /// How long nothing may drain, past the bound, before the client counts as not reading.
    static let unreadStallNs: UInt64 = 1_000_000_000

    /// Sends an error and closes the connection once it is written.
    func fail(_ error: RPCError) {
        let buffer = channel.allocator.buffer(
            bytes: Framing.encode(JSONCoding.serialize(RPCResponse(id: .null, outcome: .failure(error)).json)))
        channel.writeAndFlush(buffer).whenComplete { [channel] _ in channel.close(promise: nil) }
    }

    /// Runs `work` as a request task of this connection; it is cancelled when the client goes away.
    private func spawn(_ work: @escaping @Sendable () async -> Void) {
        state.withLock { s in
            guard !s.closed else { return }
            s.nextTask += 1
            let taskID = s.nextTask
            server.requestStarted()
            // Created under the lock: the task's own removal needs the lock, so it cannot run before the insert.
            s.tasks[taskID] = Task { [self] in
                await work()
                _ = state.withLock { $0.tasks.removeValue(forKey: taskID) }
                server.requestFinished()
            }
        }
    }

    /// The client is gone: whatever it started is cancelled (executions are killed).
    func closed() {
        let tasks = state.withLock { s -> [Task<Void, Never>] in
            s.closed = true
            return Array(s.tasks.values)
        }
        identity.fail(ChannelError.ioOnClosedChannel)
        for task in tasks { task.cancel() }
        logger.debug("client disconnected", metadata: ["toold.cancelled_requests": "\(tasks.count)"])
    }

    /// Cancels every request in flight (graceful stop after the grace period).
    func cancelAll() {
        let tasks = state.withLock { Array($0.tasks.values) }
        for task in tasks { task.cancel() }
    }
}

/// A connection refused once its peer was known (per-user connection limit); its requests are dropped.
struct PeerRefused: Error {}

/// The event-loop side of a connection: frames in, limits enforced, requests handed to `Connection`.
final class ConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let server: Server
    private var decoder: FrameDecoder
    private var connection: Connection?
    private var stallTimer: Scheduled<Void>?
    private var refused = false

    init(server: Server) {
        self.server = server
        self.decoder = FrameDecoder(maxFrameBytes: server.configuration.maxFrameBytes)
    }

    func channelActive(context: ChannelHandlerContext) {
        let connection = Connection(id: server.nextConnectionID(), channel: context.channel, server: server)
        if let refusal = server.admit(connection) {
            refused = true
            connection.fail(refusal)
            connection.closed()  // completes its identity promise: nothing will ever wait for it
            return
        }
        self.connection = connection
        connection.start()
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let connection, !refused else { return }
        var buffer = unwrapInboundIn(data)
        if let bytes = buffer.readBytes(length: buffer.readableBytes) { decoder.append(bytes) }
        do {
            while let payload = try decoder.next() {
                connection.receive(Array(payload))
            }
        } catch {
            // The stream can no longer be split into frames: answer, then close.
            refused = true
            stallTimer?.cancel()
            connection.fail(.invalidRequest(error.description))
            return
        }
        armStallTimer(context: context)
    }

    /// A partial frame must make progress within the read timeout; any received byte restarts the clock.
    private func armStallTimer(context: ChannelHandlerContext) {
        stallTimer?.cancel()
        stallTimer = nil
        guard decoder.hasPartialFrame else { return }
        let timeout = server.configuration.readTimeoutMs
        // The timer runs on this handler's event loop, the only place its state is touched; weakly, so a
        // pending timer does not keep a closed connection's handler alive.
        let handler = NIOLoopBound(WeakReference(self), eventLoop: context.eventLoop)
        stallTimer = context.eventLoop.scheduleTask(in: .milliseconds(Int64(timeout))) {
            guard let self = handler.value.object, let connection = self.connection, !self.refused else { return }
            self.refused = true
            connection.logger.notice("closing a connection whose partial frame stalled", metadata: ["toold.timeout_ms": "\(timeout)"])
            connection.fail(.invalidRequest("incomplete frame: no data for \(timeout) ms (read timeout)"))
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        stallTimer?.cancel()
        if let connection {
            connection.closed()
            server.release(connection)
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A reset by the peer is ordinary; anything else is logged. Either way the connection ends.
        connection?.logger.debug("connection error", metadata: ["toold.error": "\(error)"])
        context.close(promise: nil)
    }
}

/// A weak reference, for closures that must not keep their object alive.
private final class WeakReference<Object: AnyObject> {
    weak var object: Object?
    init(_ object: Object) { self.object = object }
}
