import Foundation
import JSONSchema
import Testing
import ToolClient
import ToolProtocol

/// Tools through the real daemon: manifests from a tools directory, built-ins, registration over the
/// wire, `tools.call` in each isolation mode, retries, reload on SIGHUP, and the provider formats.
@Suite struct ToolsTests {
    // MARK: Placeholders and arguments

    /// Attack: arguments that a shell would interpret (`;`, `$(…)`, a newline, a leading dash taken as an
    /// option). Defence: a placeholder is one whole argv element, never a shell, never split.
    @Test func hostileArgumentsArriveVerbatimAsOneArgvElementEach() throws {
        let tools = try ToolsDirectory()
        defer { tools.remove() }
        try tools.write(
            "argv-echo",
            toolManifest(
                "argv-echo",
                properties: ["a": ["type": "string"], "b": ["type": "string"], "c": ["type": "string"], "d": ["type": "string"], "n": ["type": "integer"]],
                argv: ["/usr/bin/printf", "%s\\0", "{{a}}", "{{b}}", "{{c}}", "{{d}}", "{{n}}"]))
        let daemon = try TestDaemon(["--tools-dir", tools.path])
        defer { daemon.stop() }
        let c = try daemon.client()
        let hostile = ["; rm -rf / #", "$(id)", "line one\nline two", "-n"]
        let result = try c.call(
            RPCMethod.toolsCall,
            params: ["name": "argv-echo", "arguments": ["a": .string(hostile[0]), "b": .string(hostile[1]), "c": .string(hostile[2]), "d": .string(hostile[3]), "n": 42]])
        #expect(result["status"] == "exited" && result["exit_code"] == 0, "\(result)")
        let expected = Array((hostile + ["42"]).map { $0 + "\0" }.joined().utf8)
        #expect(result["stdout"]?.stringValue.map { Array($0.utf8) } == expected)
        #expect(result["output"]?["type"] == "text")
        #expect(result["output"]?["size_bytes"] == .int(Int64(expected.count)))
        #expect(result["output"]?["sha256"]?.stringValue == (try hostSHA256(expected)))

        // An absent argument drops its element; nothing else moves.
        let partial = try c.call(RPCMethod.toolsCall, params: ["name": "argv-echo", "arguments": ["a": "-e", "d": "x"]])
        #expect(partial["stdout"] == "-e\0x\0")
        // A NUL cannot be an argv element: refused before anything runs.
        let nul = try c.roundTrip(
            #"{"jsonrpc":"2.0","id":1,"method":"tools.call","params":{"name":"argv-echo","arguments":{"a":"x\u0000y"}}}"#)
        #expect(nul.errorCode == RPCErrorCode.invalidParams)
        #expect(nul["error"]?["data"]?["errors"]?.arrayValue?.first?["path"] == "/arguments/a")
    }

    @Test func placeholdersFillEnvironmentAndStdinAndTheArgumentsGoToStdinAsJSONByDefault() throws {
        let tools = try ToolsDirectory()
        defer { tools.remove() }
        try tools.write(
            "env-echo",
            toolManifest(
                "env-echo", properties: ["g": ["type": "string"]],
                argv: ["/bin/sh", "-c", "printf %s \"$GREETING\""], env: ["GREETING": "{{g}}", "FIXED": "1"], stdin: "none"))
        try tools.write("json-cat", toolManifest("json-cat", properties: ["x": [:], "y": ["type": "array"]], argv: ["/bin/cat"]))
        try tools.write(
            "text-cat", toolManifest("text-cat", properties: ["body": ["type": "string"]], argv: ["/bin/cat"], stdin: "{{body}}"))
        let daemon = try TestDaemon(["--tools-dir", tools.path])
        defer { daemon.stop() }
        let c = try daemon.client()
        let env = try c.call(RPCMethod.toolsCall, params: ["name": "env-echo", "arguments": ["g": "$(id) `id` ; echo"]])
        #expect(env["stdout"] == "$(id) `id` ; echo")
        let args: JSONValue = ["x": ["nested": [1, 2.5, nil, "s"]], "y": [true]]
        let json = try c.call(RPCMethod.toolsCall, params: ["name": "json-cat", "arguments": args])
        #expect(json["output"]?["type"] == "json")
        #expect(json["output"]?["value"] == args)
        let text = try c.call(RPCMethod.toolsCall, params: ["name": "text-cat", "arguments": ["body": "not json\n"]])
        #expect(text["output"]?["type"] == "text" && text["output"]?["value"] == "not json\n")
    }

    @Test func argumentsFailingTheSchemaAreRefusedWithEveryPath() throws {
        let tools = try ToolsDirectory()
        defer { tools.remove() }
        try tools.write(
            "strict",
            toolManifest(
                "strict",
                properties: [
                    "path": ["type": "string", "pattern": "^/workspace/"],
                    "count": ["type": "integer", "maximum": 10],
                    "opts": ["type": "object", "properties": ["depth": ["type": "integer"]], "additionalProperties": false],
                ],
                required: ["path"], argv: ["/bin/true"]))
        let daemon = try TestDaemon(["--tools-dir", tools.path])
        defer { daemon.stop() }
        let c = try daemon.client()
        let bad = try c.roundTrip(
            #"{"jsonrpc":"2.0","id":1,"method":"tools.call","params":{"name":"strict","arguments":{"path":"/etc/passwd","count":99,"opts":{"depth":"x","extra":1}}}}"#)
        #expect(bad.errorCode == RPCErrorCode.invalidParams)
        let paths = Set(bad["error"]?["data"]?["errors"]?.arrayValue?.compactMap { $0["path"]?.stringValue } ?? [])
        // additionalProperties is reported at the object that holds the extra member, naming it.
        #expect(paths == ["/arguments/path", "/arguments/count", "/arguments/opts/depth", "/arguments/opts"], "\(bad)")
        #expect(bad["error"]?["data"]?["errors"]?.arrayValue?.contains { $0["message"]?.stringValue?.contains("extra") == true } == true)
        try expectMatchesSchema(bad, "error")
        let missing = try c.roundTrip(#"{"jsonrpc":"2.0","id":2,"method":"tools.call","params":{"name":"strict"}}"#)
        #expect(missing.errorCode == RPCErrorCode.invalidParams)
        #expect(missing["error"]?["message"]?.stringValue?.contains("path") == true)
        let unknown = try c.roundTrip(#"{"jsonrpc":"2.0","id":3,"method":"tools.call","params":{"name":"nope"}}"#)
        #expect(unknown.errorCode == RPCErrorCode.notFound)
        // A name no tool can have (100 KB of it) is refused at /name without echoing it, and not recorded.
        let junk = String(repeating: "X", count: 100_000)
        for method in ["tools.call", "tools.get"] {
            let answer = try c.roundTrip(#"{"jsonrpc":"2.0","id":3,"method":"\#(method)","params":{"name":"\#(junk)"}}"#)
            #expect(answer.errorCode == RPCErrorCode.invalidParams, "\(method)")
            #expect(answer["error"]?["data"]?["errors"]?.arrayValue?.first?["path"] == "/name", "\(method)")
            #expect(JSONCoding.serialize(answer).count < 1_000, "\(method): the answer echoes the name")
        }
        let recorded = try c.call(RPCMethod.executionsList, params: ["limit": 1000])["executions"]?.arrayValue ?? []
        #expect(!recorded.contains { $0["tool"]?.stringValue?.hasPrefix("XXX") == true })
        let typo = try c.roundTrip(#"{"jsonrpc":"2.0","id":4,"method":"tools.call","params":{"name":"strict","args":{}}}"#)
        #expect(typo["error"]?["data"]?["errors"]?.arrayValue?.first?["path"] == "/args")
        let overMax = try c.roundTrip(
            #"{"jsonrpc":"2.0","id":5,"method":"tools.call","params":{"name":"strict","arguments":{"path":"/workspace/a"},"limits":{"pids":99999}}}"#)
        #expect(overMax["error"]?["message"]?.stringValue?.contains("maximum of 1024") == true)
    }

    /// ReDoS: a schema pattern that backtracks exponentially (an ordinary-looking domain-name pattern)
    /// and a caller's value crafted against it. Unbounded, each call would hold a daemon thread for
    /// seconds (days at 40 characters; two such calls stall every request); bounded, it is refused
    /// naming the time limit, and the daemon answers everyone meanwhile.
    @Test func aBacktrackingPatternIsCutOffByItsTimeLimit() throws {
        let tools = try ToolsDirectory()
        defer { tools.remove() }
        try tools.write(
            "resolve",
            toolManifest(
                "resolve", properties: ["host": ["type": "string", "pattern": #"^([a-z0-9]+\.?)+[a-z]+$"#]],
                required: ["host"], argv: ["/bin/echo", "{{host}}"]))
        let daemon = try TestDaemon(["--tools-dir", tools.path])
        defer { daemon.stop() }
        let hostile = String(repeating: "a", count: 28) + "!"
        // Four at once on one connection (requests run concurrently): more than the daemon has cores.
        let call: (String, JSONValue) = (RPCMethod.toolsCall, ["name": "resolve", "arguments": ["host": .string(hostile)]])
        let hostileCalls = try PeerClient(socket: daemon.socketPath, uid: 0, groups: [], requests: Array(repeating: call, count: 4))
        let c = try daemon.client()
        #expect(try c.call(RPCMethod.daemonStatus)["version"] != nil)
        try hostileCalls.finish()
        for id in 1...4 {
            let answer = hostileCalls.response(id)
            #expect(answer?["error"]?["code"] == .int(Int64(RPCErrorCode.invalidParams)), "\(String(describing: answer))")
            let error = answer?["error"]?["data"]?["errors"]?.arrayValue?.first
            #expect(error?["path"] == "/arguments/host", "\(String(describing: answer))")
            #expect(error?["message"]?.stringValue?.contains("time limit") == true, "\(String(describing: answer))")
        }
        // A large argument is validated off the cooperative pool (on a matching thread): the same answer.
        do {
            let large = try c.call(
                RPCMethod.toolsCall,
                params: ["name": "resolve", "arguments": ["host": .string(String(repeating: "a", count: 8192) + "!")]])
            Issue.record("a hostile 8 KiB host was accepted: \(large)")
        } catch ClientError.rpc(let error) {
            #expect(error.code == RPCErrorCode.invalidParams, "\(error)")
            #expect(error.message.contains("time limit") || "\(error)".contains("time limit"), "\(error)")
        }
        let fine = try c.call(RPCMethod.toolsCall, params: ["name": "resolve", "arguments": ["host": "example.com"]])
        #expect(fine["stdout"] == "example.com\n", "\(fine)")
    }

    // MARK: Built-ins

    @Test func shellAndPythonBuiltinsRunInTheSandbox() throws {
        let daemon = try TestDaemon(["--tools-dir", "/nonexistent/tools.d"])
        defer { daemon.stop() }
        let c = try daemon.client()
        let shell = try c.call(
            RPCMethod.toolsCall,
            params: ["name": "shell", "arguments": ["script": "id -u; hostname; cat; test -e /etc/debian_version || echo no-host-etc", "stdin": "fed\n"]])
        #expect(shell["status"] == "exited" && shell["exit_code"] == 0, "\(shell)")
        #expect(shell["stdout"] == "1000\nsandbox\nfed\nno-host-etc\n")
        let python = try c.call(
            RPCMethod.toolsCall,
            params: [
                "name": "python",
                "arguments": [
                    "code": """
                    import json, os, socket
                    try:
                        socket.create_connection(("1.1.1.1", 53), timeout=1); net = True
                    except OSError:
                        net = False
                    print(json.dumps({"uid": os.getuid(), "host": socket.gethostname(), "pid1": os.getpid() <= 3, "net": net}))
                    """
                ],
            ])
        #expect(python["output"]?["type"] == "json", "\(python)")
        #expect(python["output"]?["value"] == ["uid": 1000, "host": "sandbox", "pid1": true, "net": false])
        let exec = try c.call(RPCMethod.toolsCall, params: ["name": "exec", "arguments": ["argv": ["echo", "from exec"]]])
        #expect(exec["tool"] == "exec" && exec["stdout"] == "from exec\n")
        let list = try c.call(RPCMethod.toolsList)
        let names = list["tools"]?.arrayValue?.compactMap { $0["name"]?.stringValue }
        #expect(names == ["exec", "python", "shell"])
        #expect(list["skipped"] == .array([]))
    }

    // MARK: Isolation modes

    @Test func readOnlyModeCannotWriteTheWorkspace() throws {
        let tools = try ToolsDirectory()
        defer { tools.remove() }
        let script = "echo x > /workspace/f && echo wrote-workspace; echo y > /tmp/f && echo wrote-tmp; true"
        for mode in ["sandbox", "read_only"] {
            try tools.write("writer-\(mode)", toolManifest("writer-\(mode.replacing("_", with: "-"))", argv: ["/bin/sh", "-c", script], mode: mode))
        }
        let daemon = try TestDaemon(["--tools-dir", tools.path])
        defer { daemon.stop() }
        let c = try daemon.client()
        let sandbox = try c.call(RPCMethod.toolsCall, params: ["name": "writer-sandbox"])
        #expect(sandbox["stdout"] == "wrote-workspace\nwrote-tmp\n", "\(sandbox)")
        let readOnly = try c.call(RPCMethod.toolsCall, params: ["name": "writer-read-only"])
        #expect(readOnly["stdout"] == "wrote-tmp\n", "\(readOnly)")
        #expect(readOnly["stderr"]?.stringValue?.contains("Read-only file system") == true, "\(readOnly)")
    }

    @Test func networkModeReachesAHostLoopbackListenerAndSandboxCannot() throws {
        let listener = try LoopbackListener { _ in "hello from the host\n" }
        defer { listener.stop() }
        let tools = try ToolsDirectory()
        defer { tools.remove() }
        for mode in ["sandbox", "network"] {
            try tools.write("probe-\(mode)", probeToolManifest("probe-\(mode)", mode: mode))
        }
        let daemon = try TestDaemon(["--tools-dir", tools.path])
        defer { daemon.stop() }
        let c = try daemon.client()
        let network = try c.call(RPCMethod.toolsCall, params: ["name": "probe-network", "arguments": ["port": .int(Int64(listener.port))]])
        #expect(network["exit_code"] == 0 && network["stdout"] == "hello from the host\n", "\(network)")
        let sandbox = try c.call(RPCMethod.toolsCall, params: ["name": "probe-sandbox", "arguments": ["port": .int(Int64(listener.port))]])
        #expect(sandbox["exit_code"] != 0 && sandbox["stdout"] == "", "\(sandbox)")
        #expect(listener.connections == 1)
    }

    /// `trusted` promises the host's filesystem read-only (and host network) with the other isolation kept.
    /// Fails until the sandbox implements the mode (it answers `failed_to_start`, stage "mode").
    @Test func trustedModeSeesTheHostEtcReadOnly() throws {
        let hostVersion = try String(contentsOfFile: "/etc/debian_version", encoding: .utf8)
        let probe = "/etc/toold-trusted-probe-\(UUID().uuidString.prefix(8))"
        let tools = try ToolsDirectory()
        defer { tools.remove() }
        try tools.write(
            "trusted-etc",
            toolManifest("trusted-etc", argv: ["/bin/sh", "-c", "cat /etc/debian_version; touch \(probe) && echo WROTE; true"], mode: "trusted"))
        let daemon = try TestDaemon(["--tools-dir", tools.path])
        defer { daemon.stop() }
        let c = try daemon.client()
        let result = try c.call(RPCMethod.toolsCall, params: ["name": "trusted-etc"])
        defer { unlink(probe) }
        #expect(result["status"] == "exited", "trusted mode did not run: \(result["failure"] ?? .null)")
        #expect(result["stdout"]?.stringValue == hostVersion, "\(result)")
        #expect(!FileManager.default.fileExists(atPath: probe), "a trusted tool wrote to the host's /etc")
        #expect(result["stdout"]?.stringValue?.contains("WROTE") == false)
    }

    // MARK: Retries and serial tools

    /// A deterministic flake: the host listener answers "fail" to the first two connections and "ok" after.
    @Test func flakyIdempotentToolSucceedsOnItsThirdAttemptWithBackoff() throws {
        let listener = try LoopbackListener { n in n <= 2 ? "fail\n" : "ok\n" }
        defer { listener.stop() }
        let tools = try ToolsDirectory()
        defer { tools.remove() }
        var flaky = probeToolManifest("flaky", mode: "network", exitOnReply: true)
        flaky = flaky.setting("idempotent", true)
        flaky = flaky.setting("retry", ["max_attempts": 5, "initial_backoff_ms": 200, "max_backoff_ms": 1000, "on": ["exited"]])
        try tools.write("flaky", flaky)
        var once = probeToolManifest("once", mode: "network", exitOnReply: true)
        once = once.setting("idempotent", false)
        try tools.write("once", once)
        let daemon = try TestDaemon(["--tools-dir", tools.path])
        defer { daemon.stop() }
        let c = try daemon.client()
        let started = Date()
        let result = try c.call(RPCMethod.toolsCall, params: ["name": "flaky", "arguments": ["port": .int(Int64(listener.port))]])
        let elapsed = Date().timeIntervalSince(started)
        #expect(result["status"] == "exited" && result["exit_code"] == 0, "\(result)")
        #expect(result["attempts"] == 3)
        #expect(result["stdout"] == "ok\n")
        #expect(listener.connections == 3)
        // Equal jitter keeps at least half of each delay: 200/2 + 400/2 ms.
        #expect(elapsed >= 0.3, "retries did not back off: \(elapsed) s")
        #expect(daemon.log.contains("retrying"))
        try expectMatchesSchema(result, "tools.call.result")

        // Not idempotent: one attempt, its failure reported as is.
        let failing = try LoopbackListener { _ in "fail\n" }
        defer { failing.stop() }
        let single = try c.call(RPCMethod.toolsCall, params: ["name": "once", "arguments": ["port": .int(Int64(failing.port))]])
        #expect(single["attempts"] == 1 && single["exit_code"] == 1)
    }

    @Test func nonParallelToolRunsOneCallAtATime() throws {
        let tools = try ToolsDirectory()
        defer { tools.remove() }
        var serial = toolManifest("serial", argv: ["/bin/sleep", "0.6"])
        serial = serial.setting("parallel", false)
        try tools.write("serial", serial)
        let daemon = try TestDaemon(["--tools-dir", tools.path])
        defer { daemon.stop() }
        let a = try daemon.client(), b = try daemon.client()
        let started = Date()
        let idA = try a.send(RPCMethod.toolsCall, params: ["name": "serial"])
        let idB = try b.send(RPCMethod.toolsCall, params: ["name": "serial"])
        _ = try a.wait(for: idA)
        _ = try b.wait(for: idB)
        #expect(Date().timeIntervalSince(started) >= 1.2)
    }

    // MARK: Manifests

    @Test func badManifestsAreSkippedWithFileFieldAndReasonAndTheOthersLoad() throws {
        let tools = try ToolsDirectory()
        defer { tools.remove() }
        try tools.writeRaw("broken.json", "{\"name\": ")
        try tools.write("bad-name", toolManifest("Bad Name", argv: ["/bin/true"]))
        var badCategory = toolManifest("bad-category", argv: ["/bin/true"])
        badCategory = badCategory.setting("category", "weather")
        try tools.write("bad-category", badCategory)
        var badSchema = toolManifest("bad-schema", argv: ["/bin/true"])
        badSchema = badSchema.setting("input_schema", ["type": "object", "properties": ["a": ["minLength": "three"]]])
        try tools.write("bad-schema", badSchema)
        try tools.write("inner-placeholder", toolManifest("inner-placeholder", properties: ["a": ["type": "string"]], argv: ["/bin/echo", "--x={{a}}"]))
        try tools.write("undeclared", toolManifest("undeclared", argv: ["/bin/echo", "{{ghost}}"]))
        try tools.write("program-placeholder", toolManifest("program-placeholder", properties: ["p": ["type": "string"]], argv: ["{{p}}"]))
        var retryNotIdempotent = toolManifest("retry-not-idempotent", argv: ["/bin/true"])
        retryNotIdempotent = retryNotIdempotent.setting("retry", ["max_attempts": 3])
        try tools.write("retry-not-idempotent", retryNotIdempotent)
        try tools.write("dup-a", toolManifest("dup", argv: ["/bin/true"]))
        try tools.write("dup-b", toolManifest("dup", argv: ["/bin/false"]))
        try tools.write("shadow-builtin", toolManifest("shell", argv: ["/bin/true"]))
        try tools.write("group-writable", toolManifest("group-writable", argv: ["/bin/true"]))
        chmod(tools.file("group-writable"), 0o664)
        try tools.write("good", toolManifest("good", argv: ["/bin/echo", "still loaded"]))

        let daemon = try TestDaemon(["--tools-dir", tools.path, "--socket-group", "toold"])
        defer { daemon.stop() }
        let c = try daemon.client()
        let list = try c.call(RPCMethod.toolsList)
        try expectMatchesSchema(list, "tools.list.result")
        let names = Set(list["tools"]?.arrayValue?.compactMap { $0["name"]?.stringValue } ?? [])
        #expect(names == ["dup", "exec", "good", "python", "shell"])
        let skipped = try JSONCoding.fromJSON([SkippedManifest].self, list["skipped"] ?? .null)
        func reason(_ file: String, _ field: String) -> String? {
            skipped.first { $0.file == tools.file(file) && $0.field == field }?.reason
        }
        #expect(reason("broken", "")?.contains("not valid JSON") == true, "\(skipped)")
        #expect(reason("bad-name", "/name")?.contains("must match pattern") == true)
        #expect(reason("bad-category", "/category")?.contains("must be one of") == true)
        #expect(reason("bad-schema", "/input_schema/properties/a/minLength")?.contains("invalid JSON Schema") == true, "\(skipped)")
        #expect(reason("inner-placeholder", "/command/argv/1")?.contains("whole element") == true)
        #expect(reason("undeclared", "/command/argv/1")?.contains("ghost") == true)
        #expect(reason("program-placeholder", "/command/argv/0")?.contains("argv[0]") == true)
        #expect(reason("retry-not-idempotent", "/idempotent")?.contains("idempotent") == true, "\(skipped)")
        #expect(reason("dup-b", "/name")?.contains(tools.file("dup-a")) == true)
        #expect(reason("shadow-builtin", "/name")?.contains("built-in") == true)
        #expect(reason("group-writable", "")?.contains("writable by group or others") == true)
        // The log says the same, with the file.
        #expect(daemon.log.contains("tool manifest skipped") && daemon.log.contains(tools.file("bad-category")))
        let good = try c.call(RPCMethod.toolsCall, params: ["name": "good"])
        #expect(good["stdout"] == "still loaded\n")

        // A non-admin sees the tools but not which files failed.
        let socketGroup = try #require(groupID("toold"), "scripts/deps creates the toold group")
        let out = try daemon.toolc(["tools", "list", "--json"], asUID: 65534, groups: [socketGroup])
        #expect(out.status == 0, "\(out.stderr)")
        let asUser = try JSONCoding.parse(out.stdoutBytes)
        #expect(asUser["skipped"] == nil && asUser["tools"]?.arrayValue?.count == 5)
        // Human output for an admin lists the skipped files.
        let human = try daemon.toolc(["tools", "list"])
        #expect(human.stdout.contains("skipped manifests:") && human.stdout.contains(tools.file("broken")))
    }

    @Test func registerAndUnregisterAsAdminPersistAcrossRestartsAndAreRefusedForOthers() throws {
        let state = try TempDir("tools-state")
        defer { state.remove() }
        let files = try ToolsDirectory()
        defer { files.remove() }
        try files.write("reg", toolManifest("reg.echo", properties: ["w": ["type": "string"]], argv: ["/bin/echo", "{{w}}"]))
        try files.writeRaw("invalid.json", #"{"name":"x","description":"d","category":"custom","risk":"low","input_schema":{"type":"string"},"command":{"argv":["/bin/true"]}}"#)
        let socketGroup = try #require(groupID("toold"), "scripts/deps creates the toold group")
        let arguments = ["--tools-dir", "/nonexistent", "--socket-group", "toold", "--state-dir", state.path + "/state"]
        do {
            let daemon = try TestDaemon(arguments)
            defer { daemon.stop() }
            let denied = try daemon.toolc(["tools", "register", files.file("reg")], asUID: 65534, groups: [socketGroup])
            #expect(denied.status == 125 && denied.stderr.contains("permission denied"), "\(denied)")
            let registered = try daemon.toolc(["tools", "register", files.file("reg")])
            #expect(registered.status == 0 && registered.stdout == "registered reg.echo\n", "\(registered)")
            let again = try daemon.toolc(["tools", "register", files.file("reg"), "--json"])
            try expectMatchesSchema(JSONCoding.parse(again.stdoutBytes), "tools.register.result")
            #expect(again.stdout.contains("\"replaced\":true"))
            let invalid = try daemon.toolc(["tools", "register", files.file("invalid")])
            #expect(invalid.status == 125 && invalid.stderr.contains("/manifest/input_schema/type"), "\(invalid)")
            let called = try daemon.toolc(["call", "reg.echo", "--arg", "w=hello there"], asUID: 65534, groups: [socketGroup])
            #expect(called.status == 0 && called.stdout == "hello there\n", "\(called)")
            let c = try daemon.client()
            let builtin = try c.roundTrip(#"{"jsonrpc":"2.0","id":1,"method":"tools.unregister","params":{"name":"shell"}}"#)
            #expect(builtin.errorCode == RPCErrorCode.invalidParams)
            let missing = try c.roundTrip(#"{"jsonrpc":"2.0","id":2,"method":"tools.unregister","params":{"name":"nope"}}"#)
            #expect(missing.errorCode == RPCErrorCode.notFound)
            #expect(FileManager.default.fileExists(atPath: state.path + "/state/tools/reg.echo.json"))
        }
        // A new daemon on the same state directory still has the tool; a non-admin cannot remove it.
        let daemon = try TestDaemon(arguments)
        defer { daemon.stop() }
        let c = try daemon.client()
        #expect(try c.call(RPCMethod.toolsGet, params: ["name": "reg.echo"])["name"] == "reg.echo")
        let denied = try daemon.toolc(["tools", "unregister", "reg.echo"], asUID: 65534, groups: [socketGroup])
        #expect(denied.status == 125 && denied.stderr.contains("permission denied"))
        let removed = try daemon.toolc(["tools", "unregister", "reg.echo"])
        #expect(removed.status == 0, "\(removed)")
        #expect(try c.roundTrip(#"{"jsonrpc":"2.0","id":3,"method":"tools.get","params":{"name":"reg.echo"}}"#).errorCode == RPCErrorCode.notFound)
        #expect(!FileManager.default.fileExists(atPath: state.path + "/state/tools/reg.echo.json"))
    }

    @Test func sighupReloadPicksUpNewAndRemovedFiles() throws {
        let tools = try ToolsDirectory()
        defer { tools.remove() }
        try tools.write("first", toolManifest("first", argv: ["/bin/echo", "1"]))
        let daemon = try TestDaemon(["--tools-dir", tools.path])
        defer { daemon.stop() }
        let c = try daemon.client()
        func names() throws -> Set<String> {
            Set(try c.call(RPCMethod.toolsList)["tools"]?.arrayValue?.compactMap { $0["name"]?.stringValue } ?? [])
        }
        #expect(try names().contains("first"))
        try tools.write("second", toolManifest("second", argv: ["/bin/echo", "2"]))
        unlink(tools.file("first"))
        #expect(try !names().contains("second"), "loaded before the reload")
        daemon.signal(SIGHUP)
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline, try !names().contains("second") { usleep(50_000) }
        #expect(try names().contains("second") && !names().contains("first"))
        #expect(try c.call(RPCMethod.toolsCall, params: ["name": "second"])["stdout"] == "2\n")
    }

    // MARK: Output

    @Test func outputIsTypedAndCheckedAgainstTheOutputSchema() throws {
        let tools = try ToolsDirectory()
        defer { tools.remove() }
        var typed = toolManifest("typed", properties: ["x": [:]], argv: ["/bin/cat"])
        typed = typed.setting("output_schema", ["type": "object", "required": ["x"], "properties": ["x": ["type": "integer"]]])
        try tools.write("typed", typed)
        try tools.write("binary", toolManifest("binary", argv: ["/usr/bin/printf", "\\377\\376"], stdin: "none"))
        let daemon = try TestDaemon(["--tools-dir", tools.path])
        defer { daemon.stop() }
        let c = try daemon.client()
        let good = try c.call(RPCMethod.toolsCall, params: ["name": "typed", "arguments": ["x": 5]])
        #expect(good["status"] == "exited" && good["output"]?["value"] == ["x": 5])
        #expect(good["output_errors"] == nil)
        let bad = try c.call(RPCMethod.toolsCall, params: ["name": "typed", "arguments": ["x": "five"]])
        #expect(bad["status"] == "invalid_output", "\(bad)")
        #expect(bad["output_errors"]?.arrayValue?.first?["path"] == "/x")
        #expect(bad["output_errors"]?.arrayValue?.first?["schema_path"] == "/properties/x/type")
        try expectMatchesSchema(bad, "tools.call.result")
        let binary = try c.call(RPCMethod.toolsCall, params: ["name": "binary"])
        #expect(binary["output"]?["type"] == "binary" && binary["output"]?["value"] == "//4=")
        #expect(binary["output"]?["sha256"]?.stringValue == (try hostSHA256([0xFF, 0xFE])))
        try expectMatchesSchema(binary, "tools.call.result")

        // toolc: the output as text or pretty JSON; 121 for invalid output.
        let human = try daemon.toolc(["call", "typed", "--arg", "x:=7"])
        #expect(human.status == 0, "\(human)")
        #expect(try JSONCoding.parse(human.stdoutBytes) == ["x": 7])
        let invalid = try daemon.toolc(["call", "typed", "--args-json", #"{"x":"seven"}"#])
        #expect(invalid.status == 121 && invalid.stderr.contains("/x"), "\(invalid)")
    }

    // MARK: Provider formats and protocol schemas

    @Test func schemasInEveryFormatMatchTheirDocumentedShapes() throws {
        let tools = try ToolsDirectory()
        defer { tools.remove() }
        var fetch = toolManifest("net.fetch", properties: ["url": ["type": "string"]], argv: ["/bin/echo", "{{url}}"])
        fetch = fetch.setting("title", "Fetch")
        fetch = fetch.setting("output_schema", ["type": "object"])
        try tools.write("a-fetch", fetch)
        try tools.write("b-fetch-twin", toolManifest("net_fetch", argv: ["/bin/true"]))
        let daemon = try TestDaemon(["--tools-dir", tools.path])
        defer { daemon.stop() }
        let c = try daemon.client()
        for format in ToolSchemaFormat.allCases {
            try expectMatchesSchema(["format": .string(format.rawValue)], "tools.schemas.params")
            let result = try c.call(RPCMethod.toolsSchemas, params: ["format": .string(format.rawValue)])
            try expectMatchesSchema(result, "tools.schemas.\(format.rawValue)")
            #expect(result["tools"]?.arrayValue?.count == 4)
            let out = try daemon.toolc(["tools", "schemas", "--format", format.rawValue, "--json"])
            #expect(try JSONCoding.parse(out.stdoutBytes) == result["tools"])
        }
        let openai = try c.call(RPCMethod.toolsSchemas, params: ["format": "openai"])
        #expect(openai["tools"]?.arrayValue?.contains { $0["function"]?["name"] == "net_fetch" } == true)
        let mcp = try c.call(RPCMethod.toolsSchemas, params: ["format": "mcp"])
        #expect(mcp["tools"]?.arrayValue?.contains { $0["name"] == "net.fetch" && $0["outputSchema"] == ["type": "object"] } == true)
        // The provider spelling calls the same tool; the twin that would collide with it was skipped.
        #expect(try c.call(RPCMethod.toolsCall, params: ["name": "net_fetch", "arguments": ["url": "u"]])["tool"] == "net.fetch")
        #expect(try c.call(RPCMethod.toolsList)["skipped"]?.arrayValue?.first?["reason"]?.stringValue?.contains("collides") == true)
    }

    @Test func answersMatchTheirProtocolSchemas() throws {
        let tools = try ToolsDirectory()
        defer { tools.remove() }
        try tools.write("hello", toolManifest("hello", argv: ["/bin/echo", "hi"], stdin: "none"))
        let daemon = try TestDaemon(["--tools-dir", tools.path])
        defer { daemon.stop() }
        let c = try daemon.client()
        let listParams: JSONValue = ["category": "custom", "risk": "low", "tag": "test"]
        try expectMatchesSchema(listParams, "tools.list.params")
        let filtered = try c.call(RPCMethod.toolsList, params: listParams)
        try expectMatchesSchema(filtered, "tools.list.result")
        #expect(filtered["tools"]?.arrayValue?.compactMap { $0["name"]?.stringValue } == ["hello"])
        #expect(try c.call(RPCMethod.toolsList, params: ["category": "computation"])["tools"]?.arrayValue?.count == 2)
        for name in ["hello", "shell", "python", "exec"] {
            try expectMatchesSchema(["name": .string(name)], "tools.get.params")
            try expectMatchesSchema(c.call(RPCMethod.toolsGet, params: ["name": .string(name)]), "tools.get.result")
        }
        let manifestSchema = try toolsProtocolSchema("tool.manifest")
        for name in ["hello", "shell", "python"] {
            #expect(manifestSchema.isValid(try c.call(RPCMethod.toolsGet, params: ["name": .string(name)])), "\(name)")
        }
        var notes: [RPCRequest] = []
        c.onNotification = { notes.append($0) }
        let params: JSONValue = ["name": "hello", "arguments": [:], "timeout_ms": 5000, "limits": ["pids": 8], "stream": true]
        try expectMatchesSchema(params, "tools.call.params")
        let result = try c.call(RPCMethod.toolsCall, params: params)
        try expectMatchesSchema(result, "tools.call.result")
        #expect(notes.first?.method == RPCMethod.execStarted && notes.first?.params?["execution_id"] == result["execution_id"])
        #expect(notes.contains { $0.method == RPCMethod.execOutput && $0.params?["data"] == "hi\n" })
        try expectMatchesSchema(["manifest": ["name": "x"]], "tools.register.params")
        try expectMatchesSchema(["name": "x"], "tools.unregister.params")
        let registered = try c.call(RPCMethod.toolsRegister, params: ["manifest": toolManifest("temp", argv: ["/bin/true"])])
        try expectMatchesSchema(registered, "tools.register.result")
        try expectMatchesSchema(c.call(RPCMethod.toolsUnregister, params: ["name": "temp"]), "tools.unregister.result")
        let badFormat = try c.roundTrip(#"{"jsonrpc":"2.0","id":9,"method":"tools.schemas","params":{"format":"gemini"}}"#)
        #expect(badFormat.errorCode == RPCErrorCode.invalidParams)
        try expectMatchesSchema(badFormat, "error")
    }
}

// MARK: Support

/// A tools directory of manifests written by the test (root-owned, mode 0644: loadable).
/// A tool that connects to 127.0.0.1:{{port}} and prints the first line it reads; with `exitOnReply`,
/// it exits 0 only when that line is "ok".
private func probeToolManifest(_ name: String, mode: String, exitOnReply: Bool = false) -> JSONValue {
    let code = """
        import socket, sys
        line = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5).makefile().readline()
        sys.stdout.write(line)
        \(exitOnReply ? "sys.exit(0 if line == 'ok\\n' else 1)" : "")
        """
    return toolManifest(
        name, properties: ["port": ["type": "integer", "minimum": 1, "maximum": 65535]], required: ["port"],
        argv: ["/usr/bin/python3", "-I", "-c", code, "{{port}}"], stdin: "none", mode: mode)
}

/// A TCP listener on the host's 127.0.0.1 that answers each connection with `reply(n)` (n from 1).
private final class LoopbackListener: @unchecked Sendable {
    // @unchecked: fd and port are set in init; the counter is behind a lock.
    let fd: Int32
    let port: UInt16
    private let count = NSLock()
    private var accepted = 0

    var connections: Int { count.withLock { accepted } }

    init(reply: @escaping @Sendable (Int) -> String) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.fd = fd
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound, listen(fd, 8) == 0 else { throw TestFailure("cannot listen on 127.0.0.1") }
        port = UInt16(bigEndian: address.sin_port)
        let listener = fd
        Thread.detachNewThread { [self] in
            while true {
                let client = accept(listener, nil, nil)
                if client < 0 { return }
                let n = count.withLock {
                    accepted += 1
                    return accepted
                }
                let bytes = Array(reply(n).utf8)
                _ = bytes.withUnsafeBytes { write(client, $0.baseAddress, $0.count) }
                close(client)
            }
        }
    }

    func stop() {
        shutdown(fd, Int32(SHUT_RDWR))
        close(fd)
    }
}

private func toolsProtocolSchema(_ name: String) throws -> CompiledSchema {
    let data = try Data(contentsOf: Binaries.repoRoot.appendingPathComponent("protocol/schema/\(name).json"))
    return try CompiledSchema(JSONCoding.parse(Array(data)))
}

private func expectMatchesSchema(_ value: JSONValue, _ schemaName: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
    let errors = try toolsProtocolSchema(schemaName).validate(value)
    #expect(errors.isEmpty, "\(schemaName): \(errors) for \(JSONCoding.serializeString(value))", sourceLocation: sourceLocation)
}

/// The digest by the host's sha256sum, to check the daemon's own SHA-256.
private func hostSHA256(_ bytes: [UInt8]) throws -> String {
    let out = try runProgram("/usr/bin/sha256sum", [], stdin: bytes)
    return String(out.stdout.prefix(64))
}

private extension JSONValue {
    /// A copy of this object with `key` set.
    func setting(_ key: String, _ value: JSONValue) -> JSONValue {
        var object = objectValue ?? [:]
        object[key] = value
        return .object(object)
    }
}
