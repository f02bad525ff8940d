/// The frame format of the toold wire: a 4-byte unsigned big-endian length N, then N bytes of UTF-8 JSON.
public enum Framing {
    /// Size of the length prefix.
    public static let headerBytes = 4
    /// Default maximum payload size (16 MiB); the daemon's `max_frame_bytes` setting overrides it.
    public static let defaultMaxFrameBytes = 16 * 1024 * 1024

    /// Prefixes `payload` with its length. The caller keeps payloads within the maximum frame size
    /// (`Connection` refuses larger results); a payload beyond 4 GiB cannot be framed at all.
    public static func encode(_ payload: some Collection<UInt8>) -> [UInt8] {
        precondition(payload.count <= Int(UInt32.max), "frame payload of \(payload.count) bytes cannot be framed")
        let n = UInt32(payload.count)
        var out: [UInt8] = []
        out.reserveCapacity(payload.count + headerBytes)
        out.append(UInt8(truncatingIfNeeded: n >> 24))
        out.append(UInt8(truncatingIfNeeded: n >> 16))
        out.append(UInt8(truncatingIfNeeded: n >> 8))
        out.append(UInt8(truncatingIfNeeded: n))
        out.append(contentsOf: payload)
        return out
    }
}

/// Why the byte stream cannot go on: the connection must be answered with an error and closed.
public enum FrameError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A length prefix of zero.
    case emptyFrame
    /// A length prefix above the maximum. Nothing of the payload was read or allocated.
    case frameTooLarge(length: UInt32, maximum: Int)

    public var description: String {
        switch self {
        case .emptyFrame: return "frame length is 0; a frame carries 1 to N bytes of JSON"
        case .frameTooLarge(let length, let maximum):
            return "frame length \(length) exceeds the maximum frame size of \(maximum) bytes"
        }
    }
}

/// Splits a byte stream into frame payloads. A small state machine with no I/O: feed it bytes as they
/// arrive (`append`), then take complete payloads (`next`) until it returns nil (needs more data).
///
/// The length is checked before any payload byte is buffered beyond what the peer already sent, so an
/// oversized prefix never causes an allocation of its size.
public struct FrameDecoder: Sendable {
    public let maxFrameBytes: Int
    private var buffer: [UInt8] = []
    private var readIndex = 0

    public init(maxFrameBytes: Int = Framing.defaultMaxFrameBytes) {
        self.maxFrameBytes = maxFrameBytes
    }

    /// Bytes received but not yet returned as a frame.
    public var bufferedBytes: Int { buffer.count - readIndex }

    /// True while part of a frame (header or payload) has arrived but not all of it.
    public var hasPartialFrame: Bool { bufferedBytes > 0 }

    public mutating func append(_ bytes: some Collection<UInt8>) {
        if readIndex > 0 && readIndex >= buffer.count / 2 {
            // Compact so the buffer does not grow with the connection's lifetime.
            buffer.removeFirst(readIndex)
            readIndex = 0
        }
        buffer.append(contentsOf: bytes)
    }

    /// The next complete payload, or nil when more bytes are needed.
    /// After it throws, the decoder is in an unusable state: close the connection.
    public mutating func next() throws(FrameError) -> ArraySlice<UInt8>? {
        guard bufferedBytes >= Framing.headerBytes else { return nil }
        let h = readIndex
        let length =
            UInt32(buffer[h]) << 24 | UInt32(buffer[h + 1]) << 16 | UInt32(buffer[h + 2]) << 8 | UInt32(buffer[h + 3])
        if length == 0 { throw .emptyFrame }
        if UInt64(length) > UInt64(maxFrameBytes) { throw .frameTooLarge(length: length, maximum: maxFrameBytes) }
        let total = Framing.headerBytes + Int(length)
        guard bufferedBytes >= total else { return nil }
        let payload = buffer[(h + Framing.headerBytes)..<(h + total)]
        readIndex += total
        if readIndex == buffer.count {
            buffer.removeAll(keepingCapacity: buffer.capacity <= 64 * 1024)
            readIndex = 0
        }
        return payload
    }
}
