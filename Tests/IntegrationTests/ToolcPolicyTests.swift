import Foundation
import Testing
import ToolClient
import ToolProtocol

/// `toolc policy`, `toolc policy check`, `toolc approvals|approve|deny` and the exit codes of policy
/// refusals, through the real daemon and the real toolc running as test uids (CI is root).
@Suite struct ToolcPolicyTests {
    static let alice: UInt32 = 64001  // shell and exec need approval; python denied
    static let bob: UInt32 = 64002  // everything, in sandbox and network mode; two calls per tool a minute

    static let policy = """
        {"approval_timeout_ms": 60000,
         "principals": {
           "group:toold": {"allow": ["shell", "python", "exec"], "modes": ["sandbox", "read_only"],
                           "limits": {"memory_bytes": 536870912}, "rate": {"per_minute": 1000}},
           "user:64001": {"deny": ["python"], "require_approval": ["shell", "exec"]},
           "user:64002": {"allow": ["*"], "modes": ["sandbox", "network"], "rate": {"per_tool_per_minute": 2}},
           "user:root": {"allow": ["*"], "modes": ["sandbox", "read_only", "network", "trusted"]}
         }}
        """

    static var socketGroup: UInt32 { groupID("toold") ?? 0 }

    static func daemon(_ arguments: [String] = []) throws -> TestDaemon {
        try TestDaemon(arguments, policy: policy)
    }

    static func toolc(_ daemon: TestDaemon, _ uid: UInt32?, _ arguments: [String]) throws -> ProcessOutput {
        try daemon.toolc(arguments, asUID: uid, groups: uid == nil ? [] : [socketGroup])
    }

    // MARK: toolc policy

    @Test func policyShowsEachIdentitysRulesWithTheirSources() throws {
        let daemon = try Self.daemon()
        defer { daemon.stop() }

        let alice = try Self.toolc(daemon, Self.alice, ["policy"])
        #expect(alice.status == 0, "\(alice.stderr)")
        let aliceLines = alice.stdout.split(separator: "\n").map(String.init)
        #expect(aliceLines.contains("subject:          user:64001 (uid 64001)"), "\(alice.stdout)")
        #expect(aliceLines.contains("principals:       user:64001, group:toold"), "\(alice.stdout)")
        #expect(aliceLines.contains("modes:            sandbox, read_only  (group:toold)"), "\(alice.stdout)")
        #expect(aliceLines.contains("rates:            1000 per minute (group:toold)"), "\(alice.stdout)")
        #expect(aliceLines.contains { $0.hasPrefix("  memory_bytes") && $0.contains("536870912 (512 MiB)") && $0.hasSuffix("group:toold") })
        #expect(aliceLines.contains(#"require approval: user:64001 require_approval "shell""#), "\(alice.stdout)")
        #expect(aliceLines.contains { Self.row($0, "python", "deny", #"user:64001 deny "python""#) }, "\(alice.stdout)")
        #expect(
            aliceLines.contains {
                Self.row($0, "shell", "approval", #"group:toold allow "shell"; approval: user:64001 require_approval "shell""#)
            }, "\(alice.stdout)")

        let bob = try Self.toolc(daemon, Self.bob, ["policy"])
        #expect(bob.status == 0, "\(bob.stderr)")
        let bobLines = bob.stdout.split(separator: "\n").map(String.init)
        #expect(bobLines.contains("modes:            sandbox, network  (user:64002)"), "\(bob.stdout)")
        #expect(bobLines.contains("rates:            1000 per minute (group:toold), 2 per tool per minute (user:64002)"), "\(bob.stdout)")
        #expect(bobLines.contains("require approval: none"), "\(bob.stdout)")
        #expect(bobLines.contains { Self.row($0, "python", "allow", #"user:64002 allow "*""#) }, "\(bob.stdout)")

        let bobJSON = try Self.toolc(daemon, Self.bob, ["policy", "--json"])
        let view = try JSONCoding.fromJSON(PolicyView.self, JSONCoding.parse(bobJSON.stdoutBytes))
        #expect(view.subject == "user:64002" && view.rate.perToolPerMinute == PolicySetting(value: 2, rule: "user:64002"))

        // Another user's policy is for admins; admins may ask for anyone's, and any group's.
        let nosy = try Self.toolc(daemon, Self.alice, ["policy", "--user", String(Self.bob)])
        #expect(nosy.status == ToolcExit.rejected && nosy.stderr.contains("only admins"), "\(nosy)")
        let asked = try Self.toolc(daemon, nil, ["policy", "show", "--user", String(Self.alice)])
        #expect(asked.status == 0 && asked.stdout.contains("subject:          user:64001 (uid 64001)"), "\(asked)")
        let group = try Self.toolc(daemon, nil, ["policy", "--group", "toold"])
        #expect(group.status == 0, "\(group.stderr)")
        #expect(group.stdout.hasPrefix("subject:          group:toold\n"), "\(group.stdout)")
        #expect(group.stdout.split(separator: "\n").contains { Self.row(String($0), "shell", "allow", #"group:toold allow "shell""#) })
        let both = try Self.toolc(daemon, nil, ["policy", "--user", "root", "--group", "toold"])
        #expect(both.status == 64, "\(both)")
    }

    /// A tools-table line: `  TOOL  VERDICT  MODE  RULE` with any spacing.
    static func row(_ line: String, _ tool: String, _ verdict: String, _ rule: String) -> Bool {
        let words = line.split(separator: " ")
        return words.count >= 4 && words[0] == tool && words[1] == verdict && line.hasSuffix(" " + rule)
    }

    @Test func policyCheckExplainsTheDecisionAndExitsByIt() throws {
        let daemon = try Self.daemon()
        defer { daemon.stop() }
        let cases: [(uid: UInt32?, arguments: [String], status: Int32, line: String)] = [
            (Self.alice, ["shell"], 1, #"needs approval: user:64001 require_approval "shell" (allowed by group:toold allow "shell") in mode sandbox"#),
            (Self.alice, ["python"], 1, #"denied: user:64001 deny "python""#),
            (Self.alice, ["--mode", "network", "exec"], 1, "denied: mode network not permitted (allowed: sandbox, read_only; group:toold)"),
            (Self.bob, ["--mode", "network", "exec"], 0, #"64002 may call exec (user:64002 allow "*") in mode network"#),
            (Self.bob, ["--mode", "trusted", "exec"], 1, "denied: mode trusted not permitted (allowed: sandbox, network; user:64002)"),
            (Self.bob, ["shell"], 0, #"64002 may call shell (user:64002 allow "*") in mode sandbox"#),
            (nil, ["--user", "64002", "--mode", "network", "exec"], 0, #"64002 may call exec (user:64002 allow "*") in mode network"#),
            (nil, ["--group", "toold", "python"], 0, #"group:toold may call python (group:toold allow "python") in mode sandbox"#),
        ]
        for c in cases {
            let out = try Self.toolc(daemon, c.uid, ["policy", "check"] + c.arguments)
            #expect(out.status == c.status && out.stdout == c.line + "\n", "\(c.arguments) as \(c.uid.map(String.init) ?? "root"): \(out)")
        }

        let json = try Self.toolc(daemon, Self.alice, ["policy", "check", "--json", "shell"])
        #expect(json.status == 1, "\(json)")
        let decision = try JSONCoding.parse(json.stdoutBytes)
        #expect(decision["verdict"] == "approval" && decision["allowed"] == false, "\(decision)")
        #expect(decision["approval_rule"] == #"user:64001 require_approval "shell""#, "\(decision)")

        let fixedMode = try Self.toolc(daemon, Self.bob, ["policy", "check", "--mode", "network", "shell"])
        #expect(fixedMode.status == 64 && fixedMode.stderr.contains("always runs in mode sandbox"), "\(fixedMode)")
        let unknown = try Self.toolc(daemon, Self.bob, ["policy", "check", "no.such.tool"])
        #expect(unknown.status == ToolcExit.rejected && unknown.stderr.contains("no tool named"), "\(unknown)")
    }

    // MARK: approvals

    /// alice's `toolc call` waits; root sees it, approves it, and alice's call completes. Then alice's
    /// `toolc exec` waits and root denies it: alice's toolc exits with the approval-denied code and the reason.
    @Test func approvalsEndToEndAcrossTwoIdentities() throws {
        let daemon = try Self.daemon()
        defer { daemon.stop() }

        let call = try BackgroundToolc(daemon, uid: Self.alice, ["call", "shell", "--arg", "script=echo approved"])
        let pending = try waitForPending(daemon, tool: "shell")
        let id = try #require(pending["execution_id"]?.stringValue)
        #expect(pending["user"] == "64001" && pending["uid"] == .int(Int64(Self.alice)))
        #expect(pending["rule"] == #"user:64001 require_approval "shell""#)
        #expect(pending["arguments"] == ["script": "echo approved"])
        try waitUntil("toolc said it waits") { call.stderr.contains("execution id") }
        #expect(
            call.stderr == "toolc: waiting for an admin's approval (rule user:64001 require_approval \"shell\"); "
                + "execution id \(id); expires in 60s — Ctrl-C cancels\n", "\(call.stderr)")

        let table = try Self.toolc(daemon, nil, ["approvals"])
        #expect(table.status == 0 && table.stdout.hasPrefix("EXECUTION ID"), "\(table)")
        #expect(table.stdout.contains(id) && table.stdout.contains(#"{"script":"echo approved"}"#), "\(table.stdout)")
        let status = try Self.toolc(daemon, nil, ["status"])
        #expect(status.stdout.contains("executions: 0 running, 0 queued, 1 waiting for approval\n"), "\(status.stdout)")
        #expect(status.stdout.contains("\n  64001: 0 running, 0 queued, 1 waiting for approval\n"), "\(status.stdout)")
        let own = try Self.toolc(daemon, Self.alice, ["approve", id])
        #expect(own.status == ToolcExit.rejected && own.stderr.contains("only admins"), "\(own)")
        let listed = try Self.toolc(daemon, Self.alice, ["approvals"])
        #expect(listed.status == ToolcExit.rejected, "\(listed)")

        let approve = try Self.toolc(daemon, nil, ["approve", id, "--reason", "looks fine"])
        #expect(approve.status == 0 && approve.stdout == "approved \(id)\n", "\(approve)")
        let done = try call.finish()
        #expect(done.status == 0 && done.stdout == "approved\n", "\(done)")
        let again = try Self.toolc(daemon, nil, ["approve", id])
        #expect(again.status == ToolcExit.rejected, "a decided call cannot be decided again: \(again)")

        let exec = try BackgroundToolc(daemon, uid: Self.alice, ["exec", "--", "echo", "never"])
        let waiting = try waitForPending(daemon, tool: "exec")
        let execID = try #require(waiting["execution_id"]?.stringValue)
        #expect(waiting["arguments"]?["argv"] == ["echo", "never"], "\(waiting)")
        let deny = try Self.toolc(daemon, nil, ["deny", execID, "--reason", "not today"])
        #expect(deny.status == 0 && deny.stdout == "denied \(execID)\n", "\(deny)")
        let denied = try exec.finish()
        #expect(denied.status == ToolcExit.approvalDenied, "\(denied)")
        #expect(denied.stdout.isEmpty, "the command never ran: \(denied.stdout)")
        #expect(denied.stderr.hasSuffix("toolc: approval denied: root denied the call: not today\n"), "\(denied.stderr)")
        let empty = try Self.toolc(daemon, nil, ["approvals"])
        #expect(empty.stdout == "no calls wait for approval\n", "\(empty)")
    }

    /// Ctrl-C while a call waits sends exec.cancel with the pending execution id: the daemon answers
    /// "cancelled while waiting for approval" (not a dropped connection), and the call is gone.
    @Test func ctrlCWhileWaitingForApprovalCancelsTheCall() throws {
        let daemon = try Self.daemon()
        defer { daemon.stop() }
        for (arguments, tool) in [(["call", "shell", "--arg", "script=echo x"], "shell"), (["exec", "--", "true"], "exec")] {
            let toolc = try BackgroundToolc(daemon, uid: Self.alice, arguments)
            _ = try waitForPending(daemon, tool: tool)
            try waitUntil("toolc said it waits") { toolc.stderr.contains("Ctrl-C cancels") }
            toolc.interrupt()
            let out = try toolc.finish()
            #expect(out.status == ToolcExit.cancelled, "\(arguments): \(out)")
            #expect(out.stderr.hasSuffix("toolc: cancelled while waiting for approval\n"), "\(arguments): \(out.stderr)")
            let list = try daemon.client().call(RPCMethod.approvalsList)
            #expect(list == ["approvals": []], "\(list)")
        }
    }

    @Test func anExpiredApprovalExitsWithTheApprovalDeniedCode() throws {
        let daemon = try Self.daemon(["--manual-clock"])
        defer { daemon.stop() }
        let toolc = try BackgroundToolc(daemon, uid: Self.alice, ["call", "shell", "--arg", "script=echo late"])
        _ = try waitForPending(daemon, tool: "shell")
        _ = try daemon.client().call(RPCMethod.testingClockAdvance, params: ["ms": 60000])
        let out = try toolc.finish()
        #expect(out.status == ToolcExit.approvalDenied, "\(out)")
        #expect(out.stderr.hasSuffix("toolc: approval denied: nobody decided within 60000 ms; the request expired\n"), "\(out.stderr)")
    }

    // MARK: refusals and their exit codes

    @Test func rateLimitedAndOverloadedHaveTheirOwnExitCodes() throws {
        let daemon = try Self.daemon(["--manual-clock", "--max-running", "1", "--max-queued", "0"])
        defer { daemon.stop() }
        for _ in 0..<2 {
            let ok = try Self.toolc(daemon, Self.bob, ["exec", "--", "true"])
            #expect(ok.status == 0, "\(ok)")
        }
        let limited = try Self.toolc(daemon, Self.bob, ["exec", "--", "true"])
        #expect(limited.status == ToolcExit.rateLimited, "\(limited)")
        #expect(
            limited.stderr == "toolc: rate limited: 2 calls of \"exec\" per minute reached "
                + "(rule user:64002 rate.per_tool_per_minute; retry after 60000 ms)\n", "\(limited.stderr)")
        _ = try daemon.client().call(RPCMethod.testingClockAdvance, params: ["ms": 60000])
        #expect(try Self.toolc(daemon, Self.bob, ["exec", "--", "true"]).status == 0)

        let sleeper = try BackgroundToolc(daemon, uid: nil, ["exec", "--", "sleep", "30"])
        let watcher = try daemon.client()
        try waitUntil("the sleeper runs") { try watcher.call(RPCMethod.daemonStatus)["executions"]?["running"] == 1 }
        let overloaded = try Self.toolc(daemon, nil, ["exec", "--", "true"])
        #expect(overloaded.status == ToolcExit.overloaded, "\(overloaded)")
        #expect(overloaded.stderr.hasPrefix("toolc: overloaded: the queue is full"), "\(overloaded.stderr)")
        #expect(overloaded.stderr.contains("(retry after ") && overloaded.stderr.hasSuffix(" ms)\n"), "\(overloaded.stderr)")
        let viaCall = try Self.toolc(daemon, nil, ["call", "shell", "--arg", "script=true"])
        #expect(viaCall.status == ToolcExit.overloaded, "\(viaCall)")
        sleeper.interrupt()
        #expect(try sleeper.finish().status == ToolcExit.cancelled)
    }

    @Test func execModeIsSentAndRefusedModesNameTheRule() throws {
        let daemon = try Self.daemon()
        defer { daemon.stop() }
        // read_only: /workspace cannot be written.
        let readOnly = try Self.toolc(daemon, nil, ["exec", "--mode", "read_only", "--", "sh", "-c", "touch /workspace/x"])
        #expect(readOnly.status != 0, "\(readOnly)")
        #expect(try Self.toolc(daemon, nil, ["exec", "--mode", "sandbox", "--", "sh", "-c", "touch /workspace/x"]).status == 0)
        let refused = try Self.toolc(daemon, Self.alice, ["exec", "--mode", "network", "--", "true"])
        #expect(refused.status == ToolcExit.rejected, "\(refused)")
        #expect(
            refused.stderr == "toolc: permission denied: 64001 may not use the network mode (allowed: sandbox, read_only) "
                + "(rule group:toold modes)\n", "\(refused.stderr)")
        let usage = try Self.toolc(daemon, nil, ["exec", "--mode", "bogus", "--", "true"])
        #expect(usage.status == 64 && usage.stderr.contains("--mode must be one of"), "\(usage)")
    }

    // MARK: helpers

    /// Polls `approvals.list` (as root) until a call of `tool` waits; returns it.
    func waitForPending(_ daemon: TestDaemon, tool: String) throws -> JSONValue {
        let client = try daemon.client()
        defer { client.close() }
        var found: JSONValue?
        try waitUntil("a \(tool) call waits for approval") {
            found = try client.call(RPCMethod.approvalsList)["approvals"]?.arrayValue?.first { $0["tool"] == .string(tool) }
            return found != nil
        }
        return try #require(found)
    }
}

/// toolc's documented exit codes (`toolc --help`, README).
enum ToolcExit {
    static let rejected: Int32 = 125
    static let cancelled: Int32 = 130
    static let approvalDenied: Int32 = 120
    static let rateLimited: Int32 = 119
    static let overloaded: Int32 = 118
}

/// toolc running in the background as a test uid (through setpriv, as `runProgram` does), outputs in files.
final class BackgroundToolc {
    let process = Process()
    let dir: TempDir
    let outURL: URL
    let errURL: URL

    init(_ daemon: TestDaemon, uid: UInt32?, _ arguments: [String]) throws {
        dir = try TempDir("bg-toolc")
        outURL = dir.url.appendingPathComponent("out")
        errURL = dir.url.appendingPathComponent("err")
        _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
        if let uid {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
            process.arguments =
                ["--reuid", "\(uid)", "--regid", "\(uid)", "--groups", String(ToolcPolicyTests.socketGroup), "--", Binaries.toolc]
                + arguments
        } else {
            process.executableURL = URL(fileURLWithPath: Binaries.toolc)
            process.arguments = arguments
        }
        var env = ProcessInfo.processInfo.environment
        env["TOOLD_SOCKET"] = daemon.socketPath
        process.environment = env
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = try FileHandle(forWritingTo: outURL)
        process.standardError = try FileHandle(forWritingTo: errURL)
        try process.run()
    }

    var stderr: String { (try? String(contentsOf: errURL, encoding: .utf8)) ?? "" }

    /// Ctrl-C. setpriv execs toolc, so the pid is toolc's.
    func interrupt() { kill(process.processIdentifier, SIGINT) }

    func finish(timeout: TimeInterval = 60) throws -> ProcessOutput {
        try waitUntil("toolc exits", timeout: timeout) { !process.isRunning }
        process.waitUntilExit()
        let out = (try? Data(contentsOf: outURL)) ?? Data()
        return ProcessOutput(
            status: process.terminationStatus, stdout: String(decoding: out, as: UTF8.self), stderr: stderr, stdoutBytes: Array(out))
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        dir.remove()
    }
}
