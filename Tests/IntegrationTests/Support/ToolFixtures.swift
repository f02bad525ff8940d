import Foundation
import ToolProtocol

/// A tools directory for a test daemon (`--tools-dir`).
struct ToolsDirectory {
    let dir: TempDir
    init() throws { dir = try TempDir("tools") }
    var path: String { dir.path }
    func file(_ name: String) -> String { dir.url.appendingPathComponent(name + ".json").path }
    func write(_ name: String, _ manifest: JSONValue) throws {
        try writeRaw(name + ".json", JSONCoding.serializeString(manifest))
    }
    func writeRaw(_ fileName: String, _ text: String) throws {
        let url = dir.url.appendingPathComponent(fileName)
        try text.write(to: url, atomically: true, encoding: .utf8)
        chmod(url.path, 0o644)
    }
    func remove() { dir.remove() }
}

/// A minimal manifest: a `custom` tool of the given risk that runs `argv`.
func toolManifest(
    _ name: String, properties: [String: JSONValue] = [:], required: [String] = [], argv: [String],
    env: [String: String]? = nil, stdin: String? = nil, mode: String = "sandbox", risk: String = "low",
    category: String = "custom", extra: [String: JSONValue] = [:]
) -> JSONValue {
    var command: [String: JSONValue] = ["argv": .array(argv.map(JSONValue.string))]
    if let env { command["env"] = .object(env.mapValues(JSONValue.string)) }
    if let stdin { command["stdin"] = .string(stdin) }
    var manifest: [String: JSONValue] = [
        "name": .string(name), "version": "1.0", "description": .string("test tool \(name)"), "category": .string(category),
        "risk": .string(risk), "tags": ["test"], "mode": .string(mode),
        "input_schema": ["type": "object", "properties": .object(properties), "required": .array(required.map(JSONValue.string))],
        "command": .object(command),
    ]
    for (k, v) in extra { manifest[k] = v }
    return .object(manifest)
}

