import Foundation
import Testing
import ToolProtocol

/// A JSON-RPC client running as another uid (CI is root; policy tests need callers that are not).
/// It is a small Python program started through `setpriv`, so the daemon sees the test uid and groups
/// in SO_PEERCRED/SO_PEERGROUPS. It sends every request on one connection (pipelined), prints every
/// message it receives as one JSON line, and exits when every request has its response. With
/// `cancelOnPending` it answers each `exec.pending_approval` with `exec.cancel` for that execution.
final class PeerClient: @unchecked Sendable {
    // @unchecked: the Process is only touched by the test that owns this client.
    let process = Process()
    let outURL: URL
    private let dir: TempDir

    static let script = #"""
import json, socket, struct, sys
path, cancel_on_pending = sys.argv[1], sys.argv[2] == "1"
requests = [json.loads(l) for l in sys.stdin if l.strip()]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(path)
def send(obj):
    data = json.dumps(obj).encode()
    s.sendall(struct.pack(">I", len(data)) + data)
waiting = set()
for r in requests:
    send(r)
    if "id" in r: waiting.add(r["id"])
buf = b""
def read_exact(n):
    global buf
    while len(buf) < n:
        chunk = s.recv(65536)
        if not chunk: return None
        buf += chunk
    out, buf = buf[:n], buf[n:]
    return out
next_id = 1000000
while waiting:
    head = read_exact(4)
    if head is None: break
    body = read_exact(struct.unpack(">I", head)[0])
    if body is None: break
    msg = json.loads(body)
    print(json.dumps(msg), flush=True)
    if "id" in msg and "method" not in msg: waiting.discard(msg["id"])
    if cancel_on_pending and msg.get("method") == "exec.pending_approval":
        next_id += 1
        send({"jsonrpc": "2.0", "id": next_id, "method": "exec.cancel", "params": {"execution_id": msg["params"]["execution_id"]}})
        waiting.add(next_id)
"""#

    /// Starts the client; `requests` are (method, params) pairs, numbered 1, 2, … as ids.
    init(
        socket: String, uid: UInt32, groups: [UInt32], requests: [(String, JSONValue)], cancelOnPending: Bool = false
    ) throws {
        dir = try TempDir("peer")
        outURL = dir.url.appendingPathComponent("out")
        let inURL = dir.url.appendingPathComponent("in")
        let lines = requests.enumerated().map { i, r in
            JSONCoding.serializeString(RPCRequest(id: .int(Int64(i + 1)), method: r.0, params: r.1).json)
        }
        try (lines.joined(separator: "\n") + "\n").write(to: inURL, atomically: true, encoding: .utf8)
        _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
        process.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
        let groupList = groups.isEmpty ? ["--clear-groups"] : ["--groups", groups.map(String.init).joined(separator: ",")]
        process.arguments =
            ["--reuid", "\(uid)", "--regid", "\(uid)"] + groupList
            + ["--", "/usr/bin/python3", "-c", Self.script, socket, cancelOnPending ? "1" : "0"]
        process.standardInput = try FileHandle(forReadingFrom: inURL)
        process.standardOutput = try FileHandle(forWritingTo: outURL)
        process.standardError = FileHandle.nullDevice
        try process.run()
    }

    /// Every message received so far.
    var messages: [JSONValue] {
        let text = (try? String(contentsOf: outURL, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").compactMap { try? JSONCoding.parse(Array($0.utf8)) }
    }

    /// The response to request number `id` (1-based), if it arrived.
    func response(_ id: Int) -> JSONValue? {
        messages.first { $0["id"] == .int(Int64(id)) && $0["method"] == nil }
    }

    func notifications(_ method: String) -> [JSONValue] { messages.filter { $0["method"]?.stringValue == method } }

    /// Waits for the client to finish (all responses in), then returns the messages.
    @discardableResult
    func finish(timeout: TimeInterval = 60) throws -> [JSONValue] {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        if process.isRunning {
            kill()
            throw TestFailure("peer client did not finish within \(timeout) s; got: \(messages.count) messages")
        }
        return messages
    }

    /// Drops the connection (the daemon cancels what it started).
    func kill() {
        if process.isRunning { Glibc.kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    deinit {
        kill()
        dir.remove()
    }
}

/// Polls `condition` until it holds (or fails the test after `timeout`).
func waitUntil(_ what: String, timeout: TimeInterval = 30, _ condition: () throws -> Bool) throws {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if try condition() { return }
        usleep(20_000)
    }
    throw TestFailure("timed out waiting until \(what)")
}
