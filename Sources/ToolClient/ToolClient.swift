#if canImport(Glibc)
import Glibc
#endif
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import ToolProtocol

/// Why a call did not produce a result. Each case maps to one documented `toolc` exit code.
public enum ClientError: Error, Sendable, CustomStringConvertible {
    /// No daemon answers on the socket (missing file, refused, or not a socket).
    case unreachable(path: String, errno: Int32)
    /// The socket exists but this user may not connect to it.
    case permissionDenied(path: String)
    /// The peer broke the protocol (bad frame, not JSON-RPC) or closed the connection mid-call.
    case protocolError(String)
    /// The daemon answered with a JSON-RPC error.
    case rpc(RPCError)
    /// The call was interrupted (e.g. by Ctrl-C) before the daemon answered.
    case interrupted

    public var description: String {
        switch self {
        case .unreachable(let path, let err):
            return "cannot reach toold at \(path): \(String(cString: strerror(err))) (is the daemon running? see `systemctl status toold.socket`)"
        case .permissionDenied(let path):
            return "permission denied connecting to \(path) (join the socket's group, e.g. `toold`)"
        case .protocolError(let why): return "protocol error: \(why)"
        case .rpc(let error): return error.message
        case .interrupted: return "interrupted"
        }
    }
}

/// A connection to toold: frames, request ids, and notifications that arrive while waiting for a response.
/// Blocking and single-threaded by design (toolc and the tests drive it from one thread).
public final class ToolClient {
    public static let defaultSocketPath = "/run/toold.sock"

    /// The socket to use: the explicit one, else `TOOLD_SOCKET`, else `/run/toold.sock`.
    public static func socketPath(explicit: String?) -> String {
        if let explicit, !explicit.isEmpty { return explicit }
        if let env = getenv("TOOLD_SOCKET"), env.pointee != 0 { return String(cString: env) }
        return defaultSocketPath
    }

    public let path: String
    public private(set) var fd: Int32
    private var decoder = FrameDecoder(maxFrameBytes: 256 << 20)
    private var nextID: Int64 = 0
    /// Responses that arrived for other ids while waiting (requests may complete out of order).
    private var pending: [JSONValue: RPCResponse] = [:]
    /// Called for every server notification (e.g. `exec.output`).
    public var onNotification: ((RPCRequest) -> Void)?
    /// When set and it becomes readable, a wait is interrupted with `.interrupted` (self-pipe for signals).
    public var interruptFD: Int32 = -1

    public init(socketPath: String) throws(ClientError) {
        path = socketPath
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw .unreachable(path: socketPath, errno: errno) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard socketPath.utf8.count < capacity else {
            Glibc.close(fd)
            fd = -1  // deinit runs for a throwing init of a class: it must not close the number again
            throw .unreachable(path: socketPath, errno: ENAMETOOLONG)
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: socketPath.utf8)
            raw[socketPath.utf8.count] = 0
        }
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        if result != 0 {
            let err = errno
            Glibc.close(fd)
            fd = -1  // deinit runs for a throwing init of a class: it must not close the number again
            if err == EACCES || err == EPERM { throw .permissionDenied(path: socketPath) }
            throw .unreachable(path: socketPath, errno: err)
        }
    }

    deinit { if fd >= 0 { Glibc.close(fd) } }

    public func close() {
        if fd >= 0 { Glibc.close(fd) }
        fd = -1
    }

    /// Calls a method and waits for its result; notifications that arrive meanwhile go to `onNotification`.
    public func call(_ method: String, params: JSONValue? = nil) throws(ClientError) -> JSONValue {
        let id = try send(method, params: params)
        return try wait(for: id)
    }

    /// Calls a method with typed params and result.
    public func call<P: Encodable, R: Decodable>(_ method: String, _ params: P, as: R.Type) throws(ClientError) -> R {
        let json: JSONValue
        do {
            json = try JSONCoding.toJSON(params)
        } catch {
            throw .protocolError("cannot encode params: \(error)")
        }
        let result = try call(method, params: json)
        do {
            return try JSONCoding.fromJSON(R.self, result)
        } catch {
            throw .protocolError("unexpected result for \(method): \(error)")
        }
    }

    /// Sends a request without waiting; returns its id.
    @discardableResult
    public func send(_ method: String, params: JSONValue? = nil) throws(ClientError) -> JSONValue {
        nextID += 1
        let id = JSONValue.int(nextID)
        try sendFrame(JSONCoding.serialize(RPCRequest(id: id, method: method, params: params).json))
        return id
    }

    /// Waits for the response with `id`.
    public func wait(for id: JSONValue) throws(ClientError) -> JSONValue {
        while true {
            if let response = pending.removeValue(forKey: id) {
                switch response.outcome {
                case .success(let result): return result
                case .failure(let error): throw .rpc(error)
                }
            }
            let message = try readMessage()
            if let response = RPCResponse(json: message) {
                // An error without an id answers no request: the daemon refused the connection (too many) or
                // could not read what was sent — the end of this connection, so it ends the wait.
                if response.id == .null, case .failure(let error) = response.outcome,
                    [RPCErrorCode.overloaded, RPCErrorCode.invalidRequest, RPCErrorCode.parseError].contains(error.code)
                {
                    throw .rpc(error)
                }
                pending[response.id] = response
            } else if case .object(let o) = message, let method = o["method"]?.stringValue, o["id"] == nil {
                onNotification?(RPCRequest(id: nil, method: method, params: o["params"]))
            } else {
                throw .protocolError("unexpected message from the daemon: \(JSONCoding.serializeString(message).prefix(200))")
            }
        }
    }

    /// Writes one frame with `payload` (raw: tests use it to send anything at all).
    public func sendFrame(_ payload: [UInt8]) throws(ClientError) {
        try writeAll(Framing.encode(payload))
    }

    /// Writes raw bytes to the socket, framed or not.
    public func writeAll(_ bytes: [UInt8]) throws(ClientError) {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n < 0 {
                let err = errno
                if err == EINTR { continue }
                // The daemon may have refused the frame (e.g. too large) and closed: its answer says why.
                if err == EPIPE || err == ECONNRESET, let answer = try? readMessage(), let response = RPCResponse(json: answer),
                    case .failure(let error) = response.outcome
                {
                    throw .rpc(error)
                }
                throw .protocolError("write to the daemon failed: \(String(cString: strerror(err)))")
            }
            offset += n
        }
    }

    /// Reads the next message (response, notification or batch array).
    public func readMessage() throws(ClientError) -> JSONValue {
        let payload = try readFrame()
        do {
            return try JSONCoding.parse(payload)
        } catch {
            throw .protocolError(error.description)
        }
    }

    /// Reads the next frame's payload; `.protocolError` at end of stream.
    public func readFrame() throws(ClientError) -> [UInt8] {
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            do {
                if let payload = try decoder.next() { return Array(payload) }
            } catch {
                throw .protocolError(error.description)
            }
            try waitReadable()
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 {
                if errno == EINTR { continue }
                throw .protocolError("read from the daemon failed: \(String(cString: strerror(errno)))")
            }
            if n == 0 { throw .protocolError("the daemon closed the connection") }
            decoder.append(chunk[0..<n])
        }
    }

    private func waitReadable() throws(ClientError) {
        guard interruptFD >= 0 else { return }
        while true {
            var fds = [pollfd(fd: fd, events: Int16(POLLIN), revents: 0), pollfd(fd: interruptFD, events: Int16(POLLIN), revents: 0)]
            let n = poll(&fds, 2, -1)
            if n < 0 && errno == EINTR { continue }
            if fds[1].revents != 0 { throw .interrupted }
            return
        }
    }
}
