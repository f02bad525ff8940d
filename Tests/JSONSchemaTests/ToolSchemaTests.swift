import JSONSchema
import Testing
import ToolProtocol

/// A realistic tool-argument schema (about twenty properties, nested objects, patterns, enums), as the
/// daemon validates on every call. Correctness only; speed is measured by the benchmark.
@Suite struct ToolSchemaTests {
    static let schema: JSONValue = [
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "additionalProperties": false,
        "required": ["command", "cwd"],
        "properties": [
            "command": ["type": "string", "minLength": 1, "maxLength": 4096],
            "args": ["type": "array", "items": ["type": "string", "maxLength": 4096], "maxItems": 256],
            "cwd": ["type": "string", "pattern": "^/[^\\u0000]*$"],
            "env": [
                "type": "object",
                "propertyNames": ["pattern": "^[A-Z_][A-Z0-9_]*$"],
                "additionalProperties": ["type": "string"],
            ],
            "timeoutMs": ["type": "integer", "minimum": 1, "maximum": 600_000],
            "memoryMiB": ["type": "integer", "minimum": 16, "maximum": 65536, "multipleOf": 16],
            "cpuShares": ["type": "number", "exclusiveMinimum": 0, "maximum": 64],
            "network": ["enum": ["none", "loopback", "full"]],
            "stdin": ["type": ["string", "null"]],
            "encoding": ["const": "utf-8"],
            "tags": ["type": "array", "items": ["type": "string", "pattern": "^[a-z0-9-]+$"], "uniqueItems": true],
            "priority": ["type": "integer", "enum": [0, 1, 2, 3]],
            "dryRun": ["type": "boolean"],
            "user": ["type": "string", "pattern": "^[a-z_][a-z0-9_-]{0,31}$"],
            "retries": ["type": "integer", "minimum": 0, "maximum": 5],
            "requestId": ["type": "string", "pattern": "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"],
            "limits": [
                "type": "object",
                "additionalProperties": false,
                "properties": [
                    "pids": ["type": "integer", "minimum": 1, "maximum": 4096],
                    "openFiles": ["type": "integer", "minimum": 3],
                    "outputBytes": ["type": "integer", "minimum": 0],
                ],
            ],
            "mounts": [
                "type": "array",
                "items": [
                    "type": "object",
                    "required": ["source", "target"],
                    "additionalProperties": false,
                    "properties": [
                        "source": ["type": "string", "pattern": "^/"],
                        "target": ["type": "string", "pattern": "^/"],
                        "readOnly": ["type": "boolean"],
                    ],
                ],
            ],
            "labels": ["type": "object", "maxProperties": 16, "additionalProperties": ["type": "string", "maxLength": 256]],
            "output": [
                "type": "object",
                "properties": ["format": ["enum": ["text", "json"]], "maxLines": ["type": "integer", "minimum": 1]],
            ],
        ],
    ]

    static let instance: JSONValue = [
        "command": "/usr/bin/python3",
        "args": ["-c", "print(1)"],
        "cwd": "/work",
        "env": ["PATH": "/usr/bin", "LANG": "C.UTF-8"],
        "timeoutMs": 30_000,
        "memoryMiB": 512,
        "cpuShares": 1.5,
        "network": "none",
        "stdin": nil,
        "encoding": "utf-8",
        "tags": ["build", "ci"],
        "priority": 2,
        "dryRun": false,
        "user": "agent",
        "retries": 0,
        "requestId": "0f8fad5b-d9cb-469f-a165-70867728950e",
        "limits": ["pids": 64, "openFiles": 256, "outputBytes": 1_048_576],
        "mounts": [["source": "/data", "target": "/mnt/data", "readOnly": true]],
        "labels": ["team": "infra"],
        "output": ["format": "json", "maxLines": 100],
    ]

    @Test func typicalInstanceIsValid() throws {
        let compiled = try CompiledSchema(Self.schema)
        #expect(compiled.isValid(Self.instance))
        #expect(compiled.validate(Self.instance).isEmpty)
        // Compiled once, used many times: the same answer every time.
        for _ in 0..<1000 { #expect(compiled.isValid(Self.instance)) }
    }

    @Test func typicalMistakesAreAllReported() throws {
        let compiled = try CompiledSchema(Self.schema)
        guard case .object(var members) = Self.instance else { return }
        members["timeoutMs"] = 0
        members["memoryMiB"] = 500
        members["env"] = ["path": "/usr/bin"]
        members["mounts"] = [["source": "data"]]
        members["colour"] = "blue"
        members.removeValue(forKey: "cwd")
        let errors = compiled.validate(.object(members))
        #expect(
            errors == [
                ValidationError(instancePath: "", schemaPath: "/required", message: "missing required property \"cwd\""),
                ValidationError(
                    instancePath: "", schemaPath: "/additionalProperties", message: "property \"colour\" is not allowed"),
                ValidationError(
                    instancePath: "/env", schemaPath: "/properties/env/propertyNames/pattern",
                    message: "property name \"path\": must match pattern ^[A-Z_][A-Z0-9_]*$"),
                ValidationError(
                    instancePath: "/memoryMiB", schemaPath: "/properties/memoryMiB/multipleOf",
                    message: "must be a multiple of 16, got 500"),
                ValidationError(
                    instancePath: "/mounts/0", schemaPath: "/properties/mounts/items/required",
                    message: "missing required property \"target\""),
                ValidationError(
                    instancePath: "/mounts/0/source", schemaPath: "/properties/mounts/items/properties/source/pattern",
                    message: "must match pattern ^/"),
                ValidationError(
                    instancePath: "/timeoutMs", schemaPath: "/properties/timeoutMs/minimum", message: "must be >= 1, got 0"),
            ])
    }

    @Test func compiledSchemaIsSharedAcrossTasks() async throws {
        let compiled = try CompiledSchema(Self.schema)
        let results = await withTaskGroup(of: Bool.self) { group in
            for _ in 0..<8 { group.addTask { (0..<200).allSatisfy { _ in compiled.isValid(Self.instance) } } }
            return await group.reduce(into: [Bool]()) { $0.append($1) }
        }
        #expect(results == Array(repeating: true, count: 8))
    }
}
