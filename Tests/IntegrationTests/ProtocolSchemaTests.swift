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
}
