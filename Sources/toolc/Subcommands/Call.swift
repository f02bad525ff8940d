import ArgumentParser
import ToolClient
import ToolProtocol

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

struct Call: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Call a tool with arguments checked against its schema.",
        discussion: """
            Arguments: --arg key=value (repeatable; the value is read by the type the tool's schema declares \
            for key: text for strings, JSON for numbers, booleans, arrays and objects), --arg key:=JSON for a \
            raw JSON value, or the whole object with --args-json '{…}' or --args-file FILE (- for stdin).
            Prints the tool's output (JSON pretty-printed, text as is) and its stderr; --json prints the whole \
            result. Exit codes as for exec; \(ExitCodes.invalidOutput) when the output does not match the tool's \
            output schema. When policy requires an admin's approval, toolc says so on stderr and waits; Ctrl-C \
            cancels (the waiting call, or the running one).
            A tool marked cacheable answers a repeated call (same arguments; same caller unless its cache is \
            shared) from the daemon's result cache without running it; toolc then says so on stderr. \
            --no-cache runs it anyway (and does not cache the result).
            Example: toolc call python --arg code='print(6*7)'
            """)

    @OptionGroup var options: ClientOptions
    @Argument(help: "The tool's name.") var name: String
    @Option(name: .customLong("arg"), help: ArgumentHelp("One argument (repeatable).", valueName: "key=value|key:=json"))
    var args: [String] = []
    @Option(name: .customLong("args-json"), help: "All arguments as a JSON object.") var argsJSON: String?
    @Option(name: .customLong("args-file"), help: "All arguments from a JSON file (- for stdin).") var argsFile: String?
    @Option(help: "Wall-clock limit per attempt, e.g. 500ms, 10s, 2m.") var timeout: String?
    @Option(help: "Memory limit, e.g. 64M, 1G.") var memory: String?
    @Option(name: .customLong("output-limit"), help: "Per-stream output limit, e.g. 1M.") var outputLimit: String?
    @Flag(name: .customLong("no-cache"), help: "Run even when the result cache holds a result (and do not cache this one).")
    var noCache = false

    func validate() throws {
        if [argsJSON != nil, argsFile != nil, !args.isEmpty].filter({ $0 }).count > 1 {
            throw ValidationError("give the arguments one way: --arg, --args-json or --args-file")
        }
    }

    func run() throws {
        let client = try options.connect()
        var params: [String: JSONValue] = ["name": .string(name), "arguments": try arguments(client)]
        if let timeout { params["timeout_ms"] = .int(Int64(try parseDuration(timeout))) }
        var limits: [String: JSONValue] = [:]
        if let memory { limits["memory_bytes"] = .int(Int64(try parseSize(memory, flag: "--memory"))) }
        if let outputLimit { limits["output_bytes"] = .int(Int64(try parseSize(outputLimit, flag: "--output-limit"))) }
        if !limits.isEmpty { params["limits"] = .object(limits) }
        if noCache { params["cache"] = false }
        let json = try CancellableCall(client: client, method: RPCMethod.toolsCall, params: .object(params)).run(
            reportingArgumentErrors: true)
        guard let result = try? JSONCoding.fromJSON(ToolCallResult.self, json) else {
            throw fail(.protocolError("tools.call returned an unexpected shape"))
        }
        if options.json {
            printJSON(json)
        } else {
            printOutput(result)
        }
        if result.status == .invalidOutput {
            if !options.json {
                printError("toolc: the output does not match the tool's output schema:")
                for e in result.outputErrors ?? [] { printError("  \(e.path.isEmpty ? "(root)" : e.path): \(e.message)") }
            }
            throw ExitCode(ExitCodes.invalidOutput)
        }
        if result.attempts > 1 && !options.json { printError("toolc: \(result.attempts) attempts") }
        if result.cached == true && !options.json {
            printError("toolc: answered from the result cache (the result of \(result.cachedFrom ?? "an earlier call"); --no-cache runs it)")
        }
        throw ExitCode(Exec.exitCode(for: result.execResult, quiet: options.json))
    }

    func printOutput(_ result: ToolCallResult) {
        writeAll(2, result.execResult.bytes(of: .stderr))
        switch result.output.type {
        case .json: printPretty(result.output.value)
        case .text: writeAll(1, Array((result.output.value.stringValue ?? "").utf8))
        case .binary: writeAll(1, Base64.decode(result.output.value.stringValue ?? "") ?? [])
        }
    }

    /// The arguments object from whichever form was given.
    func arguments(_ client: ToolClient) throws -> JSONValue {
        if let argsJSON {
            do {
                return try JSONCoding.parse(Array(argsJSON.utf8))
            } catch {
                throw ValidationError("--args-json: \(error)")
            }
        }
        if let argsFile { return try readJSONArgument(argsFile, what: "arguments") }
        if args.isEmpty { return .object([:]) }
        // key=value is read by the declared type, so `--arg count=3` is 3 and `--arg name=3` is "3".
        let schema: JSONValue
        do {
            schema = try client.call(RPCMethod.toolsGet, params: ["name": .string(name)])["input_schema"] ?? .null
        } catch {
            throw fail(error)
        }
        var object: [String: JSONValue] = [:]
        for entry in args {
            guard let eq = entry.firstIndex(of: "="), eq != entry.startIndex else {
                throw ValidationError("--arg \(entry): expected key=value or key:=json")
            }
            var key = String(entry[..<eq])
            let value = String(entry[entry.index(after: eq)...])
            if key.hasSuffix(":") {
                key.removeLast()
                do {
                    object[key] = try JSONCoding.parse(Array(value.utf8))
                } catch {
                    throw ValidationError("--arg \(key):=…: \(error)")
                }
                continue
            }
            object[key] = Self.coerce(value, declared: schema["properties"]?[key]?["type"])
        }
        return .object(object)
    }

    /// Text for string (or undeclared) properties; JSON when the schema declares only non-string types
    /// and the text parses; the text otherwise (the daemon then names the mismatch).
    static func coerce(_ text: String, declared: JSONValue?) -> JSONValue {
        let types: [String]
        switch declared {
        case .string(let t)?: types = [t]
        case .array(let ts)?: types = ts.compactMap(\.stringValue)
        default: types = []
        }
        if types.isEmpty || types.contains("string") { return .string(text) }
        return (try? JSONCoding.parse(Array(text.utf8))) ?? .string(text)
    }
}
