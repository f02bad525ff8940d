import Foundation
import Testing
import ToolClient
import ToolProtocol

/// The wire through the real daemon: framing faults, every JSON-RPC error code, batches, concurrency,
/// isolation between clients, timeouts and the connection limit.
@Suite struct WireTests {
    @Test func statusThroughToolc() throws {
        let daemon = try TestDaemon()
        defer { daemon.stop() }
        let human = try daemon.toolc(["status"])
        #expect(human.status == 0, "\(human.stderr)")
        #expect(human.stdout.contains("toold \(TooldVersion.current)"))
        #expect(human.stdout.contains("uid 0"))
        let json = try daemon.toolc(["status", "--json"])
        #expect(json.status == 0)
        let status = try JSONCoding.fromJSON(DaemonStatusResult.self, JSONCoding.parse(json.stdoutBytes))
        #expect(status.caller.uid == 0 && status.caller.admin)
        #expect(status.pid == daemon.process.processIdentifier)
        #expect(["v2", "v1", "hybrid", "none"].contains(status.cgroup.layout))
        #expect(status.executions == ExecutionCounts(running: 0, queued: 0, pendingApproval: 0, perUser: []))
        #expect(status.policy.source.hasSuffix("policy.json") && status.policy.error == nil)
        #expect(status.scheduler.maxRunning >= 1)
        #expect(status.sandbox.prepared.poolSize == 4, "warm_pool_size defaults to 4")
        #expect(human.stdout.contains("prepared:   "))
    }

    /// daemon.status counts the prepared sandboxes: a default call uses one, a call with its own tmp size
    /// cannot; with warm_pool_size 0 there is no pool and nothing is counted.
    @Test func statusCountsPreparedSandboxes() throws {
        let daemon = try TestDaemon(["--warm-pool-size", "2"])
        defer { daemon.stop() }
        let client = try daemon.client()
        defer { client.close() }
        try waitUntil("2 sandboxes prepared", timeout: 20) { try client.status().sandbox.prepared.ready == 2 }
        #expect(try client.exec(ExecParams(argv: ["/bin/true"])).status == .exited)
        var ownTmp = ExecLimits()
        ownTmp.tmpBytes = 8 << 20
        #expect(try client.exec(ExecParams(argv: ["/bin/true"], limits: ownTmp)).status == .exited)
        let prepared = try client.status().sandbox.prepared
        #expect(prepared.poolSize == 2 && prepared.used == 1 && prepared.missed == 0, "\(prepared)")
        try waitUntil("the pool refilled", timeout: 20) { try client.status().sandbox.prepared.ready == 2 }

        let off = try TestDaemon(["--warm-pool-size", "0"])
        defer { off.stop() }
        let offClient = try off.client()
        defer { offClient.close() }
        #expect(try offClient.exec(ExecParams(argv: ["/bin/true"])).status == .exited)
        #expect(try offClient.status().sandbox.prepared == PreparedSandboxes())
        let human = try off.toolc(["status"])
        #expect(human.stdout.contains("prepared:   off"), "\(human.stdout)")
    }

    @Test func nonRootPeerIsSeenByItsKernelCredentials() throws {
        let daemon = try TestDaemon(["--socket-group", "toold"])
        defer { daemon.stop() }
        let socketGroup = try #require(groupID("toold"), "scripts/deps creates the toold group")
        let out = try daemon.toolc(["status", "--json"], asUID: 65534, groups: [socketGroup])
        #expect(out.status == 0, "\(out.stderr)")
        let status = try JSONCoding.fromJSON(DaemonStatusResult.self, JSONCoding.parse(out.stdoutBytes))
        #expect(status.caller.uid == 65534)
        #expect(status.caller.admin == false)
        #expect(status.caller.groups.contains("toold"))
        #expect(status.executions.perUser == nil, "only admins see other users' counts")
        // Without the socket group the kernel refuses the connection: toolc's documented exit code 77.
        let denied = try daemon.toolc(["status"], asUID: 65534)
        #expect(denied.status == 77, "\(denied.stderr)")
        #expect(denied.stderr.contains("permission denied"))
    }

    @Test func toolcExitCodesForMissingDaemonAndProtocolErrors() throws {
        let dir = try TempDir("nodaemon")
        defer { dir.remove() }
        let missing = try runProgram(Binaries.toolc, ["status", "--socket", dir.path + "/none.sock"])
        #expect(missing.status == 69)
        #expect(missing.stderr.split(separator: "\n").count == 1)
        // A peer that answers garbage is a protocol error (76).
        let path = dir.path + "/garbage.sock"
        let server = try RawServer(path: path) { fd in
            var junk: [UInt8] = [0, 0, 0, 3, 120, 121, 122]
            _ = write(fd, &junk, junk.count)
        }
        defer { server.stop() }
        let garbage = try runProgram(Binaries.toolc, ["status", "--socket", path])
        #expect(garbage.status == 76, "\(garbage.stderr)")
    }

    @Test func everyProtocolErrorCode() throws {
        let daemon = try TestDaemon()
        defer { daemon.stop() }
        let c = try daemon.client()
        #expect(try c.roundTrip(raw: [0x7B, 0xFF, 0x7D]).errorCode == RPCErrorCode.parseError)
        #expect(try c.roundTrip(#"{"jsonrpc":"2.0","id":1,"method":"#).errorCode == RPCErrorCode.parseError)
        #expect(try c.roundTrip("[1,2]").arrayValue?.compactMap(\.errorCode) == [-32600, -32600])
        #expect(try c.roundTrip("17").errorCode == RPCErrorCode.invalidRequest)
        let wrongVersion = try c.roundTrip(#"{"jsonrpc":"1.0","id":"v","method":"daemon.status"}"#)
        #expect(wrongVersion.errorCode == RPCErrorCode.invalidRequest && wrongVersion["id"] == "v")
        let unknown = try c.roundTrip(#"{"jsonrpc":"2.0","id":2,"method":"no.such"}"#)
        #expect(unknown.errorCode == RPCErrorCode.methodNotFound)
        #expect(unknown["error"]?["message"]?.stringValue?.contains("no.such") == true)
        let badParams = try c.roundTrip(#"{"jsonrpc":"2.0","id":3,"method":"exec","params":{"argv":"ls","timeout":5}}"#)
        #expect(badParams.errorCode == RPCErrorCode.invalidParams)
        let paths = badParams["error"]?["data"]?["errors"]?.arrayValue?.compactMap { $0["path"]?.stringValue }
        #expect(paths == ["/timeout"])
        let badType = try c.roundTrip(#"{"jsonrpc":"2.0","id":4,"method":"exec","params":{"argv":[1]}}"#)
        #expect(badType["error"]?["data"]?["errors"]?.arrayValue?.first?["path"] == "/argv/0")
        let overMax = try c.roundTrip(#"{"jsonrpc":"2.0","id":5,"method":"exec","params":{"argv":["true"],"limits":{"pids":999999}}}"#)
        #expect(overMax.errorCode == RPCErrorCode.invalidParams)
        #expect(overMax["error"]?["message"]?.stringValue?.contains("maximum of 1024") == true)
        let cancelUnknown = try c.roundTrip(#"{"jsonrpc":"2.0","id":6,"method":"exec.cancel","params":{"execution_id":"ex_none"}}"#)
        #expect(cancelUnknown.errorCode == RPCErrorCode.notFound)
        // The connection survived all of that.
        #expect(try c.call(RPCMethod.daemonStatus)["version"] == .string(TooldVersion.current))
    }

    @Test func zeroLengthFrameIsAnsweredThenClosed() throws {
        let daemon = try TestDaemon()
        defer { daemon.stop() }
        let c = try daemon.client()
        try c.writeAll([0, 0, 0, 0])
        let answer = try c.readMessage()
        #expect(answer.errorCode == RPCErrorCode.invalidRequest)
        #expect(throws: ClientError.self) { try c.readFrame() }
    }

    @Test func oversizeFrameIsRefusedNamingTheLimit() throws {
        let daemon = try TestDaemon(["--max-frame-bytes", "4096"])
        defer { daemon.stop() }
        let c = try daemon.client()
        try c.writeAll([0x7F, 0xFF, 0xFF, 0xFF])  // announces 2 GiB, sends nothing more
        let answer = try c.readMessage()
        #expect(answer.errorCode == RPCErrorCode.invalidRequest)
        #expect(answer["error"]?["message"]?.stringValue?.contains("4096") == true)
        #expect(throws: ClientError.self) { try c.readFrame() }
        #expect(try daemon.client().call(RPCMethod.daemonStatus)["pid"] != nil)
    }

    @Test func batchesAnswerEachMemberAndSkipNotifications() throws {
        let daemon = try TestDaemon()
        defer { daemon.stop() }
        let c = try daemon.client()
        let answer = try c.roundTrip(
            #"[{"jsonrpc":"2.0","id":"a","method":"daemon.status"},{"jsonrpc":"2.0","method":"daemon.status"},{"jsonrpc":"2.0","id":"b","method":"nope"},5]"#)
        let members = try #require(answer.arrayValue)
        #expect(members.count == 3)
        #expect(members[0]["id"] == "a" && members[0]["result"] != nil)
        #expect(members[1]["id"] == "b" && members[1].errorCode == RPCErrorCode.methodNotFound)
        #expect(members[2].errorCode == RPCErrorCode.invalidRequest)
        // A batch of notifications only gets no answer at all: the next answer is for the next request.
        try c.sendFrame(Array(#"[{"jsonrpc":"2.0","method":"daemon.status"}]"#.utf8))
        #expect(try c.call(RPCMethod.daemonStatus)["version"] != nil)
    }

    /// Each member of a batch runs as a task: a frame of 479,000 small notifications held 1.1 GB of the
    /// daemon. The member count is bounded; a batch at the bound is served, one over it is refused whole.
    @Test func aBatchOverTheMemberBoundIsRefusedAndNothingRuns() throws {
        let daemon = try TestDaemon()
        defer { daemon.stop() }
        let c = try daemon.client()
        let status = #"{"jsonrpc":"2.0","id":1,"method":"daemon.status"}"#
        let full = try c.roundTrip("[" + Array(repeating: status, count: RPCServerCodec.maxBatchMembers).joined(separator: ",") + "]")
        #expect(full.arrayValue?.count == RPCServerCodec.maxBatchMembers)
        // One over, the extra member an exec that would leave a trace in the history had it run.
        let exec = #"{"jsonrpc":"2.0","id":2,"method":"exec","params":{"argv":["true"]}}"#
        let over = try c.roundTrip(
            "[" + (Array(repeating: status, count: RPCServerCodec.maxBatchMembers) + [exec]).joined(separator: ",") + "]")
        #expect(over.errorCode == RPCErrorCode.invalidRequest && over["id"] == .null, "\(over)")
        #expect(over["error"]?["message"]?.stringValue?.contains("at most \(RPCServerCodec.maxBatchMembers) members") == true)
        let history = try c.call(RPCMethod.executionsList, params: [:])
        #expect(history["executions"]?.arrayValue?.isEmpty == true, "\(history)")
        #expect(try c.call(RPCMethod.daemonStatus)["version"] != nil)
    }

    /// An answer larger than a frame (output near `output_bytes`, or escaped control characters: a NUL byte is
    /// six in JSON) is replaced by -32603 naming the maximum; the execution ran and is in the history, and
    /// the error's `data.execution_id` says where.
    @Test func anAnswerLargerThanAFrameNamesItsExecution() throws {
        let daemon = try TestDaemon(["--max-frame-bytes", "65536"])
        defer { daemon.stop() }
        let c = try daemon.client()
        defer { c.close() }
        let answer = try c.roundTrip(
            #"{"jsonrpc":"2.0","id":7,"method":"exec","params":{"argv":["head","-c","20000","/dev/zero"],"limits":{"output_bytes":100000}}}"#)
        #expect(answer.errorCode == RPCErrorCode.internalError && answer["id"] == 7, "\(answer)")
        #expect(answer["error"]?["message"]?.stringValue?.contains("maximum frame size of 65536 bytes") == true, "\(answer)")
        let executionID = try #require(answer["error"]?["data"]?["execution_id"], "\(answer)")
        // (executions.get would meet the same bound: the stored output is the same NULs.)
        let row = try c.call(RPCMethod.executionsList, params: ["limit": 1])["executions"]?.arrayValue?.first
        #expect(row?["execution_id"] == executionID && row?["status"] == "exited", "\(row ?? .null)")
        // Streamed, a chunk too large for a frame is not sent, and nothing takes its place: the next message
        // with an id is the call's own answer.
        try c.sendFrame(Array(
            #"{"jsonrpc":"2.0","id":8,"method":"exec","params":{"argv":["head","-c","20000","/dev/zero"],"stream":true,"limits":{"output_bytes":100000}}}"#.utf8))
        var reply = try c.readMessage()
        while reply["method"] != nil { reply = try c.readMessage() }
        #expect(reply["id"] == 8 && reply["error"]?["data"]?["execution_id"] != nil, "\(reply)")
    }

    /// A client that streams an execution and never reads made the daemon hold all of its output (a `yes`
    /// flood: +344 MB in 20 s). Past four frames' worth of unread answers it is disconnected, which cancels
    /// the execution; other clients are served meanwhile.
    @Test func aClientThatLeavesItsAnswersUnreadIsDisconnected() throws {
        let daemon = try TestDaemon(["--max-frame-bytes", "262144"])  // unread bound: about 1 MiB
        defer { daemon.stop() }
        let idle = try daemon.client()
        defer { idle.close() }
        var params = ExecParams(argv: ["sh", "-c", "head -c 30000000 /dev/zero | tr '\\0' y"], timeoutMs: 60_000,
                                limits: ExecLimits(outputBytes: 32 << 20))
        params.stream = true
        _ = try idle.send(RPCMethod.exec, params: JSONCoding.toJSON(params))
        let other = try daemon.client()
        defer { other.close() }
        var row: JSONValue = .null
        waitUntil(20, interval: 100_000) {
            row = (try? other.call(RPCMethod.executionsList, params: ["limit": 1]))?["executions"]?.arrayValue?.first ?? .null
            return row["status"] != nil && row["status"] != "running"
        }
        guard row["status"] == "cancelled" else {
            Issue.record("the execution was not cancelled: \(row)")
            return  // the connection is still open: reading it to its end would wait forever
        }
        // What the socket held is there to read, then the end: the daemon closed it.
        #expect(throws: ClientError.self) { while true { _ = try idle.readFrame() } }
        #expect(try other.call(RPCMethod.daemonStatus)["version"] != nil)
        // A client that reads all along is never cut off, though far more than the bound goes through.
        let reader = try daemon.client()
        defer { reader.close() }
        params.argv = ["sh", "-c", "head -c 8000000 /dev/zero | tr '\\0' y"]
        let request = try reader.send(RPCMethod.exec, params: JSONCoding.toJSON(params))
        var streamed = 0
        var answer = try reader.readMessage()
        while answer["id"] != request {
            streamed += answer["params"]?["data"]?.stringValue?.utf8.count ?? 0
            answer = try reader.readMessage()
        }
        #expect(streamed == 8_000_000, "streamed \(streamed) bytes, then \(answer["error"] ?? .null)")
    }

    @Test func twoHundredConcurrentConnections() async throws {
        let daemon = try TestDaemon()
        defer { daemon.stop() }
        let path = daemon.socketPath
        let ok = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<200 {
                group.addTask {
                    try await Task.detached {
                        let c = try ToolClient(socketPath: path)
                        var good = 0
                        for _ in 0..<5 where try c.call(RPCMethod.daemonStatus)["version"] != nil { good += 1 }
                        return good
                    }.value
                }
            }
            return try await group.reduce(0, +)
        }
        #expect(ok == 1000)
    }

    @Test func pipelinedRequestsOnOneConnectionAllComplete() throws {
        let daemon = try TestDaemon()
        defer { daemon.stop() }
        let c = try daemon.client()
        let ids = try (0..<100).map { _ in try c.send(RPCMethod.daemonStatus) }
        for id in ids.reversed() { #expect(try c.wait(for: id)["version"] != nil) }
    }

    @Test func garbageFromOneClientDoesNotDisturbAnother() throws {
        let daemon = try TestDaemon()
        defer { daemon.stop() }
        let good = try daemon.client()
        let bad = try daemon.client()
        for round in 0..<20 {
            // Not JSON, wrong envelopes, then a stream that cannot be framed.
            _ = try bad.roundTrip(raw: Array(repeating: UInt8(round), count: 100))
            _ = try bad.roundTrip(#"{"jsonrpc":"2.0","id":[],"method":5}"#)
            #expect(try good.call(RPCMethod.daemonStatus)["version"] != nil)
        }
        try bad.writeAll([0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3])
        #expect(try bad.readMessage().errorCode == RPCErrorCode.invalidRequest)
        #expect(try good.call(RPCMethod.daemonStatus)["version"] != nil)
    }

    @Test func stalledPartialFrameIsClosedAfterTheReadTimeout() throws {
        let daemon = try TestDaemon(["--read-timeout-ms", "300"])
        defer { daemon.stop() }
        let c = try daemon.client()
        try c.writeAll([0, 0, 0, 50, 123])  // 1 of 50 payload bytes, then silence
        let answer = try c.readMessage()
        #expect(answer.errorCode == RPCErrorCode.invalidRequest)
        #expect(answer["error"]?["message"]?.stringValue?.contains("300 ms") == true)
        #expect(throws: ClientError.self) { try c.readFrame() }
        // An idle connection with no partial frame is not a stall.
        let idle = try daemon.client()
        usleep(600_000)
        #expect(try idle.call(RPCMethod.daemonStatus)["version"] != nil)
    }

    @Test func connectionLimitRefusesCleanly() throws {
        let daemon = try TestDaemon(["--max-connections", "3"])
        defer { daemon.stop() }
        usleep(300_000)  // let the daemon see the start-up probe's connection close before counting
        let held = try (0..<3).map { _ in try daemon.client() }
        for c in held { #expect(try c.call(RPCMethod.daemonStatus)["version"] != nil) }
        let extra = try daemon.client()
        let refusal = try extra.readMessage()
        #expect(refusal.errorCode == RPCErrorCode.overloaded)
        #expect(refusal["error"]?["data"]?["retry_after_ms"] != nil)
        #expect(refusal["error"]?["message"]?.stringValue?.contains("3") == true)
        held[0].close()
        usleep(200_000)
        #expect(try daemon.client().call(RPCMethod.daemonStatus)["version"] != nil)
    }

    /// A client that opens `n` connections as one uid, asks `daemon.status` on each and prints what it got
    /// (`ok`, `error CODE MESSAGE` or `closed`), holds them `hold` seconds, closes the first admitted one
    /// and prints what a new connection gets (`again …`).
    static let connectionHolder = #"""
        import json, socket, struct, sys, time
        path, n, hold = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
        def connect():
            s = socket.socket(socket.AF_UNIX); s.connect(path); return s
        def read_exact(s, k):
            data = b""
            while len(data) < k:
                chunk = s.recv(k - len(data))
                if not chunk: return None
                data += chunk
            return data
        def status(s):
            body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "daemon.status"}).encode()
            try: s.sendall(struct.pack(">I", len(body)) + body)
            except OSError: pass
            head = read_exact(s, 4)
            body = head and read_exact(s, struct.unpack(">I", head)[0])
            if not body: return "closed"
            m = json.loads(body)
            return "error %d %s" % (m["error"]["code"], m["error"]["message"]) if "error" in m else "ok"
        socks = [connect() for _ in range(n)]
        answers = [status(s) for s in socks]
        for a in answers: print(a, flush=True)
        time.sleep(hold)
        socks[answers.index("ok")].close()
        # The daemon counts the close once its event loop sees it: retry for a while.
        deadline = time.monotonic() + 10
        again = status(connect())
        while again != "ok" and time.monotonic() < deadline:
            time.sleep(0.1)
            again = status(connect())
        print("again " + again, flush=True)
        """#

    /// One uid holds at most `max_connections_per_user`: its extra connection is refused `overloaded`
    /// naming the limit, while another user and root (not capped) still get in, and the uid gets in again
    /// once it closes one.
    @Test func perUserConnectionLimitKeepsTheOthersIn() throws {
        let daemon = try TestDaemon(["--max-connections-per-user", "2"])
        defer { daemon.stop() }
        let group = groupID("toold") ?? 0
        let dir = try TempDir("conn-holder")
        defer { dir.remove() }
        let outPath = dir.path + "/out"
        _ = FileManager.default.createFile(atPath: outPath, contents: nil)
        let holder = Process()
        holder.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
        holder.arguments = [
            "--reuid", "64501", "--regid", "64501", "--groups", "\(group)", "--", "/usr/bin/python3", "-c",
            Self.connectionHolder, daemon.socketPath, "3", "3",
        ]
        holder.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: outPath))
        try holder.run()
        defer { if holder.isRunning { holder.terminate() } }
        func lines() -> [String] {
            ((try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
        }
        let deadline = Date().addingTimeInterval(20)
        while lines().count < 3 && Date() < deadline { usleep(50_000) }
        // Which of the three is refused depends on which event loop admits first: exactly one is.
        let held = lines()
        #expect(held.filter { $0 == "ok" }.count == 2, "\(held)")
        let refused = held.filter { $0 != "ok" }
        #expect(refused.count == 1 && refused[0].hasPrefix("error \(RPCErrorCode.overloaded) "), "\(held)")
        #expect(refused.first?.contains("2 per user") == true, "\(held)")

        // While 64501 holds its two: another user gets its own two, root is not capped.
        let other = try runProgram(
            "/usr/bin/python3", ["-c", Self.connectionHolder, daemon.socketPath, "2", "0"], asUID: 64502, groups: [group])
        #expect(other.stdout.split(separator: "\n") == ["ok", "ok", "again ok"], "\(other.stdout) \(other.stderr)")
        let rootClients = try (0..<3).map { _ in try daemon.client() }
        for c in rootClients { #expect(try c.call(RPCMethod.daemonStatus)["version"] != nil) }

        holder.waitUntilExit()
        #expect(lines().last == "again ok", "\(lines())")
    }

    @Test func refusesToStealALiveSocketAndReplacesAStaleOne() throws {
        let daemon = try TestDaemon()
        defer { daemon.stop() }
        let second = try runProgram(
            Binaries.toold, ["--socket", daemon.socketPath, "--state-dir", daemon.dir.path + "/state2"])
        #expect(second.status != 0)
        #expect(second.stderr.contains("another daemon is answering"))
        // The refused daemon had set its sandbox runtime up (prepared sandboxes and their cgroups) before it
        // found the socket taken: none of it outlives it.
        let parent = RecordsSandboxCgroups.parentName(stateDirectory: daemon.dir.path + "/state2")
        let left = try runProgram("/usr/bin/find", ["/sys/fs/cgroup", "-maxdepth", "6", "-type", "d", "-name", parent]).stdout
        #expect(left.isEmpty, "left behind: \(left)")
        #expect(try daemon.client().call(RPCMethod.daemonStatus)["version"] != nil)
        // A socket file nobody listens on is stale: a new daemon replaces it.
        let dir = try TempDir("stale")
        defer { dir.remove() }
        let stale = dir.path + "/toold.sock"
        let server = try RawServer(path: stale) { _ in }
        server.stop(unlink: false)
        #expect(FileManager.default.fileExists(atPath: stale))
        let replacement = try TestDaemon(socket: stale)
        defer { replacement.stop() }
        #expect(try replacement.client().call(RPCMethod.daemonStatus)["version"] != nil)
    }

    @Test func badConfigIsAClearStartupError() throws {
        let dir = try TempDir("config")
        defer { dir.remove() }
        let file = dir.path + "/toold.json"
        try #"{"max_connections": "many"}"#.write(toFile: file, atomically: true, encoding: .utf8)
        let out = try runProgram(Binaries.toold, ["--config", file, "--socket", dir.path + "/s.sock"])
        #expect(out.status == 78)
        #expect(out.stderr.contains(file) && out.stderr.contains("max_connections") && out.stderr.contains("integer"))
        try #"{"limits": {"pids": {"default": 50, "max": 10}}}"#.write(toFile: file, atomically: true, encoding: .utf8)
        let limits = try runProgram(Binaries.toold, ["--config", file, "--socket", dir.path + "/s.sock"])
        #expect(limits.status == 78)
        #expect(limits.stderr.contains("limits.pids") && limits.stderr.contains("above the maximum"))
        // Out of range, in the file or as a flag: the error names the field and its range.
        try #"{"refill_wait_ms": 5000}"#.write(toFile: file, atomically: true, encoding: .utf8)
        let wait = try runProgram(Binaries.toold, ["--config", file, "--socket", dir.path + "/s.sock"])
        #expect(wait.status == 78 && wait.stderr.contains("refill_wait_ms") && wait.stderr.contains("between 0 and 1000"))
        try "{}".write(toFile: file, atomically: true, encoding: .utf8)
        let flag = try runProgram(
            Binaries.toold, ["--config", file, "--refill-wait-ms", "2000", "--socket", dir.path + "/s.sock", "--state-dir", dir.path + "/state"])
        #expect(flag.status == 78 && flag.stderr.contains(#"config (flags): "refill_wait_ms""#) && flag.stderr.contains("between 0 and 1000"),
                "a flag's value is not blamed on the file: \(flag.stderr)")
        let missing = try runProgram(Binaries.toold, ["--config", dir.path + "/absent.json"])
        #expect(missing.status == 78 && missing.stderr.contains("absent.json"))
    }
}

/// A minimal Unix socket server that runs `serve` for each connection (protocol-error cases).
final class RawServer: @unchecked Sendable {
    // @unchecked: fd and thread are set in init and only read afterwards.
    let fd: Int32
    let path: String

    init(path: String, serve: @escaping @Sendable (Int32) -> Void) throws {
        self.path = path
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: path.utf8)
            raw[path.utf8.count] = 0
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0, listen(fd, 8) == 0 else { throw TestFailure("cannot listen on \(path)") }
        let listener = fd
        Thread.detachNewThread {
            while true {
                let client = accept(listener, nil, nil)
                if client < 0 { return }
                serve(client)
                close(client)
            }
        }
    }

    func stop(unlink remove: Bool = true) {
        shutdown(fd, Int32(SHUT_RDWR))
        close(fd)
        if remove { unlink(path) }
    }
}
