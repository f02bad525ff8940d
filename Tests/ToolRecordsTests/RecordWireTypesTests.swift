import Foundation
import Testing
import ToolProtocol
import ToolRecords

/// The records' wire types: RFC 3339 times, snake_case fields, flattened metrics, canonical JSON.
@Suite struct RecordWireTypesTests {
    @Test func timestampsPrintInUTCWithMillisecondsAndParseAnyOffset() throws {
        #expect(Timestamp(millisecondsSince1970: 0).rfc3339 == "1970-01-01T00:00:00.000Z")
        #expect(Fixture.t0.rfc3339 == "2026-11-21T00:00:00.000Z")
        #expect(Timestamp(millisecondsSince1970: 951_782_400_123).rfc3339 == "2000-02-29T00:00:00.123Z")
        #expect(Timestamp(millisecondsSince1970: -1).rfc3339 == "1969-12-31T23:59:59.999Z")
        #expect(Timestamp(rfc3339: "2026-11-21T00:00:00Z") == Fixture.t0)
        #expect(Timestamp(rfc3339: "2026-11-21T05:30:00.5+05:30") == Fixture.at(500))
        #expect(Timestamp(rfc3339: "2026-11-20T23:00:00.123456-01:00") == Fixture.at(123), "digits past ms are cut")
        #expect(Timestamp(rfc3339: "2026-11-21t00:00:00z") == Fixture.t0)
        for bad in [
            "2026-11-21", "2026-11-21T00:00:00", "2026-02-29T00:00:00Z", "2026-11-21T24:00:00Z", "2026-12-31T23:59:60Z",
            "2026-11-21T00:00:00.Z", "2026-11-21T00:00:00+0100", "2026-11-21T00:00:00Z ", "２026-11-21T00:00:00Z",
        ] {
            #expect(Timestamp(rfc3339: bad) == nil, "\(bad)")
        }
        for ms: Int64 in [0, 1, 999, 86_399_999, 1_795_219_200_123, -62_135_596_800_000, 253_402_300_799_999] {
            let t = Timestamp(millisecondsSince1970: ms)
            #expect(Timestamp(rfc3339: t.rfc3339) == t, "\(t)")
        }
    }

    @Test func recordEncodesWithSnakeCaseFieldsAndRoundTrips() throws {
        let record = ExecutionRecord(
            executionId: "ex_1", requestId: 7, startedAt: Fixture.t0, finishedAt: Fixture.at(5), method: .toolsCall,
            tool: "shell", user: "ana", uid: 1000, gid: 1000, pid: 42, status: .rateLimited, arguments: ["a": 1],
            stdoutStoredTruncated: false, error: RecordedError(code: -32002, message: "rate limited"))
        let json = try JSONCoding.toJSON(record)
        #expect(json["execution_id"] == "ex_1" && json["request_id"] == 7 && json["method"] == "tools.call")
        #expect(json["started_at"] == "2026-11-21T00:00:00.000Z" && json["status"] == "rate_limited")
        #expect(
            json["stdout_stored_truncated"] == false && json["error"] == ["code": -32002, "message": "rate limited"])
        #expect(json["exit_code"] == nil, "absent optional fields are left out")
        #expect(try JSONCoding.fromJSON(ExecutionRecord.self, json) == record)
        #expect(try JSONCoding.toJSON(record.summary)["started_at"] == "2026-11-21T00:00:00.000Z")
    }

    @Test func toolMetricsFlattenTheirFiguresIntoOneObject() throws {
        let metrics = ToolMetrics(
            tool: "shell",
            figures: ExecutionFigures(
                calls: 3, succeeded: 2, failed: 1, cacheHitRate: 0, successRate: 2.0 / 3,
                durationMs: DurationStats(p50: 1, p95: 2, p99: 2, mean: 1.5)),
            change: MetricsChange(
                calls: MetricChange(previous: 1, relative: 2), successRate: nil, durationMsP50: nil, durationMsP95: nil),
            totals: ExecutionTotals(byStatus: ["exited": 3]))
        let json = try JSONCoding.toJSON(metrics)
        #expect(json["tool"] == "shell" && json["calls"] == 3 && json["rate_limited"] == 0)
        #expect(json["duration_ms"] == ["p50": 1, "p95": 2, "p99": 2, "mean": 1.5])
        #expect(json["change"]?["success_rate"] == .null && json["change"]?["calls"] == ["previous": 1, "relative": 2])
        #expect(json["totals"]?["by_status"] == ["exited": 3])
        #expect(json["figures"] == nil)
        #expect(try JSONCoding.fromJSON(ToolMetrics.self, json) == metrics)
        let user = UserMetrics(user: "ana", uid: 1000, figures: ExecutionFigures(calls: 1))
        #expect(try JSONCoding.fromJSON(UserMetrics.self, JSONCoding.toJSON(user)) == user)
    }

    @Test func everyExecAndToolCallStatusIsAHistoryStatus() {
        for status in ExecStatus.allCases {
            #expect(ExecutionStatus(status).rawValue == status.rawValue && ExecutionStatus(status).isOutcome)
        }
        for status in ToolCallStatus.allCases {
            #expect(ExecutionStatus(status).rawValue == status.rawValue && ExecutionStatus(status).isOutcome)
        }
        #expect(ExecutionStatus.allCases.filter(\.isRefusal).count == 5 && !ExecutionStatus.running.isOutcome)
    }

    @Test func recordErrorsMapToTheProtocolsErrorCodes() {
        #expect(RecordError.notFound(executionID: "ex_1").rpcError.code == RPCErrorCode.notFound)
        #expect(RecordError.permissionDenied("no").rpcError.code == RPCErrorCode.permissionDenied)
        #expect(
            RecordError.invalidParams(path: "/limit", message: "x").rpcError.data?["errors"]?.arrayValue?.first?["path"]
                == "/limit")
        let full = RecordError.diskFull(operation: "record execution ex_1", path: "/var/lib/toold/toold.db").rpcError
        #expect(full.code == RPCErrorCode.internalError && full.message.contains("/var/lib/toold/toold.db is full"))
        #expect(
            RecordError.corrupt(path: "/x.db", detail: "file is not a database").rpcError.message.contains(
                "move it aside"))
    }

    @Test func canonicalJSONIsPinnedByteForByte() {
        let value: JSONValue = [
            "z": [1, 1.5, -0.0, 1e21, 2.5e-7], "a": "quote\" slash\\ nl\n tab\t bell\u{07} é", "é": true, "B": nil,
        ]
        let expected = #"{"B":null,"a":"quote\" slash\\ nl\n tab\t bell\u0007 é","z":[1,1.5,0,1e+21,2.5e-07],"é":true}"#
        #expect(CanonicalJSON.string(value) == expected)
        #expect(CanonicalJSON.serialize(["b": 1, "a": [:]]) == Array(#"{"a":{},"b":1}"#.utf8))
    }
}
