import ToolProtocol

/// Tool definitions in the shapes model providers expect (`tools.schemas`). The shapes are pinned by
/// `protocol/schema/tools.schemas.<format>.json`.
///
/// - `mcp`: the Model Context Protocol's `Tool`: `name`, `title`, `description`, `inputSchema`,
///   `outputSchema` (only when the tool's output schema describes an object, as MCP requires), `annotations`.
/// - `openai`: `{"type": "function", "function": {name, description, parameters}}`.
/// - `anthropic`: `{name, description, input_schema}`.
///
/// openai and anthropic allow only `[a-zA-Z0-9_-]` in names: there a tool's '.' reads as '_' (the registry
/// refuses two tools that differ only by that), and `tools.call` accepts either spelling.
public enum ToolSchemaFormats {
    public static func definitions(_ tools: [Tool], format: ToolSchemaFormat) -> [JSONValue] {
        tools.map { definition($0, format: format) }
    }

    static func definition(_ tool: Tool, format: ToolSchemaFormat) -> JSONValue {
        let m = tool.manifest
        switch format {
        case .mcp:
            var o: [String: JSONValue] = [
                "name": .string(m.name), "description": .string(m.description), "inputSchema": m.inputSchema,
            ]
            if let title = m.title { o["title"] = .string(title) }
            if let output = m.outputSchema, output["type"] == "object" { o["outputSchema"] = output }
            var annotations: [String: JSONValue] = [
                "readOnlyHint": .bool(tool.mode == .readOnly),
                "idempotentHint": .bool(m.idempotent == true),
                "openWorldHint": .bool(tool.mode == .network || tool.mode == .trusted || m.category == .webAccess),
            ]
            if let title = m.title { annotations["title"] = .string(title) }
            o["annotations"] = .object(annotations)
            return .object(o)
        case .openai:
            return [
                "type": "function",
                "function": [
                    "name": .string(tool.providerName), "description": .string(m.description), "parameters": m.inputSchema,
                ],
            ]
        case .anthropic:
            return ["name": .string(tool.providerName), "description": .string(m.description), "input_schema": m.inputSchema]
        }
    }
}
