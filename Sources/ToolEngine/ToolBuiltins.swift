import ToolProtocol

/// The tools shipped with the daemon. `shell` and `python` are ordinary manifests (checked by the same
/// loader as any file); `exec` is the `exec` method governed as a tool, so later policy can allow or deny
/// it by name like any other: its arguments are `exec` params.
enum ToolBuiltins {
    static let execName = "exec"

    static let shell: JSONValue = [
        "name": "shell",
        "version": "1",
        "title": "Shell script",
        "description":
            "Runs a bash script in a fresh sandbox (no network, an empty writable /workspace and /tmp, the host's /usr read-only) and returns its standard output. Use `stdin` to feed it input.",
        "category": "computation",
        "risk": "medium",
        "tags": ["shell", "bash"],
        "input_schema": [
            "type": "object",
            "properties": [
                "script": ["type": "string", "minLength": 1, "description": "The bash script."],
                "stdin": ["type": "string", "description": "Standard input of the script (default: empty)."],
            ],
            "required": ["script"],
            "additionalProperties": false,
        ],
        // bash -c SCRIPT NAME: the script is one argv element, never re-parsed by anything but bash itself.
        "command": ["argv": ["/bin/bash", "-c", "{{script}}", "shell"], "stdin": "{{stdin}}"],
        "mode": "sandbox",
    ]

    static let python: JSONValue = [
        "name": "python",
        "version": "1",
        "title": "Python 3",
        "description":
            "Runs Python 3 code in a fresh sandbox (no network, an empty writable /workspace and /tmp) and returns what it prints. Print JSON to get a parsed value back.",
        "category": "computation",
        "risk": "medium",
        "tags": ["python", "code"],
        "input_schema": [
            "type": "object",
            "properties": [
                "code": ["type": "string", "minLength": 1, "description": "The Python 3 program."],
                "stdin": ["type": "string", "description": "Standard input of the program (default: empty)."],
            ],
            "required": ["code"],
            "additionalProperties": false,
        ],
        // -I: isolated mode (no user site, no PYTHON* variables, script dir not on sys.path).
        "command": ["argv": ["/usr/bin/python3", "-I", "-c", "{{code}}"], "stdin": "{{stdin}}"],
        "mode": "sandbox",
    ]

    /// `exec` as a tool: the arguments of `exec` minus what `tools.call` itself carries (timeout, limits, stream).
    static let exec: JSONValue = [
        "name": "exec",
        "version": "1",
        "title": "Run a command",
        "description":
            "Runs a command (argv, never through a shell) in a fresh sandbox and returns its output: the `exec` method as a tool.",
        "category": "system",
        "risk": "high",
        "tags": ["exec"],
        "input_schema": [
            "type": "object",
            "properties": [
                "argv": [
                    "type": "array", "minItems": 1, "items": ["type": "string"],
                    "prefixItems": [["type": "string", "minLength": 1]],
                    "description": "The command and its arguments; argv[0] without a slash is looked up on PATH.",
                ],
                "stdin": ["type": "string"],
                "stdin_base64": ["type": "string"],
                "env": ["type": "object", "additionalProperties": ["type": "string"]],
                "cwd": ["type": "string", "pattern": "^/"],
            ],
            "required": ["argv"],
            "additionalProperties": false,
            "not": ["required": ["stdin", "stdin_base64"]],
        ],
        "mode": "sandbox",
    ]

    /// Loads the built-ins. They are constants checked by the tests; a failure is a defect, reported
    /// as a skipped "(built-in)" entry rather than a crash.
    static func load() -> (tools: [Tool], problems: [SkippedManifest]) {
        var tools: [Tool] = []
        var problems: [SkippedManifest] = []
        for json in [shell, python] {
            switch ManifestLoader.load(json, source: .builtin, file: nil) {
            case .success(let tool): tools.append(tool)
            case .failure(let found):
                problems += found.problems.map { SkippedManifest(file: "(built-in \(json["name"]?.stringValue ?? "?"))", field: $0.field, reason: $0.reason) }
            }
        }
        // `exec` has no command, which file manifests must have: build it without the manifest schema.
        do {
            let manifest = try JSONCoding.fromJSON(ToolManifest.self, exec)
            var found: [ManifestProblem] = []
            if let schema = ManifestLoader.compile(manifest.inputSchema, field: "/input_schema", &found) {
                tools.append(
                    Tool(manifest: manifest, json: exec, source: .builtin, file: nil, inputSchema: schema, outputSchema: nil, command: nil))
            }
            problems += found.map { SkippedManifest(file: "(built-in exec)", field: $0.field, reason: $0.reason) }
        } catch {
            problems.append(SkippedManifest(file: "(built-in exec)", field: "", reason: "\(error)"))
        }
        return (tools, problems)
    }
}
