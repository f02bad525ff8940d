import Foundation
import Testing
import ToolClient
import ToolProtocol

/// Policy through the real daemon, with callers running as different uids (CI is root: the callers drop
/// to test uids through setpriv, so the daemon sees them in SO_PEERCRED and SO_PEERGROUPS).
@Suite struct PolicyTests {
    // Test identities: no passwd entries needed; their names read as their numbers.
    static let alice: UInt32 = 64101  // user-level rules
    static let bob: UInt32 = 64102  // two groups with conflicting rules
    static let carol: UInt32 = 64103  // only the default
    static let devGroup: UInt32 = 64201
    static let opsGroup: UInt32 = 64202

    var socketGroup: UInt32 { groupID("toold") ?? 0 }

    /// Runs requests as `uid` (member of the socket group and `groups`) and returns the responses in order.
    func callAs(
        _ daemon: TestDaemon, _ uid: UInt32, groups: [UInt32] = [], _ requests: [(String, JSONValue)]
    ) throws -> [JSONValue] {
        let peer = try PeerClient(socket: daemon.socketPath, uid: uid, groups: [socketGroup] + groups, requests: requests)
        try peer.finish()
        return (1...requests.count).map { peer.response($0) ?? .null }
    }

    static let matrixPolicy = """
        {"principals": {
          "*": {"allow": ["risk:low"], "deny": ["danger.*"],
                "limits": {"memory_bytes": 268435456}},
          "group:64201": {"allow": ["mid.*", "net.fetch", "exec"], "deny": ["mid.secret"], "modes": ["sandbox", "network"]},
          "group:64202": {"allow": ["mid.secret"], "limits": {"memory_bytes": 134217728, "timeout_ms": 5000}},
          "user:64101": {"allow": ["danger.rm"], "deny": ["low.one"]},
          "user:root": {"allow": ["*"], "modes": ["sandbox", "read_only", "network", "trusted"]}
        }}
        """

    static func matrixTools() throws -> ToolsDirectory {
        let tools = try ToolsDirectory()
        try tools.write("low.one", toolManifest("low.one", argv: ["/bin/true"], risk: "low"))
        try tools.write("low.two", toolManifest("low.two", argv: ["/bin/true"], risk: "low"))
        try tools.write("mid.a", toolManifest("mid.a", argv: ["/bin/true"], risk: "medium"))
        try tools.write("mid.secret", toolManifest("mid.secret", argv: ["/bin/true"], risk: "medium"))
        try tools.write("net.fetch", toolManifest("net.fetch", argv: ["/bin/true"], mode: "network", risk: "medium"))
        try tools.write("danger.rm", toolManifest("danger.rm", argv: ["/bin/true"], risk: "high"))
        return tools
    }

    /// Who may call what, in which mode: user rules over group rules over the default; deny beats allow
    /// within a level; nothing allowed unless a rule allows it; `network` needs an explicit mode grant.
    @Test func principalsToolsAndModesMatrix() throws {
        let tools = try Self.matrixTools()
        defer { tools.remove() }
        let daemon = try TestDaemon(["--tools-dir", tools.path], policy: Self.matrixPolicy)
        defer { daemon.stop() }

        // nil: allowed (and ran); a string: denied by that rule.
        let expected: [(uid: UInt32, groups: [UInt32], tool: String, rule: String?)] = [
            (Self.alice, [], "low.one", #"user:64101 deny "low.one""#),  // user deny beats the default allow
            (Self.alice, [], "low.two", nil),
            (Self.alice, [], "mid.a", "no rule allows \"mid.a\""),
            (Self.alice, [], "danger.rm", nil),  // user allow beats the default deny
            (Self.alice, [], "net.fetch", "no rule allows \"net.fetch\""),
            (Self.bob, [Self.devGroup, Self.opsGroup], "mid.a", nil),
            (Self.bob, [Self.devGroup, Self.opsGroup], "mid.secret", #"group:64201 deny "mid.secret""#),  // deny beats allow in a level
            (Self.bob, [Self.devGroup, Self.opsGroup], "net.fetch", nil),  // network granted by group:64201 modes
            (Self.bob, [Self.devGroup, Self.opsGroup], "low.one", nil),
            (Self.bob, [Self.devGroup, Self.opsGroup], "danger.rm", #"* deny "danger.*""#),
            (Self.bob, [Self.opsGroup], "mid.secret", nil),  // without the dev group, ops' allow stands
            (Self.carol, [], "low.one", nil),
            (Self.carol, [], "mid.a", "no rule allows \"mid.a\""),
            (Self.carol, [], "danger.rm", #"* deny "danger.*""#),
        ]
        for row in expected {
            let response = try callAs(daemon, row.uid, groups: row.groups, [(RPCMethod.toolsCall, ["name": .string(row.tool)])])[0]
            if let rule = row.rule {
                #expect(response.errorCode == RPCErrorCode.permissionDenied, "\(row): \(response)")
                let actual = response["error"]?["data"]?["rule"]?.stringValue ?? ""
                #expect(actual.hasPrefix(rule), "\(row): rule \(actual)")
            } else {
                #expect(response["result"]?["status"] == "exited", "\(row): \(response)")
            }
        }

        // Modes for exec: bob's groups grant sandbox and network, not trusted; carol may not exec at all.
        let bobExec = try callAs(
            daemon, Self.bob, groups: [Self.devGroup],
            [
                (RPCMethod.exec, ["argv": ["/bin/true"], "mode": "network"]),
                (RPCMethod.exec, ["argv": ["/bin/true"], "mode": "trusted"]),
                (RPCMethod.exec, ["argv": ["/bin/true"], "mode": "read_only"]),
            ])
        #expect(bobExec[0]["result"]?["status"] == "exited", "\(bobExec[0])")
        #expect(bobExec[1].errorCode == RPCErrorCode.permissionDenied)
        #expect(bobExec[1]["error"]?["data"]?["rule"] == "group:64201 modes", "\(bobExec[1])")
        #expect(bobExec[2].errorCode == RPCErrorCode.permissionDenied, "read_only is not in bob's modes")
        let carolExec = try callAs(daemon, Self.carol, [(RPCMethod.exec, ["argv": ["/bin/true"]])])[0]
        #expect(carolExec.errorCode == RPCErrorCode.permissionDenied)

        // tools.list shows each caller only what it may call.
        let listed = try callAs(daemon, Self.alice, [(RPCMethod.toolsList, [:])])[0]
        let names = Set(listed["result"]?["tools"]?.arrayValue?.compactMap { $0["name"]?.stringValue } ?? [])
        #expect(names == ["low.two", "danger.rm"], "\(names)")
    }

    /// The most restrictive limit of every matching principal applies: a request above it is refused
    /// naming the maximum and the rule; a tool's own larger value is clamped to it.
    @Test func limitsAreTheSmallestOfToolPolicyAndRequest() throws {
        let tools = try ToolsDirectory()
        defer { tools.remove() }
        try tools.write(
            "slow",
            toolManifest("slow", argv: ["/bin/sleep", "30"], extra: ["timeout_ms": 60_000]))
        try tools.write(
            "chatty",
            toolManifest(
                "chatty", argv: ["/bin/sh", "-c", "head -c 100000 /dev/zero | tr '\\0' x"],
                extra: ["limits": ["output_bytes": 50_000]]))
        let policy = """
            {"principals": {
              "*": {"allow": ["*"], "limits": {"timeout_ms": 20000, "memory_bytes": 268435456, "pids": 100,
                    "cpu_millicores": 1500, "output_bytes": 40000, "file_bytes": 10485760, "tmp_bytes": 33554432}},
              "group:64202": {"limits": {"timeout_ms": 1000, "memory_bytes": 134217728, "pids": 64, "output_bytes": 30000}}
            }}
            """
        let daemon = try TestDaemon(["--tools-dir", tools.path], policy: policy)
        defer { daemon.stop() }

        // Each limit just above its policy maximum: refused, naming the maximum and the rule.
        let over: [(String, JSONValue, String)] = [
            ("timeout_ms", ["argv": ["/bin/true"], "timeout_ms": 1001], "1000 (group:64202)"),
            ("memory_bytes", ["argv": ["/bin/true"], "limits": ["memory_bytes": 134217729]], "134217728 (group:64202)"),
            ("pids", ["argv": ["/bin/true"], "limits": ["pids": 65]], "64 (group:64202)"),
            ("cpu_millicores", ["argv": ["/bin/true"], "limits": ["cpu_millicores": 1501]], "1500 (*)"),
            ("output_bytes", ["argv": ["/bin/true"], "limits": ["output_bytes": 30001]], "30000 (group:64202)"),
            ("file_bytes", ["argv": ["/bin/true"], "limits": ["file_bytes": 10485761]], "10485760 (*)"),
            ("tmp_bytes", ["argv": ["/bin/true"], "limits": ["tmp_bytes": 33554433]], "33554432 (*)"),
        ]
        let answers = try callAs(daemon, Self.bob, groups: [Self.opsGroup], over.map { (RPCMethod.exec, $0.1) })
        for (answer, (name, _, maximum)) in zip(answers, over) {
            #expect(answer.errorCode == RPCErrorCode.invalidParams, "\(name): \(answer)")
            let message = answer["error"]?["message"]?.stringValue ?? ""
            #expect(message.contains("\(name)") && message.contains("policy maximum of \(maximum)"), "\(name): \(message)")
        }
        // At the maxima: accepted.
        let atMax = try callAs(
            daemon, Self.bob, groups: [Self.opsGroup],
            [(RPCMethod.exec, ["argv": ["/bin/true"], "timeout_ms": 1000, "limits": ["memory_bytes": 134217728, "pids": 64]])])[0]
        #expect(atMax["result"]?["status"] == "exited", "\(atMax)")

        // The tool asks for 60 s and 50000 output bytes; policy caps them at 1 s and 30000 for bob.
        let clamped = try callAs(
            daemon, Self.bob, groups: [Self.opsGroup],
            [(RPCMethod.toolsCall, ["name": "slow"]), (RPCMethod.toolsCall, ["name": "chatty"])])
        #expect(clamped[0]["result"]?["status"] == "timeout", "\(clamped[0])")
        #expect((clamped[0]["result"]?["duration_ms"]?.int64Value ?? 0) < 20_000)
        #expect(clamped[1]["result"]?["stdout_truncated"] == true)
        #expect(clamped[1]["result"]?["stdout"]?.stringValue?.utf8.count == 30_000, "output clamped to the policy's 30000")
        // Carol (default only): the tool's smaller 50000 wins over the default's 40000? No: the smallest, 40000.
        let carol = try callAs(daemon, Self.carol, [(RPCMethod.toolsCall, ["name": "chatty"])])[0]
        #expect(carol["result"]?["stdout"]?.stringValue?.utf8.count == 40_000, "\(carol["result"]?["stdout_truncated"] ?? .null)")
    }

    /// Rates and cooldowns, observed exactly on the daemon's manual clock: `retry_after_ms` is when the
    /// oldest counted call leaves its window, or when the cooldown ends.
    @Test func rateLimitsAndCooldownsAreExact() throws {
        let tools = try ToolsDirectory()
        defer { tools.remove() }
        try tools.write("x", toolManifest("x", argv: ["/bin/true"]))
        try tools.write("y", toolManifest("y", argv: ["/bin/true"]))
        let policy = """
            {"principals": {"*": {"allow": ["*"], "rate": {"per_minute": 3, "per_tool_per_minute": 2}, "cooldown_ms": 1000}}}
            """
        let daemon = try TestDaemon(["--tools-dir", tools.path, "--manual-clock"], policy: policy)
        defer { daemon.stop() }
        let c = try daemon.client()
        func call(_ tool: String) -> JSONValue {
            (try? c.call(RPCMethod.toolsCall, params: ["name": .string(tool)])) ?? .null
        }
        func refusal(_ tool: String) -> (retry: Int64?, rule: String?) {
            do {
                _ = try c.call(RPCMethod.toolsCall, params: ["name": .string(tool)])
                return (nil, nil)
            } catch ClientError.rpc(let error) {
                #expect(error.code == RPCErrorCode.rateLimited, "\(error)")
                return (error.data?["retry_after_ms"]?.int64Value, error.data?["rule"]?.stringValue)
            } catch {
                return (nil, "\(error)")
            }
        }
        func advance(_ ms: Int) throws { _ = try c.call(RPCMethod.testingClockAdvance, params: ["ms": .int(Int64(ms))]) }

        // The test clock itself refuses a hostile jump (it must never overflow).
        let jump = try c.send(RPCMethod.testingClockAdvance, params: ["ms": .int(Int64.max)])
        #expect(throws: ClientError.self) { try c.wait(for: jump) }
        #expect(call("x")["status"] == "exited")  // t=0
        #expect(refusal("x") == (1000, "* cooldown_ms"))
        try advance(999)
        #expect(refusal("x") == (1, "* cooldown_ms"))
        try advance(1)
        #expect(call("x")["status"] == "exited")  // t=1000
        try advance(1000)
        #expect(refusal("x") == (58_000, "* rate.per_tool_per_minute"))  // x at 0 and 1000: free at 60000
        #expect(call("y")["status"] == "exited")  // t=2000, third call this minute
        try advance(1000)
        #expect(refusal("y") == (57_000, "* rate.per_minute"))  // the call at 0 leaves at 60000
        try advance(56_999)
        #expect(refusal("y") == (1, "* rate.per_minute"))
        try advance(1)
        #expect(call("y")["status"] == "exited")  // t=60000
        // Refused calls are not counted: the window holds 1000, 2000 and 60000, so the next call fits at
        // 61000 (had the refusals at 3000 and 59999 counted, it would be 63000).
        #expect(refusal("x") == (1000, "* rate.per_minute"))
    }

    /// A user's `concurrency` holds its extra calls in the queue (they start when its own slot frees),
    /// and `queued_ms` says how long they waited.
    @Test func perUserConcurrencyQueuesTheExtraCalls() throws {
        let policy = #"{"principals": {"*": {"allow": ["*"], "concurrency": 1}}}"#
        let daemon = try TestDaemon(policy: policy)
        defer { daemon.stop() }
        // Both calls are in flight at once (one connection, pipelined); either may take the one slot.
        let peer = try PeerClient(
            socket: daemon.socketPath, uid: Self.carol, groups: [socketGroup],
            requests: [
                (RPCMethod.exec, ["argv": ["/bin/sh", "-c", "sleep 1; echo first"]]),
                (RPCMethod.exec, ["argv": ["/bin/sh", "-c", "sleep 1; echo second"]]),
            ])
        let admin = try daemon.client()
        try waitUntil("one runs and one waits") {
            let users = try admin.call(RPCMethod.daemonStatus)["executions"]?["per_user"]?.arrayValue ?? []
            return users.contains { $0["uid"] == .int(Int64(Self.carol)) && $0["running"] == 1 && $0["queued"] == 1 }
        }
        try peer.finish()
        let results = [peer.response(1)?["result"], peer.response(2)?["result"]]
        #expect(results[0]?["stdout"] == "first\n" && results[1]?["stdout"] == "second\n", "\(results)")
        // The one that waited says so: it could start only when the other ended, about a second later.
        let waited = results.compactMap { $0?["queued_ms"]?.int64Value }.sorted()
        #expect(waited.count == 2 && waited[0] == 0 && waited[1] > 0, "\(waited)")
    }

    /// Fairness: one user floods 500 calls; the queue takes its share (the per-user bound) and answers
    /// the rest `overloaded` with retry_after_ms; a second user's calls start at the next free slots
    /// instead of waiting behind the flood.
    @Test func floodFromOneUserDoesNotStarveAnother() throws {
        let policy = #"{"principals": {"*": {"allow": ["*"]}}}"#
        let daemon = try TestDaemon(
            ["--max-running", "3", "--max-queued", "200", "--max-queued-per-user", "50"], policy: policy)
        defer { daemon.stop() }
        let admin = try daemon.client()
        func counts(_ uid: UInt32) throws -> (running: Int64, queued: Int64) {
            let users = try admin.call(RPCMethod.daemonStatus)["executions"]?["per_user"]?.arrayValue ?? []
            let u = users.first { $0["uid"] == .int(Int64(uid)) }
            return (u?["running"]?.int64Value ?? 0, u?["queued"]?.int64Value ?? 0)
        }
        let flooder = Self.alice, other = Self.carol
        // The flood's first three calls take every slot, on a connection we can drop later.
        let holders = try PeerClient(
            socket: daemon.socketPath, uid: flooder, groups: [socketGroup],
            requests: Array(repeating: (RPCMethod.exec, ["argv": ["/bin/sleep", "120"]] as JSONValue), count: 3))
        try waitUntil("the flood holds every slot") { try counts(flooder).running == 3 }
        let flood = try PeerClient(
            socket: daemon.socketPath, uid: flooder, groups: [socketGroup],
            requests: Array(repeating: (RPCMethod.exec, ["argv": ["/bin/sleep", "120"]] as JSONValue), count: 500))
        try waitUntil("the flood fills its share of the queue and the rest is refused") {
            let queued = try counts(flooder).queued
            return flood.messages.filter { $0.errorCode == RPCErrorCode.overloaded }.count == 450 && queued == 50
        }
        let refusal = flood.messages.first { $0.errorCode == RPCErrorCode.overloaded }
        #expect((refusal?["error"]?["data"]?["retry_after_ms"]?.int64Value ?? 0) > 0, "\(refusal ?? .null)")

        let patient = try PeerClient(
            socket: daemon.socketPath, uid: other, groups: [socketGroup],
            requests: [(RPCMethod.exec, ["argv": ["/bin/echo", "one"]]), (RPCMethod.exec, ["argv": ["/bin/echo", "two"]])])
        try waitUntil("the other user's calls wait") { try counts(other).queued == 2 }
        holders.kill()  // three slots free up
        try patient.finish(timeout: 60)
        #expect(patient.response(1)?["result"]?["stdout"] == "one\n")
        #expect(patient.response(2)?["result"]?["stdout"] == "two\n")
        // Under FIFO both would still wait behind 50 two-minute calls; the flood still has most queued.
        #expect(try counts(flooder).queued >= 47)
        flood.kill()
    }

    /// Approvals across two identities: the caller waits (and is told so), an admin sees the call with its
    /// arguments redacted, approves or denies it; undecided calls expire on the policy clock; the caller
    /// can cancel while waiting; nobody decides their own call.
    @Test func approvalsEndToEnd() throws {
        let tools = try ToolsDirectory()
        defer { tools.remove() }
        try tools.write(
            "deploy",
            toolManifest("deploy", properties: ["note": ["type": "string"]], argv: ["/bin/echo", "deployed"], risk: "high"))
        let policy = """
            {"approval_timeout_ms": 5000, "principals": {
              "*": {"allow": ["deploy"], "require_approval": ["risk:high"],
                    "redact": [{"name": "password", "pattern": "password=\\\\S+"}]},
              "user:root": {"allow": ["*"]}}}
            """
        let daemon = try TestDaemon(["--tools-dir", tools.path, "--manual-clock"], policy: policy)
        defer { daemon.stop() }
        let admin = try daemon.client()
        let call: (String, JSONValue) = (RPCMethod.toolsCall, ["name": "deploy", "arguments": ["note": "password=hunter2"]])
        func pending() throws -> [JSONValue] { try admin.call(RPCMethod.approvalsList)["approvals"]?.arrayValue ?? [] }

        // Approved.
        let approved = try PeerClient(socket: daemon.socketPath, uid: Self.alice, groups: [socketGroup], requests: [call])
        try waitUntil("the call waits for approval") { try pending().count == 1 }
        let entry = try pending()[0]
        #expect(entry["uid"] == .int(Int64(Self.alice)) && entry["tool"] == "deploy")
        #expect(entry["rule"] == #"* require_approval "risk:high""#)
        #expect(entry["arguments"]?["note"] == "[REDACTED:password]", "\(entry)")
        let id = entry["execution_id"] ?? .null
        // The caller is told too (the notification may arrive just after the call is listed).
        try waitUntil("the caller is told it waits") { !approved.notifications(RPCMethod.execPendingApproval).isEmpty }
        #expect(approved.notifications(RPCMethod.execPendingApproval).first?["params"]?["execution_id"] == id)
        #expect(approved.notifications(RPCMethod.execPendingApproval).first?["params"]?["tool"] == "deploy")
        _ = try admin.call(RPCMethod.approvalsDecide, params: ["execution_id": id, "approve": true])
        try approved.finish()
        #expect(approved.response(1)?["result"]?["stdout"] == "deployed\n", "\(approved.messages)")

        // Denied, with the reason and who decided.
        let denied = try PeerClient(socket: daemon.socketPath, uid: Self.alice, groups: [socketGroup], requests: [call])
        try waitUntil("the call waits for approval") { try pending().count == 1 }
        _ = try admin.call(
            RPCMethod.approvalsDecide, params: ["execution_id": try pending()[0]["execution_id"] ?? .null, "approve": false, "reason": "not today"])
        try denied.finish()
        let deniedError = denied.response(1)?["error"]
        #expect(deniedError?["code"] == .int(Int64(RPCErrorCode.approvalDenied)))
        #expect(deniedError?["data"]?["expired"] == false && deniedError?["data"]?["decided_by"] == "root")
        #expect(deniedError?["message"]?.stringValue?.contains("not today") == true)

        // Expired: nobody decides within approval_timeout_ms on the policy clock.
        let expiring = try PeerClient(socket: daemon.socketPath, uid: Self.alice, groups: [socketGroup], requests: [call])
        try waitUntil("the call waits for approval") { try pending().count == 1 }
        #expect(try pending()[0]["expires_in_ms"] == 5000)
        _ = try admin.call(RPCMethod.testingClockAdvance, params: ["ms": 4999])
        #expect(try pending().count == 1)
        _ = try admin.call(RPCMethod.testingClockAdvance, params: ["ms": 1])
        try expiring.finish()
        #expect(expiring.response(1)?["error"]?["data"]?["expired"] == true, "\(expiring.messages)")
        #expect(try pending().isEmpty)

        // Cancelled by its caller while waiting.
        let cancelling = try PeerClient(
            socket: daemon.socketPath, uid: Self.alice, groups: [socketGroup], requests: [call], cancelOnPending: true)
        try cancelling.finish()
        #expect(cancelling.response(1)?["error"]?["code"] == .int(Int64(RPCErrorCode.cancelled)), "\(cancelling.messages)")
        #expect(try pending().isEmpty)

        // A non-admin may not list or decide; an admin may not decide its own call.
        let nosy = try callAs(daemon, Self.carol, [(RPCMethod.approvalsList, [:])])[0]
        #expect(nosy.errorCode == RPCErrorCode.permissionDenied)
        let own = try PeerClient(socket: daemon.socketPath, uid: 0, groups: [], requests: [call])
        try waitUntil("root's own call waits") { try pending().count == 1 }
        let selfDecide = try admin.send(
            RPCMethod.approvalsDecide, params: ["execution_id": try pending()[0]["execution_id"] ?? .null, "approve": true])
        #expect(throws: ClientError.self) { try admin.wait(for: selfDecide) }
        #expect(try pending().count == 1)
        own.kill()
        try waitUntil("a dropped connection withdraws its call") { try pending().isEmpty }
    }

    /// `deny_patterns` refuse a call whose arguments match, naming the rule; nothing runs. A value crafted
    /// to make a pattern backtrack without end (ReDoS) cannot be decided within the time limit: refused too.
    @Test func denyPatternsRefuseMatchingArguments() throws {
        let tools = try ToolsDirectory()
        defer { tools.remove() }
        try tools.write("note", toolManifest("note", properties: ["text": ["type": "string"]], argv: ["/bin/true"]))
        let policy = """
            {"principals": {"*": {"allow": ["*"], "deny_patterns": [
                {"name": "wipe", "pattern": "rm\\\\s+-rf"}, {"name": "loop", "pattern": "^(a+)+$"}]}}}
            """
        let daemon = try TestDaemon(["--tools-dir", tools.path], policy: policy)
        defer { daemon.stop() }
        let answers = try callAs(
            daemon, Self.carol,
            [
                (RPCMethod.exec, ["argv": ["/bin/sh", "-c", "rm  -rf /workspace"]]),
                (RPCMethod.exec, ["argv": ["/bin/true"], "env": ["X": "rm -rf x"]]),
                (RPCMethod.toolsCall, ["name": "note", "arguments": ["text": "please rm -rf it"]]),
                (RPCMethod.toolsCall, ["name": "note", "arguments": ["text": "harmless"]]),
                (RPCMethod.exec, ["argv": ["/bin/echo", .string(String(repeating: "a", count: 28) + "!")]]),
            ])
        for answer in answers.prefix(3) {
            #expect(answer.errorCode == RPCErrorCode.permissionDenied, "\(answer)")
            #expect(answer["error"]?["data"]?["rule"] == #"* deny_patterns "wipe""#)
        }
        #expect(answers[3]["result"]?["status"] == "exited")
        #expect(answers[4].errorCode == RPCErrorCode.permissionDenied, "\(answers[4])")
        #expect(answers[4]["error"]?["data"]?["rule"] == #"* deny_patterns "loop""#)
    }

    /// The shipped redaction rules replace secrets in results and in streamed output — a private key
    /// printed over several chunks never leaves in pieces.
    @Test func redactionInOutputsAndStreams() throws {
        let daemon = try TestDaemon()  // the shipped default policy
        defer { daemon.stop() }
        let c = try daemon.client()
        var chunks: [String] = []
        c.onNotification = { note in
            if note.method == RPCMethod.execOutput, let data = note.params?["data"]?.stringValue { chunks.append(data) }
        }
        let script = """
            echo 'user=a password=hunter2 key=AKIAABCDEFGHIJKLMNOP'
            echo 'Authorization: Bearer abcdefghijklmnop123'
            echo '-----BEGIN RSA PRIVATE KEY-----'; sleep 0.2
            echo 'MIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf9Cnzj4p4WGeKLs1Pt8Qu'; sleep 0.2
            echo '-----END RSA PRIVATE KEY-----'
            echo '-----BEGIN OPENSSH PRIVATE KEY-----'; echo 'b3BlbnNzaC1rZXktdjEAAAAABG5vbmU'
            echo '-----END OPENSSH PRIVATE KEY-----'
            echo '------BEGIN RSA PRIVATE KEY-----'; echo '-MIIEpQIBAAKCAQEAremovedInADiff'
            echo '------END RSA PRIVATE KEY-----'
            echo '-----BEGIN PGP PRIVATE KEY BLOCK-----'; echo 'lQOYBGPgpKeyMaterial'; echo '-----END PGP PRIVATE KEY BLOCK-----'
            echo done
            """
        let result = try c.call(RPCMethod.exec, params: ["argv": ["/bin/sh", "-c", .string(script)], "stream": true])
        let stdout = result["stdout"]?.stringValue ?? ""
        #expect(stdout.contains("[REDACTED:password]") && !stdout.contains("hunter2"), "\(stdout)")
        #expect(stdout.contains("[REDACTED:aws_access_key]") && stdout.contains("[REDACTED:bearer_token]"))
        #expect(stdout.contains("[REDACTED:private_key]") && !stdout.contains("MIIBOgIBAAJBAKj34"))
        // An OpenSSH key, and a key removed in a unified diff (its lines behind "-": ------END).
        #expect(!stdout.contains("b3BlbnNzaC1rZXkt") && !stdout.contains("removedInADiff"), "\(stdout)")
        #expect(!stdout.contains("lQOYBGPgpKeyMaterial"), "\(stdout)")
        #expect(stdout.hasSuffix("done\n"))
        let names = Set(result["redacted"]?.arrayValue?.compactMap(\.stringValue) ?? [])
        #expect(names == ["password", "aws_access_key", "bearer_token", "private_key"], "\(names)")
        let streamed = chunks.joined()
        #expect(streamed == stdout, "streamed: \(streamed)")
        #expect(!chunks.contains { $0.contains("MIIBOgIBAAJBAKj34") || $0.contains("hunter2") || $0.contains("removedInADiff") })
    }

    /// Output crafted against a redaction rule cannot hold the daemon. The private-key rule toold shipped
    /// before this test was quadratic on a run of PEM headers without an end (this 640 KB kept a daemon
    /// thread busy for minutes); as an operator's rule now, it gives up within the call's matching budget
    /// and the output is withheld, not released half-seen — in the result and in the stream, naming the
    /// rule — while the daemon answers and redacts ordinary output. The rule shipped now is linear: the
    /// same output passes through it, unredacted (there is no key in it), without giving up.
    @Test func outputThatOutrunsARedactionRuleIsWithheld() throws {
        let policy = #"""
            {"principals": {"*": {"allow": ["*"], "redact": [
                {"name": "private_key", "opens": "-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----",
                 "pattern": "-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----[\\s\\S]*?-----END [A-Z0-9 ]*PRIVATE KEY-----"},
                {"name": "password", "pattern": "password=\\S+"}]}}}
            """#
        let daemon = try TestDaemon(policy: policy)
        defer { daemon.stop() }
        let withheld = "[REDACTED:private_key: withheld, the pattern hit its time limit]"
        let headers = "'-----BEGIN RSA PRIVATE KEY-----\\n' * 20000"
        let hostile: JSONValue = ["/usr/bin/python3", "-c", .string("print(\(headers), end='')")]
        // Two at once, one streamed: as many as this machine's cooperative threads.
        let calls = try PeerClient(
            socket: daemon.socketPath, uid: 0, groups: [],
            requests: [(RPCMethod.exec, ["argv": hostile]), (RPCMethod.exec, ["argv": hostile, "stream": true])])
        let c = try daemon.client()
        #expect(try c.call(RPCMethod.daemonStatus)["version"] != nil)
        let ordinary = try c.call(RPCMethod.exec, params: ["argv": ["/bin/echo", "password=hunter2"]])
        #expect(ordinary["stdout"] == "[REDACTED:password]\n", "\(ordinary)")
        try calls.finish()
        for id in 1...2 {
            let result = calls.response(id)?["result"]
            #expect(result?["stdout"] == .string(withheld), "\(String(describing: result))")
            #expect(result?["redacted"] == ["private_key"], "\(String(describing: result))")
        }
        let streamed = calls.notifications(RPCMethod.execOutput).compactMap { $0["params"]?["data"]?.stringValue }.joined()
        #expect(streamed.hasPrefix(withheld), "\(streamed.prefix(200))")
        #expect(!streamed.contains(String(repeating: "-----BEGIN RSA PRIVATE KEY-----\n", count: 2048)))

        let shipped = try TestDaemon()
        defer { shipped.stop() }
        let plain = try shipped.client().call(RPCMethod.exec, params: ["argv": hostile])
        #expect(plain["stdout"]?.stringValue?.utf8.count == 640_000, "\(plain["stdout"]?.stringValue?.prefix(200) ?? "")")
        #expect(plain["redacted"] == nil)

        // The old rule is what a policy file from an older install holds: each load says to replace it
        // (journal, daemon.status, toolc status); the shipped policy has nothing to say.
        let warnings = try daemon.client().call(RPCMethod.daemonStatus)["policy"]?["warnings"]?.arrayValue ?? []
        #expect(warnings.count == 1, "\(warnings)")
        let warning = warnings.first?.stringValue ?? ""
        #expect(
            warning.hasPrefix(#"principals.*.redact[0] "private_key" is a rule an earlier toold shipped"#)
                && warning.contains("toold --print-default-policy"), "\(warning)")
        #expect(daemon.log.contains("policy: " + warning), "\(daemon.log.suffix(2000))")
        try ProtocolSchemaTests.expectValid(try daemon.client().call(RPCMethod.daemonStatus), "daemon.status.result")
        let status = try daemon.toolc(["status"])
        #expect(status.stdout.contains("warning: " + warning), "\(status.stdout)")
        #expect(try daemon.reloadPolicy(policy)["warnings"] == [.string(warning)])
        try waitUntil("the reload logs the warning again", timeout: 10) {
            daemon.log.components(separatedBy: "policy: " + warning).count - 1 == 2
        }
        #expect(try shipped.client().call(RPCMethod.daemonStatus)["policy"]?["warnings"] == nil)
    }

    /// Strings that each stay under one search's time limit cannot add up to more: every pattern and string
    /// of one call share one matching budget. Here 600 arguments that each cost a backtracking pattern
    /// about a tenth of a second (a minute in all, before) meet a deny pattern — refused once the budget
    /// is spent, undecided counting as a match — and the same pattern as a redaction rule, which withholds
    /// the arguments it cannot get to in the refusal's record.
    @Test func manyNearLimitStringsShareOneMatchingBudget() throws {
        let policy = #"""
            {"principals": {"*": {"allow": ["*"], "deny_patterns": [{"name": "loop", "pattern": "^(a+)+$"}],
                                  "redact": [{"name": "loopy", "pattern": "^(a+)+$"}]}}}
            """#
        let daemon = try TestDaemon(policy: policy)
        defer { daemon.stop() }
        let nearLimit = JSONValue.string(String(repeating: "a", count: 22) + "!")
        let argv = JSONValue.array(["/bin/echo"] + Array(repeating: nearLimit, count: 600))
        let answers = try callAs(daemon, Self.carol, [(RPCMethod.exec, ["argv": argv])])
        #expect(answers[0].errorCode == RPCErrorCode.permissionDenied, "\(answers[0])")
        #expect(answers[0]["error"]?["data"]?["rule"] == #"* deny_patterns "loop""#)
        let admin = try daemon.client()
        let list = try admin.call(RPCMethod.executionsList, params: ["status": "denied", "limit": 1])
        let id = try #require(list["executions"]?.arrayValue?.first?["execution_id"], "\(list)")
        let record = try admin.call(RPCMethod.executionsGet, params: ["execution_id": id])
        let recorded = record["arguments"]?["argv"]?.arrayValue ?? []
        #expect(recorded.count == 601, "\(record)")
        #expect(recorded.first == "/bin/echo")
        #expect(recorded.last == "[REDACTED:loopy: withheld, the pattern hit its time limit]", "\(recorded.last as Any)")
    }

    /// A small text is matched inline only briefly: a deny pattern or a redaction rule that backtracks on a
    /// small argument or output gives up a 5 ms inline attempt and is decided on a matching thread with the
    /// full budget. So four such calls per core at once — refused, withheld, as before — leave the
    /// cooperative pool (one thread per core) free: `daemon.status`, sent after them on the same
    /// connection, is answered first. Before, each held a cooperative thread for the budget's quarter
    /// second, and it came after. A text that takes a pattern longer than the inline attempt but less than
    /// the budget (`^(a+)+$` on twenty a's and a '!': about 25 ms on the CI machine, a tenth of the budget
    /// and five times the inline attempt) is still decided: the call runs, its output is not withheld.
    @Test func smallHostileTextsAreDecidedOffTheCooperativePool() throws {
        let policy = #"""
            {"principals": {"*": {"allow": ["*"], "deny_patterns": [{"name": "loop", "pattern": "^(b+)+$"}],
                                  "redact": [{"name": "loopy", "pattern": "^(a+)+$"}]}}}
            """#
        let daemon = try TestDaemon(policy: policy)
        defer { daemon.stop() }
        func text(_ letter: String, _ count: Int) -> JSONValue { .string(String(repeating: letter, count: count) + "!") }
        let denied: JSONValue = ["argv": ["/bin/echo", text("b", 40)]]
        let withheld: JSONValue = ["argv": ["/usr/bin/printf", text("a", 40)]]
        let each = 2 * ProcessInfo.processInfo.activeProcessorCount
        let empty: JSONValue = [:]
        var requests: [(String, JSONValue)] = Array(repeating: (RPCMethod.exec, denied), count: each)
        requests += Array(repeating: (RPCMethod.exec, withheld), count: each)
        requests.append((RPCMethod.daemonStatus, empty))
        let calls = try PeerClient(socket: daemon.socketPath, uid: 0, groups: [], requests: requests)
        let responses = try calls.finish(timeout: 120).filter { $0["method"] == nil }
        let order: [JSONValue] = responses.map { $0["id"] ?? JSONValue.null }
        #expect(responses.count == requests.count && order.first == .int(Int64(requests.count)), "answered in the order \(order)")
        for id in 1...each {
            let error: JSONValue? = calls.response(id)?["error"]
            #expect(error?["code"] == JSONValue.int(Int64(RPCErrorCode.permissionDenied)), "\(String(describing: error))")
            #expect(error?["data"]?["rule"] == #"* deny_patterns "loop""#, "\(String(describing: error))")
            #expect(error?["message"]?.stringValue?.contains("within its time limit") == true, "\(String(describing: error))")
        }
        for id in each + 1...2 * each {
            let result: JSONValue? = calls.response(id)?["result"]
            #expect(result?["stdout"] == "[REDACTED:loopy: withheld, the pattern hit its time limit]", "\(String(describing: result))")
        }

        let c = try daemon.client()
        defer { c.close() }
        let admitted = try c.call(RPCMethod.exec, params: ["argv": ["/bin/echo", text("b", 20)]])
        #expect(admitted["stdout"] == .string(String(repeating: "b", count: 20) + "!\n"), "\(admitted)")
        let kept = try c.call(RPCMethod.exec, params: ["argv": ["/usr/bin/printf", text("a", 20)]])
        #expect(kept["stdout"] == text("a", 20) && kept["redacted"] == nil, "\(kept)")
    }

    /// The matching threads take turns across callers: one caller's flood of texts that make a deny pattern
    /// run out of time (a quarter second each, sixteen per matching thread, all queued at once — four
    /// seconds of matching) delays another caller's large argument by the jobs already running, not by the
    /// whole flood: it is refused (by a pattern that decides at once) while most of the flood still waits.
    /// Before, the threads served one queue in order, and it came after the flood.
    @Test func theMatchingThreadsTakeTurnsAcrossCallers() throws {
        let policy = #"""
            {"principals": {"*": {"allow": ["*"], "deny_patterns": [{"name": "loop", "pattern": "^(a+)+$"},
                                                                    {"name": "xs", "pattern": "^x+$"}]}}}
            """#
        let daemon = try TestDaemon(policy: policy)
        defer { daemon.stop() }
        let hostile: JSONValue = ["argv": ["/bin/echo", .string(String(repeating: "a", count: 16 << 10) + "!")]]
        let count = 16 * max(2, ProcessInfo.processInfo.activeProcessorCount)  // BlockingThreads.matching's width
        let flood = try PeerClient(
            socket: daemon.socketPath, uid: Self.bob, groups: [socketGroup],
            requests: Array(repeating: (RPCMethod.exec, hostile), count: count))
        defer { flood.kill() }
        func answered(_ client: PeerClient) -> Int { client.messages.filter { $0["method"] == nil }.count }
        // Every one of the flood's requests was read (pipelined) before its first answer, a quarter second in.
        try waitUntil("the flood's first refusal", timeout: 30) { answered(flood) > 0 }
        let large: JSONValue = ["argv": ["/bin/echo", .string(String(repeating: "x", count: 5 << 10))]]
        let other = try PeerClient(
            socket: daemon.socketPath, uid: Self.carol, groups: [socketGroup], requests: [(RPCMethod.exec, large)])
        defer { other.kill() }
        var floodDone = 0
        try waitUntil("the other caller's answer", timeout: 60) {
            floodDone = answered(flood)
            return other.response(1) != nil
        }
        #expect(other.response(1)?["error"]?["data"]?["rule"] == #"* deny_patterns "xs""#, "\(other.messages)")
        #expect(floodDone <= count / 2, "\(floodDone) of the flood's \(count) calls were answered before the other caller's")
        try flood.finish(timeout: 120)
        #expect(flood.messages.allSatisfy { $0["error"]?["data"]?["rule"] == #"* deny_patterns "loop""# })
    }

    /// A policy that fails to load leaves the previous one in force, and says why in daemon.status.
    @Test func brokenPolicyOnReloadKeepsThePreviousOne() throws {
        let allowExec = #"{"principals": {"*": {"allow": ["exec"]}}}"#
        let daemon = try TestDaemon(policy: allowExec)
        defer { daemon.stop() }
        func runs() throws -> Bool {
            try callAs(daemon, Self.carol, [(RPCMethod.exec, ["argv": ["/bin/true"]])])[0]["result"]?["status"] == "exited"
        }
        #expect(try runs())
        let broken = try daemon.reloadPolicy(#"{"principals": {"*": {"allow": ["exec"], "modes": ["warp"]}}}"#)
        let error = broken["error"]?.stringValue ?? ""
        #expect(error.contains("principals.*.modes[0]"), "\(broken)")
        #expect(try runs(), "the previous policy stays in force")
        let fixed = try daemon.reloadPolicy(#"{"principals": {"*": {"allow": ["shell"]}}}"#)
        #expect(fixed["error"] == nil)
        #expect(try !runs())
    }

    /// `policy.get`: each user sees its own effective policy with the rule behind each value; only admins
    /// may look at another user's.
    @Test func policyGetExplainsTheEffectivePolicy() throws {
        let tools = try Self.matrixTools()
        defer { tools.remove() }
        let daemon = try TestDaemon(["--tools-dir", tools.path], policy: Self.matrixPolicy)
        defer { daemon.stop() }
        let mine = try callAs(daemon, Self.bob, groups: [Self.devGroup, Self.opsGroup], [(RPCMethod.policyGet, [:])])[0]["result"]
        #expect(mine?["principals"] == ["group:64201", "group:64202", "*"], "\(mine ?? .null)")
        #expect(mine?["limits"]?["memory_bytes"] == ["value": 134217728, "rule": "group:64202"])
        #expect(mine?["modes"]?["value"] == ["sandbox", "network"])
        let secret = mine?["tools"]?.arrayValue?.first { $0["tool"] == "mid.secret" }
        #expect(secret?["verdict"] == "deny" && secret?["rule"] == #"group:64201 deny "mid.secret""#)
        let other = try callAs(daemon, Self.bob, groups: [Self.devGroup], [(RPCMethod.policyGet, ["user": "64101"])])[0]
        #expect(other.errorCode == RPCErrorCode.permissionDenied)
        let asAdmin = try daemon.client().call(RPCMethod.policyGet, params: ["user": "64101"])
        #expect(asAdmin["principals"] == ["user:64101", "*"], "\(asAdmin)")
    }
}
