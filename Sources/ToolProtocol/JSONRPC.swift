/// JSON-RPC 2.0 messages as toold sends and receives them (https://www.jsonrpc.org/specification).

/// An error object of a JSON-RPC response. Thrown by method handlers; mapped to the wire in one place.
public struct RPCError: Error, Sendable, Equatable, Codable, CustomStringConvertible {
    public var code: Int
    public var message: String
    public var data: JSONValue?

    public init(code: Int, message: String, data: JSONValue? = nil) {
        self.code = code
        self.message = message
        self.data = data
    }

    public var description: String { "\(message) (\(code))" }
}

/// Every error code toold puts on the wire. `protocol/PROTOCOL.md` documents each.
public enum RPCErrorCode {
    // JSON-RPC 2.0 standard codes: protocol faults.
    public static let parseError = -32700
    public static let invalidRequest = -32600
    public static let methodNotFound = -32601
    public static let invalidParams = -32602
    public static let internalError = -32603
    // Application range (-32000 … -32099).
    public static let permissionDenied = -32001
    public static let rateLimited = -32002
    public static let invalidArguments = -32003
    public static let notFound = -32004
    public static let overloaded = -32005
    public static let cancelled = -32006
    public static let approvalDenied = -32007
    public static let shuttingDown = -32008
    /// The call's record could not be written (full disk, damaged database): nothing ran.
    public static let recordsUnavailable = -32009
}

/// One `{path, message}` entry of `data.errors` in an invalid-params error.
public struct ParamError: Sendable, Equatable, Codable {
    /// JSON Pointer into `params` (`""` is params itself).
    public var path: String
    public var message: String
    public init(path: String, message: String) {
        self.path = path
        self.message = message
    }
}

extension RPCError {
    public static func parseError(_ why: String) -> RPCError { RPCError(code: RPCErrorCode.parseError, message: why) }
    public static func invalidRequest(_ why: String) -> RPCError {
        RPCError(code: RPCErrorCode.invalidRequest, message: "invalid request: \(why)")
    }
    public static func methodNotFound(_ method: String) -> RPCError {
        RPCError(code: RPCErrorCode.methodNotFound, message: "method not found: \(method)")
    }
    public static func invalidParams(_ errors: [ParamError]) -> RPCError {
        let summary = errors.prefix(3).map { $0.path.isEmpty ? $0.message : "\($0.path): \($0.message)" }
            .joined(separator: "; ")
        let errorsJSON: [JSONValue] = errors.map { .object(["path": .string($0.path), "message": .string($0.message)]) }
        return RPCError(
            code: RPCErrorCode.invalidParams,
            message: "invalid params: \(summary)\(errors.count > 3 ? " (and \(errors.count - 3) more)" : "")",
            data: .object(["errors": .array(errorsJSON)])
        )
    }
    public static func invalidParams(path: String, _ message: String) -> RPCError {
        invalidParams([ParamError(path: path, message: message)])
    }
    public static func internalError(_ why: String) -> RPCError {
        RPCError(code: RPCErrorCode.internalError, message: "internal error: \(why)")
    }
    public static func permissionDenied(_ why: String, rule: String? = nil) -> RPCError {
        RPCError(
            code: RPCErrorCode.permissionDenied, message: "permission denied: \(why)",
            data: rule.map { .object(["rule": .string($0)]) })
    }
    public static func notFound(_ why: String) -> RPCError { RPCError(code: RPCErrorCode.notFound, message: why) }
    public static func overloaded(_ why: String, retryAfterMs: Int) -> RPCError {
        RPCError(
            code: RPCErrorCode.overloaded, message: "overloaded: \(why)",
            data: .object(["retry_after_ms": .int(Int64(retryAfterMs))]))
    }
    public static func cancelled(_ why: String) -> RPCError { RPCError(code: RPCErrorCode.cancelled, message: why) }
    public static func recordsUnavailable(_ why: String) -> RPCError {
        RPCError(code: RPCErrorCode.recordsUnavailable, message: "records unavailable, nothing ran: \(why)")
    }

    /// This error with `data.execution_id` added: the call had an id (the caller may have seen it in a
    /// notification) when it was refused.
    public func with(executionID: String) -> RPCError {
        var object = data?.objectValue ?? [:]
        object["execution_id"] = .string(executionID)
        return RPCError(code: code, message: message, data: .object(object))
    }

    public static func shuttingDown() -> RPCError {
        RPCError(code: RPCErrorCode.shuttingDown, message: "the daemon is shutting down; retry after it restarts")
    }
}

/// A request (with `id`) or notification (without) received by a peer.
public struct RPCRequest: Sendable, Equatable {
    /// The request id (string, number or null). nil for a notification, which gets no response.
    public var id: JSONValue?
    public var method: String
    /// Absent, an object or an array.
    public var params: JSONValue?

    public init(id: JSONValue?, method: String, params: JSONValue? = nil) {
        self.id = id
        self.method = method
        self.params = params
    }

    public var isNotification: Bool { id == nil }

    public var json: JSONValue {
        var o: [String: JSONValue] = ["jsonrpc": "2.0", "method": .string(method)]
        if let id { o["id"] = id }
        if let params { o["params"] = params }
        return .object(o)
    }
}

/// A response to one request.
public struct RPCResponse: Sendable, Equatable {
    public var id: JSONValue
    public var outcome: Result<JSONValue, RPCError>

    public init(id: JSONValue, outcome: Result<JSONValue, RPCError>) {
        self.id = id
        self.outcome = outcome
    }

    public var json: JSONValue {
        var o: [String: JSONValue] = ["jsonrpc": "2.0", "id": id]
        switch outcome {
        case .success(let result): o["result"] = result
        case .failure(let error):
            var e: [String: JSONValue] = ["code": .int(Int64(error.code)), "message": .string(error.message)]
            if let data = error.data { e["data"] = data }
            o["error"] = .object(e)
        }
        return .object(o)
    }

    /// Reads a response object; nil when `value` is not one.
    public init?(json value: JSONValue) {
        guard case .object(let o) = value, o["jsonrpc"] == "2.0", let id = o["id"] else { return nil }
        self.id = id
        if let result = o["result"] {
            outcome = .success(result)
        } else if case .object(let e)? = o["error"], let code = e["code"]?.int64Value,
            let message = e["message"]?.stringValue
        {
            outcome = .failure(RPCError(code: Int(code), message: message, data: e["data"]))
        } else {
            return nil
        }
    }
}

/// What one frame holds, as seen by a server: one message or a batch. Members that are not valid
/// requests are already turned into the error response they deserve.
public enum RPCIncoming: Sendable, Equatable {
    case single(RPCRequestOrError)
    case batch([RPCRequestOrError])
}

public enum RPCRequestOrError: Sendable, Equatable {
    case request(RPCRequest)
    /// An invalid member: answer with this response (id null when none could be read).
    case invalid(RPCResponse)
}

public enum RPCServerCodec {
    /// The most members one batch may hold. Each member runs as a task of its own, so a frame of small
    /// members cost the daemon about 64 times its size in memory (a 16 MiB frame of 479,000 notifications:
    /// 1.1 GB); a bound on the count keeps a frame's cost near its size.
    public static let maxBatchMembers = 128

    /// Reads one frame payload as a server. Throws the response to send when the frame as a whole is
    /// unusable (invalid UTF-8 or JSON, an empty batch or one over `maxBatchMembers`, or neither an object
    /// nor an array).
    public static func decode(_ payload: some Collection<UInt8>) throws(RPCErrorResponse) -> RPCIncoming {
        let value: JSONValue
        do {
            value = try JSONCoding.parse(payload)
        } catch {
            throw RPCErrorResponse(RPCResponse(id: .null, outcome: .failure(.parseError(error.description))))
        }
        switch value {
        case .array(let members):
            if members.isEmpty {
                throw RPCErrorResponse(
                    RPCResponse(id: .null, outcome: .failure(.invalidRequest("a batch must not be empty"))))
            }
            if members.count > maxBatchMembers {
                throw RPCErrorResponse(
                    RPCResponse(
                        id: .null,
                        outcome: .failure(
                            .invalidRequest(
                                "a batch holds at most \(maxBatchMembers) members, this one \(members.count); none was run"))))
            }
            return .batch(members.map(readRequest))
        case .object:
            return .single(readRequest(value))
        default:
            throw RPCErrorResponse(
                RPCResponse(
                    id: .null,
                    outcome: .failure(.invalidRequest("a message must be a JSON object or a batch array, got \(value.typeName)"))))
        }
    }

    static func readRequest(_ value: JSONValue) -> RPCRequestOrError {
        guard case .object(let o) = value else {
            return .invalid(
                RPCResponse(id: .null, outcome: .failure(.invalidRequest("a batch member must be an object, got \(value.typeName)"))))
        }
        // The id is echoed when it is of a valid type, even in an error, so the client can match it.
        var id: JSONValue? = nil
        if let raw = o["id"] {
            switch raw {
            case .double(let d) where d.rounded() == d && !(d > Double(Int64.min) && d < Double(Int64.max)):
                // An integer the parser could not hold in 64 bits (Int64.min itself parses as an integer; the
                // bounds are ±2^63 as doubles): it would come back as 1.8446744073709552e+19, not the id sent.
                return .invalid(
                    RPCResponse(
                        id: .null,
                        outcome: .failure(.invalidRequest("a number \"id\" must fit a 64-bit signed integer; use a string"))))
            case .string, .int, .double, .null: id = raw
            default:
                return .invalid(RPCResponse(id: .null, outcome: .failure(.invalidRequest("\"id\" must be a string, number or null"))))
            }
        }
        func invalid(_ why: String) -> RPCRequestOrError {
            .invalid(RPCResponse(id: id ?? .null, outcome: .failure(.invalidRequest(why))))
        }
        guard o["jsonrpc"] == "2.0" else { return invalid("\"jsonrpc\" must be \"2.0\"") }
        guard case .string(let method)? = o["method"] else { return invalid("\"method\" must be a string") }
        if let params = o["params"] {
            switch params {
            case .object, .array: break
            default: return invalid("\"params\" must be an object or an array")
            }
        }
        return .request(RPCRequest(id: id, method: method, params: o["params"]))
    }

    /// The frame payload for a set of responses to one incoming frame; nil when there is nothing to send
    /// (notifications only).
    public static func encode(responses: [RPCResponse], asBatch: Bool) -> [UInt8]? {
        if asBatch {
            if responses.isEmpty { return nil }
            return JSONCoding.serialize(.array(responses.map(\.json)))
        }
        return responses.first.map { JSONCoding.serialize($0.json) }
    }
}

/// A response thrown while decoding, for frames that cannot be processed at all.
public struct RPCErrorResponse: Error, Sendable, Equatable {
    public var response: RPCResponse
    public init(_ response: RPCResponse) { self.response = response }
}
