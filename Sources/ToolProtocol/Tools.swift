/// Wire types of the tool methods (`tools.list`, `tools.get`, `tools.schemas`, `tools.register`,
/// `tools.unregister`, `tools.call`) and of a tool manifest, with the field names of `protocol/PROTOCOL.md`.
/// `protocol/schema/tool.manifest.json` is the manifest's JSON Schema; the daemon checks every manifest
/// against it before the checks a schema cannot express (see `ToolEngine.ManifestLoader`).

extension RPCMethod {
    public static let toolsList = "tools.list"
    public static let toolsGet = "tools.get"
    public static let toolsSchemas = "tools.schemas"
    public static let toolsRegister = "tools.register"
    public static let toolsUnregister = "tools.unregister"
    public static let toolsCall = "tools.call"
}

// MARK: Manifest

/// What a tool is about; `tools.list` filters on it.
public enum ToolCategory: String, Sendable, Codable, CaseIterable {
    case computation
    case webAccess = "web_access"
    case fileSystem = "file_system"
    case database, communication, system, custom
}

/// How much harm a call can do; the policy issue decides on it.
public enum ToolRisk: String, Sendable, Codable, CaseIterable {
    case low, medium, high, critical
}

/// The isolation profile a tool runs in (the sandbox's `IsolationMode`).
public enum ToolMode: String, Sendable, Codable, CaseIterable {
    /// The full isolation of `exec` (the default).
    case sandbox
    /// As `sandbox`, with /workspace read-only too.
    case readOnly = "read_only"
    /// As `sandbox`, sharing the host's network.
    case network
    /// Host filesystem read-only and host network; own PID/IPC/UTS namespaces, cgroup limits, seccomp.
    case trusted
}

/// How the sandbox runs a tool. Placeholders `"{{name}}"` stand for the argument `name` and must be a
/// whole argv element or a whole env value: they are never split, never passed through a shell, and a
/// placeholder inside a longer string is a manifest error.
public struct ToolCommand: Sendable, Equatable, Codable {
    /// The command; `argv[0]` is fixed (never a placeholder).
    public var argv: [String]
    /// Environment laid over the base environment; a value may be exactly one placeholder.
    public var env: [String: String]?
    /// Working directory inside the sandbox (default `/workspace`).
    public var cwd: String?
    /// Standard input: `"json"` (the arguments object, the default), `"none"`, or one placeholder whose
    /// argument (a string) becomes stdin.
    public var stdin: String?

    public init(argv: [String], env: [String: String]? = nil, cwd: String? = nil, stdin: String? = nil) {
        self.argv = argv
        self.env = env
        self.cwd = cwd
        self.stdin = stdin
    }
}

/// A host path bound into the sandbox; honoured only for admin-installed tools.
public struct ToolMount: Sendable, Equatable, Codable {
    public var source: String
    public var target: String
    /// Default true.
    public var readOnly: Bool?

    public init(source: String, target: String, readOnly: Bool? = nil) {
        self.source = source
        self.target = target
        self.readOnly = readOnly
    }

    enum CodingKeys: String, CodingKey {
        case source, target
        case readOnly = "read_only"
    }
}

/// Retries of an idempotent tool: exponential backoff with jitter.
public struct ToolRetry: Sendable, Equatable, Codable {
    /// Attempts in all, the first included (1…10).
    public var maxAttempts: Int
    /// Delay before the second attempt; doubled for each one after (default 100 ms).
    public var initialBackoffMs: Int?
    /// Cap of one delay (default 5000 ms).
    public var maxBackoffMs: Int?
    /// Statuses of an attempt that cause another one (default `["exited", "timeout"]`); `exited` means
    /// exited with a non-zero code.
    public var on: [String]?

    public init(maxAttempts: Int, initialBackoffMs: Int? = nil, maxBackoffMs: Int? = nil, on: [String]? = nil) {
        self.maxAttempts = maxAttempts
        self.initialBackoffMs = initialBackoffMs
        self.maxBackoffMs = maxBackoffMs
        self.on = on
    }

    enum CodingKeys: String, CodingKey {
        case on
        case maxAttempts = "max_attempts"
        case initialBackoffMs = "initial_backoff_ms"
        case maxBackoffMs = "max_backoff_ms"
    }
}

/// A tool manifest, as written in `tools.d/*.json` or sent to `tools.register`.
public struct ToolManifest: Sendable, Equatable, Codable {
    public var name: String
    public var version: String?
    public var title: String?
    public var description: String
    public var category: ToolCategory
    public var risk: ToolRisk
    public var tags: [String]?
    public var author: String?
    public var license: String?
    public var documentationUrl: String?
    /// JSON Schema (draft 2020-12) of the arguments; an object schema.
    public var inputSchema: JSONValue
    public var outputSchema: JSONValue?
    /// Absent only for the built-in `exec`, which runs its arguments as `exec` params.
    public var command: ToolCommand?
    public var mode: ToolMode?
    public var mounts: [ToolMount]?
    public var timeoutMs: Int?
    public var limits: ExecLimits?
    public var parallel: Bool?
    public var cacheable: Bool?
    public var cacheTtlS: Int?
    /// One cache for all callers (the result does not depend on who asks); default: per caller uid.
    public var cacheShared: Bool?
    public var idempotent: Bool?
    public var retry: ToolRetry?
    public var requiredPermissions: [String]?
    public var requiresApproval: Bool?

    public init(
        name: String, description: String, category: ToolCategory, risk: ToolRisk, inputSchema: JSONValue,
        command: ToolCommand?
    ) {
        self.name = name
        self.description = description
        self.category = category
        self.risk = risk
        self.inputSchema = inputSchema
        self.command = command
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case name, version, title, description, category, risk, tags, author, license, command, mode, mounts
        case limits, parallel, cacheable, idempotent, retry
        case documentationUrl = "documentation_url"
        case inputSchema = "input_schema"
        case outputSchema = "output_schema"
        case timeoutMs = "timeout_ms"
        case cacheTtlS = "cache_ttl_s"
        case cacheShared = "cache_shared"
        case requiredPermissions = "required_permissions"
        case requiresApproval = "requires_approval"
    }

    /// Every top-level field a manifest may hold.
    public static var knownFields: [String] { CodingKeys.allCases.map(\.stringValue) }
}

// MARK: tools.list / tools.get

public struct ToolsListParams: Sendable, Equatable, Codable {
    public var category: ToolCategory?
    public var risk: ToolRisk?
    public var tag: String?
    public init(category: ToolCategory? = nil, risk: ToolRisk? = nil, tag: String? = nil) {
        self.category = category
        self.risk = risk
        self.tag = tag
    }
    enum CodingKeys: String, CodingKey, CaseIterable { case category, risk, tag }
}

/// Where a tool came from: shipped with the daemon, a file of the tools directory, or `tools.register`.
public enum ToolSource: String, Sendable, Codable {
    case builtin, file, registered
}

/// One tool in `tools.list`.
public struct ToolSummary: Sendable, Equatable, Codable {
    public var name: String
    public var version: String?
    public var title: String?
    public var description: String
    public var category: ToolCategory
    public var risk: ToolRisk
    public var tags: [String]
    public var mode: ToolMode
    public var source: ToolSource
    public var inputSchema: JSONValue

    public init(
        name: String, version: String?, title: String?, description: String, category: ToolCategory, risk: ToolRisk,
        tags: [String], mode: ToolMode, source: ToolSource, inputSchema: JSONValue
    ) {
        self.name = name
        self.version = version
        self.title = title
        self.description = description
        self.category = category
        self.risk = risk
        self.tags = tags
        self.mode = mode
        self.source = source
        self.inputSchema = inputSchema
    }

    enum CodingKeys: String, CodingKey {
        case name, version, title, description, category, risk, tags, mode, source
        case inputSchema = "input_schema"
    }
}

/// A manifest that was not loaded, with the reason (shown to admins only).
public struct SkippedManifest: Sendable, Equatable, Codable {
    /// The file (tools directory or state directory).
    public var file: String
    /// JSON Pointer of the offending field in the manifest (`""` for the file as a whole).
    public var field: String
    public var reason: String
    public init(file: String, field: String, reason: String) {
        self.file = file
        self.field = field
        self.reason = reason
    }
}

public struct ToolsListResult: Sendable, Equatable, Codable {
    public var tools: [ToolSummary]
    /// Present for admins only.
    public var skipped: [SkippedManifest]?
    public init(tools: [ToolSummary], skipped: [SkippedManifest]?) {
        self.tools = tools
        self.skipped = skipped
    }
}

/// What a tool name can be: a manifest's name (1–64 of `a-z 0-9 _ . -`, starting with a letter or digit), or its
/// openai/anthropic spelling (`.` read as `_`), which uses the same characters.
public enum ToolName {
    public static let maxLength = 64

    public static func isPossible(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        func allowed(_ b: UInt8) -> Bool { (0x61...0x7A).contains(b) || (0x30...0x39).contains(b) || b == 0x5F || b == 0x2E || b == 0x2D }
        guard let first = bytes.first, bytes.count <= maxLength, first != 0x5F, first != 0x2E, first != 0x2D else { return false }
        return bytes.allSatisfy(allowed)
    }

    /// Refuses a name no tool can have, without echoing it (a caller may send megabytes): such a call is not a
    /// call of any tool, so it is neither looked up nor recorded.
    public static func require(_ name: String, path: String = "/name") throws(RPCError) {
        guard isPossible(name) else {
            throw .invalidParams(
                path: path, "no tool can have this name: names are 1–\(maxLength) characters of a-z, 0-9, '_', '.' and '-', starting with a letter or digit")
        }
    }
}

public struct ToolNameParams: Sendable, Equatable, Codable {
    public var name: String
    public init(name: String) { self.name = name }
    enum CodingKeys: String, CodingKey, CaseIterable { case name }
}

// MARK: tools.schemas

/// The shape a model provider expects tool definitions in.
public enum ToolSchemaFormat: String, Sendable, Codable, CaseIterable {
    case mcp, openai, anthropic
}

public struct ToolsSchemasParams: Sendable, Equatable, Codable {
    public var format: ToolSchemaFormat
    public init(format: ToolSchemaFormat) { self.format = format }
    enum CodingKeys: String, CodingKey, CaseIterable { case format }
}

/// `{format, tools}`: `tools` holds one definition per tool in the format's own shape.
public struct ToolsSchemasResult: Sendable, Equatable, Codable {
    public var format: ToolSchemaFormat
    public var tools: [JSONValue]
    public init(format: ToolSchemaFormat, tools: [JSONValue]) {
        self.format = format
        self.tools = tools
    }
}

// MARK: tools.register / tools.unregister

public struct ToolsRegisterParams: Sendable, Equatable, Codable {
    public var manifest: JSONValue
    public init(manifest: JSONValue) { self.manifest = manifest }
    enum CodingKeys: String, CodingKey, CaseIterable { case manifest }
}

public struct ToolsRegisterResult: Sendable, Equatable, Codable {
    public var name: String
    /// True when a registered tool of the same name was replaced.
    public var replaced: Bool
    public init(name: String, replaced: Bool) {
        self.name = name
        self.replaced = replaced
    }
}

public struct ToolsUnregisterResult: Sendable, Equatable, Codable {
    public var unregistered: Bool
    public init(unregistered: Bool) { self.unregistered = unregistered }
}

// MARK: tools.call

public struct ToolCallParams: Sendable, Equatable, Codable {
    public var name: String
    /// The arguments object (absent means `{}`).
    public var arguments: JSONValue?
    public var timeoutMs: Int?
    public var limits: ExecLimits?
    public var stream: Bool?
    /// `false`: run even when a cached result exists (and do not cache this one).
    public var cache: Bool?

    public init(
        name: String, arguments: JSONValue? = nil, timeoutMs: Int? = nil, limits: ExecLimits? = nil, stream: Bool? = nil,
        cache: Bool? = nil
    ) {
        self.name = name
        self.arguments = arguments
        self.timeoutMs = timeoutMs
        self.limits = limits
        self.stream = stream
        self.cache = cache
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case name, arguments, limits, stream, cache
        case timeoutMs = "timeout_ms"
    }
}

/// How a tool call ended: an `exec` status, or `invalid_output` when the command succeeded but its
/// output does not match the tool's `output_schema`.
public enum ToolCallStatus: String, Sendable, Codable, CaseIterable {
    case exited, signaled, timeout, oom
    case outputLimit = "output_limit"
    case cancelled
    case failedToStart = "failed_to_start"
    case invalidOutput = "invalid_output"

    public init(_ status: ExecStatus) { self = ToolCallStatus(rawValue: status.rawValue) ?? .failedToStart }
}

/// How to read `output.value`.
public enum ToolOutputType: String, Sendable, Codable {
    /// stdout is one JSON text; `value` is the parsed value.
    case json
    /// stdout is UTF-8 but not JSON; `value` is the text.
    case text
    /// stdout is not UTF-8; `value` is base64.
    case binary
}

/// The tool's stdout, typed.
public struct ToolOutput: Sendable, Equatable, Codable {
    public var type: ToolOutputType
    public var value: JSONValue
    /// Bytes of stdout captured.
    public var sizeBytes: Int
    /// SHA-256 of those bytes, lowercase hex.
    public var sha256: String
    /// stdout exceeded `output_bytes` and was cut.
    public var truncated: Bool

    public init(type: ToolOutputType, value: JSONValue, sizeBytes: Int, sha256: String, truncated: Bool) {
        self.type = type
        self.value = value
        self.sizeBytes = sizeBytes
        self.sha256 = sha256
        self.truncated = truncated
    }

    enum CodingKeys: String, CodingKey {
        case type, value, sha256, truncated
        case sizeBytes = "size_bytes"
    }
}

/// One way the output fails `output_schema`.
public struct ToolOutputError: Sendable, Equatable, Codable {
    /// JSON Pointer into `output.value`.
    public var path: String
    /// JSON Pointer into `output_schema`.
    public var schemaPath: String
    public var message: String
    public init(path: String, schemaPath: String, message: String) {
        self.path = path
        self.schemaPath = schemaPath
        self.message = message
    }
    enum CodingKeys: String, CodingKey {
        case path, message
        case schemaPath = "schema_path"
    }
}

/// `tools.call`'s result: `exec`'s result (of the last attempt) plus the tool, the attempts and the typed output.
public struct ToolCallResult: Sendable, Equatable, Codable {
    public var tool: String
    public var executionId: String
    public var status: ToolCallStatus
    public var exitCode: Int32?
    public var signal: Int32?
    public var stdout: String
    public var stdoutEncoding: OutputEncoding
    public var stderr: String
    public var stderrEncoding: OutputEncoding
    public var stdoutTruncated: Bool
    public var stderrTruncated: Bool
    public var durationMs: Int
    public var queuedMs: Int
    public var cpuMs: Int
    public var memoryPeakBytes: UInt64
    public var violations: [String]
    public var failure: ExecFailure?
    public var redacted: [String]?
    /// Attempts made (1 unless the tool is idempotent with `retry`).
    public var attempts: Int
    public var output: ToolOutput
    /// For `invalid_output`: every mismatch; absent otherwise.
    public var outputErrors: [ToolOutputError]?
    /// True when answered from the result cache (nothing ran): the figures are those of the execution
    /// that produced it, `cached_from` its id. Absent otherwise.
    public var cached: Bool?
    public var cachedFrom: String?

    public init(tool: String, exec r: ExecResult, attempts: Int, output: ToolOutput, outputErrors: [ToolOutputError]?) {
        self.tool = tool
        executionId = r.executionId
        status = outputErrors == nil ? ToolCallStatus(r.status) : .invalidOutput
        exitCode = r.exitCode
        signal = r.signal
        stdout = r.stdout
        stdoutEncoding = r.stdoutEncoding
        stderr = r.stderr
        stderrEncoding = r.stderrEncoding
        stdoutTruncated = r.stdoutTruncated
        stderrTruncated = r.stderrTruncated
        durationMs = r.durationMs
        queuedMs = r.queuedMs
        cpuMs = r.cpuMs
        memoryPeakBytes = r.memoryPeakBytes
        violations = r.violations
        failure = r.failure
        redacted = r.redacted
        self.attempts = attempts
        self.output = output
        self.outputErrors = outputErrors
    }

    enum CodingKeys: String, CodingKey {
        case tool, status, signal, stdout, stderr, violations, failure, attempts, output, redacted, cached
        case cachedFrom = "cached_from"
        case queuedMs = "queued_ms"
        case executionId = "execution_id"
        case exitCode = "exit_code"
        case stdoutEncoding = "stdout_encoding"
        case stderrEncoding = "stderr_encoding"
        case stdoutTruncated = "stdout_truncated"
        case stderrTruncated = "stderr_truncated"
        case durationMs = "duration_ms"
        case cpuMs = "cpu_ms"
        case memoryPeakBytes = "memory_peak_bytes"
        case outputErrors = "output_errors"
    }

    /// The exec view of this result (`invalid_output` reads as `exited`), for code shared with `exec`.
    public var execResult: ExecResult {
        ExecResult(
            executionId: executionId, status: ExecStatus(rawValue: status.rawValue) ?? .exited, exitCode: exitCode,
            signal: signal, stdout: stdout, stdoutEncoding: stdoutEncoding, stderr: stderr, stderrEncoding: stderrEncoding,
            stdoutTruncated: stdoutTruncated, stderrTruncated: stderrTruncated, durationMs: durationMs, queuedMs: queuedMs,
            cpuMs: cpuMs, memoryPeakBytes: memoryPeakBytes, violations: violations, failure: failure, redacted: redacted)
    }
}

// MARK: Closed params

extension ToolsListParams: ClosedWireType {
    public static var knownFields: [String] { CodingKeys.allCases.map(\.stringValue) }
}
extension ToolNameParams: ClosedWireType {
    public static var knownFields: [String] { CodingKeys.allCases.map(\.stringValue) }
}
extension ToolsSchemasParams: ClosedWireType {
    public static var knownFields: [String] { CodingKeys.allCases.map(\.stringValue) }
}
extension ToolsRegisterParams: ClosedWireType {
    public static var knownFields: [String] { CodingKeys.allCases.map(\.stringValue) }
}
extension ToolCallParams: ClosedWireType {
    public static var knownFields: [String] { CodingKeys.allCases.map(\.stringValue) }
    public static var nestedFields: [String: [String]] { ["limits": ExecLimits.knownFields] }
}
