import Foundation
import Testing
import ToolProtocol
import ToolRecords

/// protocol/schema/ names exactly the fields the records' wire types read and write. (The integration suite
/// validates the daemon's answers against these schemas; this keeps the schemas and the types in step.)
@Suite struct RecordSchemaFilesTests {
    static let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    static func schema(_ name: String) throws -> JSONValue {
        let data = try Data(contentsOf: repoRoot.appendingPathComponent("protocol/schema/\(name).json"))
        return try JSONCoding.parse(Array(data))
    }

    static func propertyNames(_ schema: JSONValue?) -> Set<String> {
        Set(schema?["properties"]?.objectValue?.keys.map { $0 } ?? [])
    }

    static func required(_ schema: JSONValue?) -> Set<String> {
        Set(schema?["required"]?.arrayValue?.compactMap(\.stringValue) ?? [])
    }

    /// Every key of `value` is a property of `schema`, and every required property is in `value`.
    static func expectMatches(_ value: JSONValue?, _ schema: JSONValue?, _ what: String) {
        let keys = Set(value?.objectValue?.keys.map { $0 } ?? [])
        #expect(keys.subtracting(propertyNames(schema)).isEmpty, "\(what): fields missing from the schema")
        #expect(required(schema).subtracting(keys).isEmpty, "\(what): required fields not sent")
    }

    @Test func paramsSchemasNameExactlyTheFieldsTheTypesAccept() throws {
        #expect(Self.propertyNames(try Self.schema("executions.list.params")) == Set(ExecutionsListParams.knownFields))
        #expect(Self.propertyNames(try Self.schema("executions.get.params")) == Set(ExecutionsGetParams.knownFields))
        #expect(Self.propertyNames(try Self.schema("metrics.get.params")) == Set(MetricsGetParams.knownFields))
        let statuses = try Self.schema("executions.list.params")["properties"]?["status"]?["enum"]?.arrayValue
        #expect(Set(statuses?.compactMap(\.stringValue) ?? []) == Set(ExecutionStatus.allCases.map(\.rawValue)))
    }

    @Test func resultSchemasNameEveryFieldAFullRecordAndFullMetricsCarry() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let store = try MetricsTests.populated(dir)
        var refused = Fixture.start(9000)
        refused.requestID = "r"
        try store.recordRefused(
            RefusedCall(start: refused, status: .denied, error: RecordedError(code: -32001, message: "no")))
        var outcome = Fixture.outcome(.signaled, exitCode: nil, queuedMs: 3)
        outcome.signal = 9
        outcome.failure = "x"
        outcome.stderr = CapturedOutput(bytes: [1], sha256: String(repeating: "b", count: 64))
        try store.recordCompleted(Fixture.start(9001), outcome)

        let list = try JSONCoding.toJSON(store.list(ExecutionsListParams(limit: 2), viewer: Fixture.root))
        let listSchema = try Self.schema("executions.list.result")
        Self.expectMatches(list, listSchema, "executions.list")
        let summarySchema = listSchema["properties"]?["executions"]?["items"]
        for summary in list["executions"]?.arrayValue ?? [] { Self.expectMatches(summary, summarySchema, "summary") }

        let getSchema = try Self.schema("executions.get.result")
        for id in [9000, 9001] {
            let record = try JSONCoding.toJSON(store.get(Fixture.executionID(id), viewer: Fixture.root))
            Self.expectMatches(record, getSchema, "executions.get \(id)")
        }
        let full = try JSONCoding.toJSON(store.get(Fixture.executionID(9001), viewer: Fixture.root))
        #expect(
            Self.propertyNames(getSchema).subtracting(full.objectValue?.keys.map { $0 } ?? [])
                == Set(["error", "exit_code"]),
            "a signaled execution with output carries every field but exit_code and error")

        let metrics = try JSONCoding.toJSON(store.metrics(MetricsTests.period, viewer: Fixture.root, now: Fixture.t0))
        let metricsSchema = try Self.schema("metrics.get.result")
        Self.expectMatches(metrics, metricsSchema, "metrics.get")
        let toolSchema = metricsSchema["properties"]?["tools"]?["items"]
        for tool in metrics["tools"]?.arrayValue ?? [] { Self.expectMatches(tool, toolSchema, "tool metrics") }
        let userSchema = metricsSchema["properties"]?["users"]?["items"]
        for user in metrics["users"]?.arrayValue ?? [] { Self.expectMatches(user, userSchema, "user metrics") }
    }
}
