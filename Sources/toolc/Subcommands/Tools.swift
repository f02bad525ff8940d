import ArgumentParser
import ToolClient
import ToolProtocol

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// `toolc tools list|show|schemas|register|unregister`: the daemon's tool registry.
struct Tools: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List, show and (as an admin) register or unregister tools.",
        subcommands: [List.self, Show.self, Schemas.self, Register.self, Unregister.self])

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the tools; admins also see manifests that were skipped and why.")

        @OptionGroup var options: ClientOptions
        @Option(help: "Only this category (computation, web_access, file_system, database, communication, system, custom).")
        var category: String?
        @Option(help: "Only this risk (low, medium, high, critical).") var risk: String?
        @Option(help: "Only tools with this tag.") var tag: String?

        func run() throws {
            var params: [String: JSONValue] = [:]
            if let category { params["category"] = .string(category) }
            if let risk { params["risk"] = .string(risk) }
            if let tag { params["tag"] = .string(tag) }
            let json = try callDaemon(options, RPCMethod.toolsList, .object(params))
            if options.json { return printJSON(json) }
            guard let list = try? JSONCoding.fromJSON(ToolsListResult.self, json) else {
                throw fail(.protocolError("tools.list returned an unexpected shape"))
            }
            var rows = [["NAME", "CATEGORY", "RISK", "MODE", "SOURCE", "DESCRIPTION"]]
            for t in list.tools {
                let line = t.description.split(separator: "\n").first.map(String.init) ?? ""
                rows.append([t.name, t.category.rawValue, t.risk.rawValue, t.mode.rawValue, t.source.rawValue, truncate(line, 60)])
            }
            var text = table(rows)
            if let skipped = list.skipped, !skipped.isEmpty {
                text += "\nskipped manifests:\n"
                for s in skipped { text += "  \(s.file)\(s.field.isEmpty ? "" : " \(s.field)"): \(s.reason)\n" }
            }
            writeAll(1, Array(text.utf8))
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print a tool's whole manifest.")
        @OptionGroup var options: ClientOptions
        @Argument(help: "The tool's name.") var name: String

        func run() throws {
            let json = try callDaemon(options, RPCMethod.toolsGet, ["name": .string(name)])
            options.json ? printJSON(json) : printPretty(json)
        }
    }

    struct Schemas: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print every tool's definition in a model provider's format.",
            discussion: "mcp: MCP Tool objects; openai: function tools; anthropic: {name, description, input_schema}.")
        @OptionGroup var options: ClientOptions
        @Option(help: "mcp, openai or anthropic.") var format: String

        func validate() throws {
            guard ToolSchemaFormat(rawValue: format) != nil else {
                throw ValidationError("--format must be one of mcp, openai, anthropic")
            }
        }

        func run() throws {
            let json = try callDaemon(options, RPCMethod.toolsSchemas, ["format": .string(format)])
            // The definitions alone: what a client pastes into a provider's `tools`.
            let tools = json["tools"] ?? .array([])
            options.json ? printJSON(tools) : printPretty(tools)
        }
    }

    struct Register: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Register a tool from a manifest file (admins only); it persists across restarts.",
            discussion: "A registered tool of the same name is replaced. Use - to read the manifest from stdin.")
        @OptionGroup var options: ClientOptions
        @Argument(help: "The manifest (JSON), or - for stdin.") var file: String

        func run() throws {
            let manifest = try readJSONArgument(file, what: "manifest")
            let json = try callDaemon(options, RPCMethod.toolsRegister, ["manifest": manifest])
            if options.json { return printJSON(json) }
            let name = json["name"]?.stringValue ?? "?"
            writeAll(1, Array("\(json["replaced"] == true ? "replaced" : "registered") \(name)\n".utf8))
        }
    }

    struct Unregister: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a registered tool (admins only).")
        @OptionGroup var options: ClientOptions
        @Argument(help: "The tool's name.") var name: String

        func run() throws {
            let json = try callDaemon(options, RPCMethod.toolsUnregister, ["name": .string(name)])
            if options.json { return printJSON(json) }
            writeAll(1, Array("unregistered \(name)\n".utf8))
        }
    }
}

/// One call; client errors become their documented exit codes.
func callDaemon(_ options: ClientOptions, _ method: String, _ params: JSONValue) throws -> JSONValue {
    let client = try options.connect()
    do {
        return try client.call(method, params: params)
    } catch {
        throw fail(error)
    }
}

/// Reads a JSON document from a file or `-` (stdin); a usage error (64) names the file and the problem.
func readJSONArgument(_ path: String, what: String) throws -> JSONValue {
    let bytes: [UInt8]
    if path == "-" {
        // A JSON document for one request: no bigger than the largest frame the daemon accepts by default.
        guard let input = readStdin(limit: Framing.defaultMaxFrameBytes) else {
            throw ValidationError("the \(what) on standard input is larger than \(Framing.defaultMaxFrameBytes) bytes")
        }
        bytes = input
    } else {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ValidationError("cannot read the \(what) file \(path)")
        }
        bytes = Array(data)
    }
    do {
        return try JSONCoding.parse(bytes)
    } catch {
        throw ValidationError("\(path): \(error)")
    }
}

func printPretty(_ value: JSONValue) {
    writeAll(1, Array((prettyJSON(value) + "\n").utf8))
}

/// Indented, keys sorted; a person's view of a JSON value (`--json` prints the compact form).
func prettyJSON(_ value: JSONValue) -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    let bytes = (try? encoder.encode(value)).map { Array($0) } ?? JSONCoding.serialize(value)
    return String(decoding: bytes, as: UTF8.self)
}

func table(_ rows: [[String]]) -> String {
    guard let columns = rows.first?.count else { return "" }
    var widths = [Int](repeating: 0, count: columns)
    for row in rows { for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) } }
    return rows.map { row in
        row.enumerated().map { i, cell in i == columns - 1 ? cell : cell + String(repeating: " ", count: widths[i] + 2 - cell.count) }
            .joined()
    }.joined(separator: "\n") + "\n"
}

func truncate(_ text: String, _ length: Int) -> String {
    text.count <= length ? text : String(text.prefix(length - 1)) + "…"
}
