import Foundation
import JSONSchema
import Sandbox
import ToolProtocol

/// One reason a manifest cannot be loaded: the field (a JSON Pointer into the manifest, `""` for the
/// whole) and what is wrong with it.
public struct ManifestProblem: Error, Sendable, Equatable, CustomStringConvertible {
    public var field: String
    public var reason: String
    public init(field: String, reason: String) {
        self.field = field
        self.reason = reason
    }
    public var description: String { "\(field.isEmpty ? "(manifest)" : field): \(reason)" }
}

/// Every problem of a manifest that cannot be loaded.
public struct ManifestRejection: Error, Sendable {
    public var problems: [ManifestProblem]
    init(_ problems: [ManifestProblem]) { self.problems = problems }
}

/// A loaded, checked tool: its manifest, its schemas compiled once, its command parsed into literals and
/// placeholders. Immutable; shared by every call of the tool until the next reload.
public struct Tool: Sendable {
    public let manifest: ToolManifest
    /// The manifest as written (what `tools.get` returns).
    public let json: JSONValue
    public let source: ToolSource
    /// The file it came from (tools directory or state directory); nil for built-ins.
    public let file: String?
    let inputSchema: CompiledSchema
    let outputSchema: CompiledSchema?
    /// nil for the built-in `exec`, which runs its arguments as `exec` params.
    let command: CommandTemplate?

    public var name: String { manifest.name }
    public var mode: ToolMode { manifest.mode ?? .sandbox }
    /// The name in provider formats that do not allow '.' (openai, anthropic).
    public var providerName: String { Self.providerName(manifest.name) }

    static func providerName(_ name: String) -> String { name.replacing(".", with: "_") }

    public var summary: ToolSummary {
        ToolSummary(
            name: manifest.name, version: manifest.version, title: manifest.title, description: manifest.description,
            category: manifest.category, risk: manifest.risk, tags: manifest.tags ?? [], mode: mode, source: source,
            inputSchema: manifest.inputSchema)
    }
}

/// A command with its placeholders located: each argv element, env value and stdin is a literal or one
/// argument, decided at load so a call only looks values up.
struct CommandTemplate: Sendable {
    enum Part: Sendable, Equatable {
        case literal(String)
        case argument(String)
    }
    enum Stdin: Sendable, Equatable {
        case json, none
        case argument(String)
    }
    var argv: [Part]
    var env: [(String, Part)]
    var cwd: String?
    var stdin: Stdin
}

/// Parses and checks manifests: the manifest's own JSON Schema first (`protocol/schema/tool.manifest.json`),
/// then what a schema cannot say — the input and output schemas compile (once, here), the input schema
/// describes an object, placeholders are whole elements naming declared properties, argv[0] is fixed.
enum ManifestLoader {
    /// The manifest schema, compiled once per process. A failure here is a build defect
    /// (`ToolManifestSchemaTests` compiles it); every manifest is then refused with the reason.
    static let manifestSchema: Result<CompiledSchema, ManifestProblem> = {
        do {
            return .success(try CompiledSchema(try JSONCoding.parse(Array(ToolManifest.jsonSchema.utf8))))
        } catch {
            return .failure(ManifestProblem(field: "", reason: "internal error: the manifest schema does not compile: \(error)"))
        }
    }()

    /// Most bytes a manifest file may hold.
    static let maxFileBytes = 1 << 20

    /// Checks one manifest; returns the tool or every problem found.
    static func load(_ json: JSONValue, source: ToolSource, file: String?) -> Result<Tool, ManifestRejection> {
        let schema: CompiledSchema
        switch manifestSchema {
        case .success(let compiled): schema = compiled
        case .failure(let problem): return .failure(ManifestRejection([problem]))
        }
        let schemaErrors = schema.validate(json, maxErrors: 20)
        if !schemaErrors.isEmpty {
            return .failure(ManifestRejection(schemaErrors.map { ManifestProblem(field: fieldOf($0), reason: $0.message) }))
        }
        let manifest: ToolManifest
        do {
            manifest = try JSONCoding.fromJSON(ToolManifest.self, json)
        } catch {
            // The schema admits only what decodes; this names the field should they ever disagree.
            if let decoding = error as? DecodingError {
                let e = ParamsDecoding.paramError(decoding)
                return .failure(ManifestRejection([ManifestProblem(field: e.path, reason: e.message)]))
            }
            return .failure(ManifestRejection([ManifestProblem(field: "", reason: "\(error)")]))
        }
        var problems: [ManifestProblem] = []
        let inputSchema = compile(manifest.inputSchema, field: "/input_schema", &problems)
        if case .object(let o) = manifest.inputSchema, o["type"] != "object" {
            problems.append(
                ManifestProblem(
                    field: "/input_schema/type",
                    reason: "must be \"object\": arguments are a JSON object, and model providers require an object schema"))
        }
        let outputSchema = manifest.outputSchema.flatMap { compile($0, field: "/output_schema", &problems) }
        var command: CommandTemplate?
        if let c = manifest.command {
            command = parseCommand(c, declared: declaredProperties(manifest.inputSchema), &problems)
        }
        if let mounts = manifest.mounts, !mounts.isEmpty {
            // Fail closed: a tool that counts on its bind mounts must not run without them.
            problems.append(
                ManifestProblem(
                    field: "/mounts",
                    reason: "not supported yet: the sandbox cannot bind host paths; remove \"mounts\" to load this tool"))
        }
        if let retry = manifest.retry, let initial = retry.initialBackoffMs, let cap = retry.maxBackoffMs, initial > cap {
            problems.append(
                ManifestProblem(field: "/retry/initial_backoff_ms", reason: "\(initial) is above max_backoff_ms \(cap)"))
        }
        guard problems.isEmpty, let inputSchema else { return .failure(ManifestRejection(problems)) }
        return .success(
            Tool(
                manifest: manifest, json: json, source: source, file: file, inputSchema: inputSchema,
                outputSchema: outputSchema, command: command))
    }

    /// The field an error is about: for a missing required property, the property itself (the validator
    /// reports it at the object that lacks it).
    static func fieldOf(_ error: ValidationError) -> String {
        guard error.schemaPath.hasSuffix("/required"), let open = error.message.firstIndex(of: "\""),
            let close = error.message.lastIndex(of: "\""), open < close
        else { return error.instancePath }
        let name = error.message[error.message.index(after: open)..<close]
        return error.instancePath + "/" + ParamsDecoding.escape(String(name))
    }

    static func compile(_ schema: JSONValue, field: String, _ problems: inout [ManifestProblem]) -> CompiledSchema? {
        do {
            return try CompiledSchema(schema)
        } catch {
            problems.append(ManifestProblem(field: field + error.schemaPath, reason: "invalid JSON Schema: \(error.reason)"))
            return nil
        }
    }

    /// The top-level properties the input schema names; placeholders may only refer to these.
    static func declaredProperties(_ schema: JSONValue) -> Set<String> {
        Set(schema["properties"]?.objectValue?.keys.map { $0 } ?? [])
    }

    /// `"{{name}}"` → `name`; nil when `text` is not exactly one placeholder.
    static func placeholder(_ text: String) -> String? {
        guard text.hasPrefix("{{"), text.hasSuffix("}}"), text.utf8.count > 4 else { return nil }
        let name = text.dropFirst(2).dropLast(2)
        let allowed = name.unicodeScalars.allSatisfy { s in
            ("a"..."z").contains(s) || ("A"..."Z").contains(s) || ("0"..."9").contains(s) || s == "_" || s == "." || s == "-"
        }
        return allowed ? String(name) : nil
    }

    static func parsePart(
        _ text: String, field: String, declared: Set<String>, _ problems: inout [ManifestProblem]
    ) -> CommandTemplate.Part {
        if let name = placeholder(text) {
            if !declared.contains(name) {
                problems.append(
                    ManifestProblem(
                        field: field,
                        reason: "placeholder {{\(name)}} names no property of input_schema.properties"))
            }
            return .argument(name)
        }
        if text.contains("{{") {
            problems.append(
                ManifestProblem(
                    field: field,
                    reason: "a placeholder must be the whole element, exactly \"{{name}}\" (never part of a longer string), got \"\(text)\""))
        }
        if text.utf8.contains(0) { problems.append(ManifestProblem(field: field, reason: "must not contain a NUL byte")) }
        return .literal(text)
    }

    static func parseCommand(_ c: ToolCommand, declared: Set<String>, _ problems: inout [ManifestProblem]) -> CommandTemplate {
        var argv: [CommandTemplate.Part] = []
        for (i, element) in c.argv.enumerated() {
            let part = parsePart(element, field: "/command/argv/\(i)", declared: declared, &problems)
            if i == 0 {
                if case .argument = part {
                    problems.append(
                        ManifestProblem(field: "/command/argv/0", reason: "the program is fixed: argv[0] must not be a placeholder"))
                } else if element.isEmpty {
                    problems.append(ManifestProblem(field: "/command/argv/0", reason: "must not be empty"))
                }
            }
            argv.append(part)
        }
        var env: [(String, CommandTemplate.Part)] = []
        for key in (c.env ?? [:]).keys.sorted() {
            let field = "/command/env/" + ParamsDecoding.escape(key)
            if key.utf8.contains(0) { problems.append(ManifestProblem(field: field, reason: "variable names must not contain NUL")) }
            env.append((key, parsePart(c.env![key]!, field: field, declared: declared, &problems)))
        }
        var stdin = CommandTemplate.Stdin.json
        switch c.stdin {
        case nil, "json": stdin = .json
        case "none": stdin = .none
        case let text?:
            if let name = placeholder(text) {
                if !declared.contains(name) {
                    problems.append(
                        ManifestProblem(field: "/command/stdin", reason: "placeholder {{\(name)}} names no property of input_schema.properties"))
                }
                stdin = .argument(name)
            } else {
                problems.append(ManifestProblem(field: "/command/stdin", reason: "must be \"json\", \"none\" or \"{{name}}\""))
            }
        }
        return CommandTemplate(argv: argv, env: env, cwd: c.cwd, stdin: stdin)
    }
}

extension IsolationMode {
    init(_ mode: ToolMode) {
        switch mode {
        case .sandbox: self = .sandbox
        case .readOnly: self = .readOnly
        case .network: self = .network
        case .trusted: self = .trusted
        }
    }
}
