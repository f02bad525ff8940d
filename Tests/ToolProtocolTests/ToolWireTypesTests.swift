import Foundation
import Testing
import ToolProtocol

/// The tool wire types: field names as PROTOCOL.md spells them, closed params, and the manifest schema the
/// daemon embeds being the one published in protocol/schema/.
@Suite struct ToolWireTypesTests {
    static let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    @Test func embeddedManifestSchemaIsThePublishedOne() throws {
        let published = try Data(contentsOf: Self.repoRoot.appendingPathComponent("protocol/schema/tool.manifest.json"))
        let embedded = try JSONCoding.parse(Array(ToolManifest.jsonSchema.utf8))
        #expect(try JSONCoding.parse(Array(published)) == embedded, "regenerate Sources/ToolProtocol/Tools+ManifestSchema.swift")
    }

    @Test func manifestSchemaNamesEveryManifestField() throws {
        let schema = try JSONCoding.parse(Array(ToolManifest.jsonSchema.utf8))
        let properties = Set(schema["properties"]?.objectValue?.keys.map { $0 } ?? [])
        #expect(properties == Set(ToolManifest.knownFields))
    }

    @Test func manifestRoundTripsWithSnakeCaseFields() throws {
        let json: JSONValue = [
            "name": "web.fetch", "description": "d", "category": "web_access", "risk": "medium",
            "input_schema": ["type": "object"], "command": ["argv": ["/usr/bin/curl", "{{url}}"], "stdin": "none"],
            "mode": "network", "timeout_ms": 5000, "limits": ["memory_bytes": 67_108_864], "documentation_url": "https://x",
            "idempotent": true, "retry": ["max_attempts": 3, "initial_backoff_ms": 50, "on": ["timeout"]],
            "cache_ttl_s": 60, "required_permissions": ["net"], "requires_approval": false,
            "mounts": [["source": "/srv", "target": "/data", "read_only": true]],
        ]
        let manifest = try JSONCoding.fromJSON(ToolManifest.self, json)
        #expect(manifest.category == .webAccess && manifest.mode == .network)
        #expect(manifest.retry == ToolRetry(maxAttempts: 3, initialBackoffMs: 50, on: ["timeout"]))
        #expect(manifest.limits?.memoryBytes == 67_108_864 && manifest.cacheTtlS == 60)
        #expect(manifest.mounts?.first?.readOnly == true)
        #expect(try JSONCoding.toJSON(manifest) == json)
    }

    @Test func callParamsAreClosedIncludingLimits() {
        #expect(throws: RPCError.self) {
            try ParamsDecoding.decode(ToolCallParams.self, from: ["name": "x", "argument": [:]])
        }
        do {
            _ = try ParamsDecoding.decode(ToolCallParams.self, from: ["name": "x", "limits": ["pid": 1]])
            Issue.record("an unknown limit was accepted")
        } catch {
            #expect(error.data?["errors"]?.arrayValue?.first?["path"] == "/limits/pid")
        }
        let params = try? ParamsDecoding.decode(
            ToolCallParams.self, from: ["name": "x", "arguments": ["a": 1], "timeout_ms": 10, "stream": true])
        #expect(params == ToolCallParams(name: "x", arguments: ["a": 1], timeoutMs: 10, stream: true))
    }

    @Test func callResultCarriesExecFieldsPlusToolOutputAndAttempts() throws {
        let exec = ExecResult(
            executionId: "ex_1", status: .exited, exitCode: 0, signal: nil, stdout: "{}", stdoutEncoding: .utf8, stderr: "",
            stderrEncoding: .utf8, stdoutTruncated: false, stderrTruncated: false, durationMs: 3, cpuMs: 1,
            memoryPeakBytes: 4096, violations: [], failure: nil)
        let output = ToolOutput(type: .json, value: [:], sizeBytes: 2, sha256: String(repeating: "0", count: 64), truncated: false)
        let invalid = ToolCallResult(
            tool: "t", exec: exec, attempts: 2, output: output,
            outputErrors: [ToolOutputError(path: "/a", schemaPath: "/required", message: "missing")])
        #expect(invalid.status == .invalidOutput)
        #expect(invalid.execResult.status == .exited)
        let json = try JSONCoding.toJSON(invalid)
        #expect(json["output_errors"]?.arrayValue?.first?["schema_path"] == "/required")
        #expect(json["output"]?["size_bytes"] == 2 && json["attempts"] == 2 && json["execution_id"] == "ex_1")
        let plain = try JSONCoding.toJSON(ToolCallResult(tool: "t", exec: exec, attempts: 1, output: output, outputErrors: nil))
        #expect(plain["status"] == "exited" && plain["output_errors"] == nil)
        #expect(try JSONCoding.fromJSON(ToolCallResult.self, json) == invalid)
    }
}
