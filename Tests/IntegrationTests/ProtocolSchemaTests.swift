import Foundation
import JSONSchema
import Testing
import ToolClient
import ToolProtocol

/// protocol/schema/ is the contract: every answer the real daemon gives must validate against it.
@Suite struct ProtocolSchemaTests {
    static func schema(_ name: String) throws -> CompiledSchema {
        let url = Binaries.repoRoot.appendingPathComponent("protocol/schema/\(name).json")
        let data = try Data(contentsOf: url)
        return try CompiledSchema(JSONCoding.parse(Array(data)))
    }

    static func expectValid(_ value: JSONValue, _ schemaName: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let errors = try schema(schemaName).validate(value)
        #expect(errors.isEmpty, "\(schemaName): \(errors) for \(JSONCoding.serializeString(value))", sourceLocation: sourceLocation)
    }

    @Test func everySchemaCompiles() throws {
        let dir = Binaries.repoRoot.appendingPathComponent("protocol/schema")
        let names = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".json") }
        #expect(names.count >= 9)
        for name in names { _ = try Self.schema(String(name.dropLast(5))) }
    }

    @Test func daemonAnswersMatchTheirSchemas() throws {
        let daemon = try TestDaemon()
        defer { daemon.stop() }
        let c = try daemon.client()
        try Self.expectValid(c.call(RPCMethod.daemonStatus), "daemon.status.result")

        var notifications: [RPCRequest] = []
        c.onNotification = { notifications.append($0) }
        let params: JSONValue = ["argv": ["/bin/sh", "-c", "echo out; printf '\\377' >&2; exit 4"], "stream": true]
        try Self.expectValid(params, "exec.params")
        let result = try c.call(RPCMethod.exec, params: params)
        try Self.expectValid(result, "exec.result")
        for note in notifications {
            try Self.expectValid(note.params ?? .null, note.method == RPCMethod.execStarted ? "exec.started.params" : "exec.output.params")
        }
        #expect(notifications.first?.method == RPCMethod.execStarted)

        let failed = try c.call(RPCMethod.exec, params: ["argv": ["/no/such/program"]])
        try Self.expectValid(failed, "exec.result")

        // Error responses: each code the daemon can produce here.
        let raw: [String] = [
            "{", "17", #"{"jsonrpc":"2.0","id":1,"method":"nope"}"#,
            #"{"jsonrpc":"2.0","id":2,"method":"exec","params":{"argv":[],"limits":{"pids":0,"x":1}}}"#,
            #"{"jsonrpc":"2.0","id":3,"method":"exec.cancel","params":{"execution_id":"ex_gone"}}"#,
        ]
        for text in raw { try Self.expectValid(c.roundTrip(text), "error") }
    }

    @Test func cancelAnswerMatchesItsSchema() throws {
        let daemon = try TestDaemon()
        defer { daemon.stop() }
        let c = try daemon.client()
        var started: String?
        c.onNotification = { if $0.method == RPCMethod.execStarted { started = $0.params?["execution_id"]?.stringValue } }
        let id = try c.send(RPCMethod.exec, params: ["argv": ["sleep", "30"], "stream": true])
        let other = try daemon.client()
        for _ in 0..<100 where started == nil {
            // Notifications are read while waiting for a response on the same connection.
            _ = try? c.call(RPCMethod.daemonStatus)
        }
        let executionID = try #require(started)
        try Self.expectValid(["execution_id": .string(executionID)], "exec.cancel.params")
        let cancel = try other.call(RPCMethod.execCancel, params: ["execution_id": .string(executionID)])
        try Self.expectValid(cancel, "exec.cancel.result")
        let result = try c.wait(for: id)
        try Self.expectValid(result, "exec.result")
        #expect(result["status"] == "cancelled")
    }

    // MARK: policy, approvals, scheduling

    static let caller: UInt32 = 64001  // the group's rules: approval for shell, deny patterns, limits
    static let limited: UInt32 = 64002  // one call a minute

    static let policy = """
        {"approval_timeout_ms": 60000,
         "principals": {
           "*": {"redact": [{"name": "api_token", "pattern": "tok_[a-z0-9]{8}"}]},
           "group:toold": {"allow": ["exec", "shell"], "modes": ["sandbox", "read_only"],
                           "limits": {"memory_bytes": 536870912, "timeout_ms": 60000},
                           "rate": {"per_minute": 100, "per_tool_per_hour": 1000}, "concurrency": 2, "cooldown_ms": 0,
                           "require_approval": ["shell"], "deny_patterns": [{"name": "rm_root", "pattern": "rm -rf /$"}]},
           "user:64002": {"rate": {"per_minute": 1}},
           "user:root": {"allow": ["*"], "modes": ["sandbox", "read_only", "network", "trusted"]}
         }}
        """

    /// Every new answer of the policy issue, produced by the real daemon for an admin and for a test uid:
    /// daemon.status, policy.get, exec with mode/queued_ms/redacted, tools.call, approvals.list/decide,
    /// exec.pending_approval, testing.clock.advance, and the errors -32001 (rule), -32002, -32005, -32006,
    /// -32007 (denied and expired).
    @Test func policyAnswersMatchTheirSchemas() throws {
        let daemon = try TestDaemon(["--manual-clock", "--max-running", "1", "--max-queued", "0"], policy: Self.policy)
        defer { daemon.stop() }
        let socketGroup = try #require(groupID("toold"))
        let root = try daemon.client()

        // policy.get: the caller's own, a named user's, a group's.
        for params: JSONValue in [[:], ["user": .string(String(Self.caller))], ["group": "toold"]] {
            try Self.expectValid(params, "policy.get.params")
            let view = try root.call(RPCMethod.policyGet, params: params)
            try Self.expectValid(view, "policy.get.result")
        }
        let group = try root.call(RPCMethod.policyGet, params: ["group": "toold"])
        #expect(group["uid"] == nil && group["subject"] == "group:toold")
        #expect(group["concurrency"] == ["value": 2, "rule": "group:toold"])
        #expect(group["tools"]?.arrayValue?.contains { $0["tool"] == "shell" && $0["verdict"] == "approval" } == true)

        // exec in a mode, with a redacted output; tools.call with one too.
        let execParams: JSONValue = ["argv": ["sh", "-c", "echo tok_abcdefgh"], "mode": "read_only"]
        try Self.expectValid(execParams, "exec.params")
        let exec = try root.call(RPCMethod.exec, params: execParams)
        try Self.expectValid(exec, "exec.result")
        #expect(exec["redacted"] == ["api_token"] && exec["queued_ms"] == 0, "\(exec)")
        let call = try root.call(RPCMethod.toolsCall, params: ["name": "shell", "arguments": ["script": "echo tok_12345678"]])
        try Self.expectValid(call, "tools.call.result")
        #expect(call["redacted"] == ["api_token"], "\(call)")

        // Three calls of a test uid wait for approval: one approved, one denied, one left to expire; a
        // fourth is cancelled by its caller while it waits.
        let scripts = ["echo one", "echo two", "echo three"]
        let peer = try PeerClient(
            socket: daemon.socketPath, uid: Self.caller, groups: [socketGroup],
            requests: scripts.map { (RPCMethod.toolsCall, ["name": "shell", "arguments": ["script": .string($0)]]) })
        try waitUntil("three calls wait for approval") { peer.notifications(RPCMethod.execPendingApproval).count == 3 }
        for note in peer.notifications(RPCMethod.execPendingApproval) {
            try Self.expectValid(note["params"] ?? .null, "exec.pending_approval.params")
        }
        let canceller = try PeerClient(
            socket: daemon.socketPath, uid: Self.caller, groups: [socketGroup],
            requests: [(RPCMethod.toolsCall, ["name": "shell", "arguments": ["script": "echo four"]])], cancelOnPending: true)
        try canceller.finish()
        let cancelled = try #require(canceller.response(1))
        try Self.expectValid(cancelled, "error")
        #expect(cancelled.errorCode == RPCErrorCode.cancelled, "\(cancelled)")
        let cancelAnswer = try #require(canceller.messages.first { $0["id"] != nil && $0["id"] != 1 })
        try Self.expectValid(cancelAnswer["result"] ?? .null, "exec.cancel.result")

        let status = try root.call(RPCMethod.daemonStatus)
        try Self.expectValid(status, "daemon.status.result")
        let mine = status["executions"]?["per_user"]?.arrayValue?.first { $0["uid"] == .int(Int64(Self.caller)) }
        #expect(mine?["pending_approval"] == 3, "\(status)")
        try Self.expectValid(JSONValue.object([:]), "approvals.list.params")
        let list = try root.call(RPCMethod.approvalsList)
        try Self.expectValid(list, "approvals.list.result")
        func pendingID(_ script: String) throws -> JSONValue {
            try #require(list["approvals"]?.arrayValue?.first { $0["arguments"]?["script"] == .string(script) }?["execution_id"])
        }
        let approve: JSONValue = ["execution_id": try pendingID("echo one"), "approve": true, "reason": "fine"]
        let deny: JSONValue = ["execution_id": try pendingID("echo two"), "approve": false, "reason": "not now"]
        for params in [approve, deny] {
            try Self.expectValid(params, "approvals.decide.params")
            try Self.expectValid(root.call(RPCMethod.approvalsDecide, params: params), "approvals.decide.result")
        }
        try waitUntil("the approved and the denied call answered") { peer.response(1) != nil && peer.response(2) != nil }
        let advance: JSONValue = ["ms": 60000]
        try Self.expectValid(advance, "testing.clock.advance.params")
        try Self.expectValid(root.call(RPCMethod.testingClockAdvance, params: advance), "testing.clock.advance.result")
        try peer.finish()
        let approved = try #require(peer.response(1)?["result"])
        try Self.expectValid(approved, "tools.call.result")
        let denied = try #require(peer.response(2)), expired = try #require(peer.response(3))
        for error in [denied, expired] {
            try Self.expectValid(error, "error")
            #expect(error.errorCode == RPCErrorCode.approvalDenied, "\(error)")
        }
        // A call refused after it had an id (announced in exec.pending_approval) names it in data.execution_id.
        #expect(denied["error"]?["data"]?["expired"] == false && denied["error"]?["data"]?["decided_by"] == "root", "\(denied)")
        #expect(expired["error"]?["data"]?["expired"] == true && expired["error"]?["data"]?["decided_by"] == nil, "\(expired)")
        for error in [denied, expired] {
            #expect(error["error"]?["data"]?["execution_id"]?.stringValue?.hasPrefix("ex_") == true, "\(error)")
        }

        // Refusals with their data: policy rules (tool, mode, deny pattern), a rate, a full queue.
        let refusals = try PeerClient(
            socket: daemon.socketPath, uid: Self.caller, groups: [socketGroup],
            requests: [
                (RPCMethod.toolsCall, ["name": "python", "arguments": ["code": "1"]]),
                (RPCMethod.exec, ["argv": ["true"], "mode": "network"]),
                (RPCMethod.exec, ["argv": ["sh", "-c", "rm -rf /"]]),
                (RPCMethod.daemonStatus, .object([:])),
            ])
        try refusals.finish()
        for id in 1...3 {
            let error = try #require(refusals.response(id))
            try Self.expectValid(error, "error")
            #expect(error.errorCode == RPCErrorCode.permissionDenied && error["error"]?["data"]?["rule"] != nil, "\(error)")
        }
        let peerStatus = try #require(refusals.response(4)?["result"])
        try Self.expectValid(peerStatus, "daemon.status.result")
        #expect(peerStatus["executions"]?["per_user"] == nil, "per-user counts are for admins")

        let rated = try PeerClient(
            socket: daemon.socketPath, uid: Self.limited, groups: [socketGroup],
            requests: [(RPCMethod.exec, ["argv": ["true"]]), (RPCMethod.exec, ["argv": ["true"]])])
        try rated.finish()
        // The two calls are handled concurrently: either may be the one refused.
        let answers = [rated.response(1), rated.response(2)].compactMap { $0 }
        #expect(answers.filter { $0["result"] != nil }.count == 1, "\(answers)")
        let rateError = try #require(answers.first { $0.errorCode == RPCErrorCode.rateLimited }, "\(answers)")
        try Self.expectValid(rateError, "error")
        #expect(rateError["error"]?["data"] == ["retry_after_ms": 60000, "rule": "user:64002 rate.per_minute"], "\(rateError)")

        // One sandbox at most, no queue: a second call while one runs is overloaded.
        var started: String?
        root.onNotification = { if $0.method == RPCMethod.execStarted { started = $0.params?["execution_id"]?.stringValue } }
        let sleeper = try root.send(RPCMethod.exec, params: ["argv": ["sleep", "30"], "stream": true])
        let other = try daemon.client()
        try waitUntil("the sleeper started") {
            _ = try? root.call(RPCMethod.daemonStatus)  // reads the notifications
            return started != nil
        }
        let overloaded = try other.roundTrip(#"{"jsonrpc":"2.0","id":9,"method":"exec","params":{"argv":["true"]}}"#)
        try Self.expectValid(overloaded, "error")
        #expect(overloaded.errorCode == RPCErrorCode.overloaded && overloaded["error"]?["data"]?["retry_after_ms"] != nil)
        _ = try other.call(RPCMethod.execCancel, params: ["execution_id": .string(try #require(started))])
        try Self.expectValid(root.wait(for: sleeper), "exec.result")
    }
}
