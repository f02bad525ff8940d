import Foundation
import Testing
import ToolClient
import ToolProtocol

// MARK: - Helpers shared by ExecTests and EscapeTests

/// The host account sandboxes run as (created by sysusers / scripts/deps).
enum SandboxAccount {
    static let name = "toold-sandbox"
    static var uid: UInt32? { getpwnam(name).map { $0.pointee.pw_uid } }
}

/// A host process as the host's /proc shows it.
struct HostProcess: CustomStringConvertible {
    var pid: Int32
    /// Real, effective, saved and filesystem uid (the `Uid:` line of /proc/<pid>/status).
    var uids: [UInt32]
    var state: String
    var cmdline: [String]
    var description: String { "pid \(pid) uids \(uids) state \(state): \(cmdline.joined(separator: " "))" }

    /// Every process of the host (ones that vanish while reading are skipped).
    static func all() -> [HostProcess] {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
        return entries.compactMap { Int32($0) }.compactMap(read(pid:))
    }

    static func read(pid: Int32) -> HostProcess? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let raw = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline")
        else { return nil }
        var uids: [UInt32] = []
        var state = ""
        for line in status.split(separator: "\n") {
            if line.hasPrefix("Uid:") { uids = line.dropFirst(4).split(whereSeparator: { $0 == "\t" || $0 == " " }).compactMap { UInt32($0) } }
            if line.hasPrefix("State:") { state = line.dropFirst(6).trimmingCharacters(in: .whitespaces) }
        }
        let cmdline = raw.split(separator: 0, omittingEmptySubsequences: true).map { String(decoding: $0, as: UTF8.self) }
        return HostProcess(pid: pid, uids: uids, state: state, cmdline: cmdline)
    }

    /// Live (non-zombie) processes whose command line contains `token`, of any uid.
    static func matching(_ token: String) -> [HostProcess] {
        all().filter { $0.cmdline.joined(separator: " ").contains(token) && !$0.state.hasPrefix("Z") && $0.pid != getpid() }
    }
}

/// Foundation's `Process.run` can fail with EBADF when another test closes a descriptor while it spawns
/// (its child closes the parent's descriptors one by one); tests run in parallel, so such a spawn is retried.
func retryingSpawn<T>(_ body: () throws -> T) throws -> T {
    var attempt = 0
    while true {
        do {
            return try body()
        } catch {
            let underlying = (error as NSError).userInfo[NSUnderlyingErrorKey] as? NSError
            guard attempt < 8, underlying?.domain == NSPOSIXErrorDomain, underlying?.code == Int(EBADF) else { throw error }
            attempt += 1
            usleep(20_000)
        }
    }
}

/// A TestDaemon, its spawn retried on the EBADF race (see `retryingSpawn`).
func startDaemon(_ arguments: [String] = [], environment: [String: String] = [:]) throws -> TestDaemon {
    try retryingSpawn { try TestDaemon(arguments, environment: environment) }
}

/// `runProgram` with the spawn retried on the EBADF race.
func runRetrying(_ path: String, _ arguments: [String]) throws -> ProcessOutput {
    try retryingSpawn { try runProgram(path, arguments) }
}

extension TestDaemon {
    /// The real toolc against this daemon, its spawn retried on the EBADF race.
    func runToolc(_ arguments: [String], stdin: [UInt8]? = nil) throws -> ProcessOutput {
        try retryingSpawn { try toolc(arguments, stdin: stdin) }
    }
}

/// A token unique to one test, for command lines that must be found (or not) on the host.
func uniqueToken() -> String { String(UUID().uuidString.prefix(8)).lowercased() }

/// A sleep duration argument unique to a test: `sleep 300.<digits>` is found by its command line.
func uniqueSleep(_ seconds: Int) -> String { "\(seconds).\(UInt32.random(in: 100_000...999_999))" }

/// Polls `condition` until it holds or `seconds` pass; returns whether it held.
@discardableResult
func waitUntil(_ seconds: Double, interval: useconds_t = 20_000, _ condition: () throws -> Bool) rethrows -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    repeat {
        if try condition() { return true }
        usleep(interval)
    } while Date() < deadline
    return try condition()
}

/// Collects notifications a client receives (single-threaded like the client).
final class NotificationLog {
    var entries: [RPCRequest] = []
    func attach(to client: ToolClient) { client.onNotification = { [self] in entries.append($0) } }
    var outputs: [ExecOutputNotification] {
        entries.filter { $0.method == RPCMethod.execOutput }.compactMap { note in
            note.params.flatMap { try? JSONCoding.fromJSON(ExecOutputNotification.self, $0) }
        }
    }
}

extension ToolClient {
    /// `exec` with typed params and result.
    func exec(_ params: ExecParams) throws -> ExecResult {
        try call(RPCMethod.exec, params, as: ExecResult.self)
    }

    /// Sends a streamed `exec` and reads until its `exec.started`; returns the request id and execution id.
    /// Nothing but notifications may arrive before it (the request is still running).
    func startStreamed(_ params: ExecParams) throws -> (request: JSONValue, executionID: String) {
        var params = params
        params.stream = true
        let request = try send(RPCMethod.exec, params: JSONCoding.toJSON(params))
        while true {
            let message = try readMessage()
            if message["method"]?.stringValue == RPCMethod.execStarted,
                let id = message["params"]?["execution_id"]?.stringValue
            {
                return (request, id)
            }
            if message["method"] == nil {
                throw TestFailure("exec answered before exec.started: \(JSONCoding.serializeString(message))")
            }
        }
    }

    func status() throws -> DaemonStatusResult {
        try JSONCoding.fromJSON(DaemonStatusResult.self, call(RPCMethod.daemonStatus))
    }
}

extension TestDaemon {
    /// One `exec` on a fresh connection.
    func exec(_ params: ExecParams) throws -> ExecResult {
        let client = try client()
        defer { client.close() }
        return try client.exec(params)
    }

    func exec(_ argv: [String], limits: ExecLimits? = nil, timeoutMs: Int? = nil) throws -> ExecResult {
        try exec(ExecParams(argv: argv, timeoutMs: timeoutMs, limits: limits))
    }

    /// The raw JSON-RPC answer (result or error object) of one `exec`.
    func rawExec(_ params: JSONValue) throws -> JSONValue {
        let client = try client()
        defer { client.close() }
        return try client.roundTrip(raw: JSONCoding.serialize(["jsonrpc": "2.0", "id": 1, "method": "exec", "params": params]))
    }
}

extension ExecResult {
    var stdoutBytes: [UInt8] { bytes(of: .stdout) }
    var stderrBytes: [UInt8] { bytes(of: .stderr) }
    /// Everything a failure message needs to explain what happened.
    var summary: String {
        "status \(status.rawValue) exit \(exitCode.map(String.init) ?? "nil") signal \(signal.map(String.init) ?? "nil") "
            + "violations \(violations) failure \(failure.map { "\($0.stage) \($0.errno) \($0.message)" } ?? "nil") "
            + "duration \(durationMs) ms\nstdout: \(String(decoding: stdoutBytes.prefix(2000), as: UTF8.self))"
            + "\nstderr: \(String(decoding: stderrBytes.prefix(2000), as: UTF8.self))"
    }
}

// MARK: - Functional tests

/// `exec` through the real daemon (and toolc where the issue says): exit codes, signals, stdin, env, cwd,
/// output limits and encodings, streaming, cancel, disconnect, timeouts, pids/memory/tmp limits, failures
/// to start, concurrency and limit validation.
@Suite struct ExecTests {
    // MARK: exit codes and signals

    @Test func exitCodesAreReported() throws {
        let daemon = try startDaemon()
        defer { daemon.stop() }
        for code in [0, 1, 3, 42, 255] {
            let r = try daemon.exec(["sh", "-c", "echo out; echo err >&2; exit \(code)"])
            #expect(r.status == .exited && r.exitCode == Int32(code) && r.signal == nil, "\(r.summary)")
            #expect(r.stdout == "out\n" && r.stderr == "err\n", "\(r.summary)")
            #expect(r.executionId.hasPrefix("ex_") && r.executionId.count == 35, "\(r.executionId)")
            #expect(r.violations.isEmpty && r.failure == nil, "\(r.summary)")
        }
        let t = try daemon.exec(["true"])
        #expect(t.status == .exited && t.exitCode == 0, "\(t.summary)")
        let f = try daemon.exec(["/bin/false"])
        #expect(f.status == .exited && f.exitCode == 1, "\(f.summary)")
    }

    /// The daemon's sandbox zygote killed (as the OOM killer might): `toolc exec` keeps working, and a new
    /// zygote (another child of the daemon) takes over.
    @Test func aKilledZygoteIsReplaced() throws {
        let daemon = try startDaemon()
        defer { daemon.stop() }
        func zygotes() -> [Int32] {
            let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
            return entries.compactMap { Int32($0) }.filter { pid in
                // argv[0] is the zygote's name whether its executable is toold-sandbox-zygote or toold re-run.
                let cmdline = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") ?? Data()
                let stat = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
                let fields = stat.split(separator: ")").last?.split(separator: " ") ?? []
                return cmdline.split(separator: 0).first.map { Array($0) } == Array("toold-sandbox-zygote".utf8)
                    && fields.count > 1 && fields[0] != "Z" && fields[1] == Substring("\(daemon.process.processIdentifier)")
            }
        }
        let first = zygotes()
        #expect(first.count == 1, "\(first)")
        for pid in first { kill(pid, SIGKILL) }
        for _ in 0..<200 where !Set(zygotes()).isDisjoint(with: first) { usleep(10_000) }
        for i in 0..<3 {
            let out = try daemon.toolc(["exec", "--", "echo", "call \(i)"])
            #expect(out.status == 0 && out.stdout == "call \(i)\n", "\(out.status) \(out.stderr)")
            usleep(600_000)
        }
        let now = zygotes()
        #expect(now.count == 1 && now.first != first.first, "before \(first), now \(now)")
    }

    @Test func signalKillIsReportedAsSignaled() throws {
        let daemon = try startDaemon()
        defer { daemon.stop() }
        let r = try daemon.exec(["sh", "-c", "echo before; kill -TERM $$; echo after"])
        #expect(r.status == .signaled, "\(r.summary)")
        #expect(r.signal == 15 && r.exitCode == nil, "\(r.summary)")
        #expect(r.stdout == "before\n", "\(r.summary)")
        let k = try daemon.exec(["sh", "-c", "kill -KILL $$"])
        #expect(k.status == .signaled && k.signal == 9, "\(k.summary)")
        // toolc: 128 + signal, and one line saying why.
        let out = try daemon.runToolc(["exec", "--", "sh", "-c", "kill -TERM $$"])
        #expect(out.status == 143, "\(out.stderr)")
        #expect(out.stderr.split(separator: "\n").count == 1 && out.stderr.contains("signal 15"), "\(out.stderr)")
    }

    // MARK: stdin

    @Test func stdinAsTextAndBase64() throws {
        let daemon = try startDaemon()
        defer { daemon.stop() }
        let text = "hello\nwörld ✓\n" + String(repeating: "x", count: 100_000) + "\nend"
        let r = try daemon.exec(ExecParams(argv: ["cat"], stdin: text))
        #expect(r.status == .exited && r.exitCode == 0, "\(r.summary)")
        #expect(r.stdout == text)
        let binary = (0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 8) }
        let b = try daemon.exec(ExecParams(argv: ["cat"], stdinBase64: Base64.encode(binary)))
        #expect(b.status == .exited && b.exitCode == 0, "\(b.summary)")
        #expect(b.stdoutEncoding == .base64)
        #expect(b.stdoutBytes == binary)
        // No stdin means /dev/null: reading gets EOF at once, not a hang.
        let none = try daemon.exec(ExecParams(argv: ["sh", "-c", "wc -c; readlink /proc/self/fd/0"], timeoutMs: 5000))
        #expect(none.status == .exited && none.stdout == "0\n/dev/null\n", "\(none.summary)")
        // toolc passes its own (non-terminal) stdin through, bytes intact.
        let viaToolc = try daemon.runToolc(["exec", "--", "cat"], stdin: binary)
        #expect(viaToolc.status == 0, "\(viaToolc.stderr)")
        #expect(viaToolc.stdoutBytes == binary)
        // Both at once is invalid.
        let both = try daemon.rawExec(["argv": ["cat"], "stdin": "a", "stdin_base64": "YQ=="])
        #expect(both.errorCode == RPCErrorCode.invalidParams, "\(JSONCoding.serializeString(both))")
    }

    /// toolc sends stdin inside the request, so it reads at most `--stdin-limit` (default 11 MiB): more —
    /// or an endless pipe — is a usage error (64) naming the limit, never an unbounded read.
    @Test func toolcStdinIsBounded() throws {
        let daemon = try startDaemon()
        defer { daemon.stop() }
        let kib = [UInt8](repeating: UInt8(ascii: "a"), count: 1024)
        let fits = try daemon.runToolc(["exec", "--stdin-limit", "1K", "--", "wc", "-c"], stdin: kib)
        #expect(fits.status == 0 && fits.stdout == "1024\n", "\(fits.status) \(fits.stderr)")
        let over = try daemon.runToolc(["exec", "--stdin-limit", "1K", "--", "wc", "-c"], stdin: kib + [0x0a])
        #expect(over.status == 64 && over.stdout.isEmpty, "\(over.status) \(over.stdout)")
        #expect(over.stderr.contains("larger than 1024 bytes"), "\(over.stderr)")
        // An endless pipe ends at the default limit.
        let endless = try runProgram(
            "/bin/sh", ["-c", "yes | \(Binaries.toolc) exec -- true"], environment: ["TOOLD_SOCKET": daemon.socketPath])
        #expect(endless.status == 64, "\(endless.status) \(endless.stderr)")
        #expect(endless.stderr.contains("larger than \(11 << 20) bytes"), "\(endless.stderr)")
    }

    @Test func toolcPassesLargeNULHeavyStdinThrough() throws {
        let daemon = try startDaemon()
        defer { daemon.stop() }
        // A tar archive or a sparse image is mostly NUL bytes: valid UTF-8, but 6 bytes each as JSON text
        // (\u0000). 4 MiB of them fit a 16 MiB frame as base64 (5.6 MiB), not as text (24 MiB).
        var input = [UInt8](repeating: 0, count: 4 << 20)
        for i in stride(from: 0, to: input.count, by: 512) { input[i] = UInt8(ascii: "x") }
        let out = try daemon.runToolc(["exec", "--", "sh", "-c", "wc -c; echo done"], stdin: input)
        #expect(out.status == 0, "toolc exit \(out.status): \(out.stderr)")
        #expect(out.stdout == "4194304\ndone\n", "\(out.stdout)")
    }

    // MARK: environment and working directory

    @Test func environmentIsCleanAndTheDaemonsSecretInvisible() throws {
        let secretValue = "s3cr3t-" + UUID().uuidString
        let daemon = try startDaemon(environment: ["TOOLD_TEST_SECRET": secretValue])
        defer { daemon.stop() }
        // The daemon really has it (else the test would prove nothing).
        let daemonEnv = try String(contentsOfFile: "/proc/\(daemon.process.processIdentifier)/environ", encoding: .utf8)
        try #require(daemonEnv.contains(secretValue))

        let r = try daemon.exec(ExecParams(argv: ["env"], env: ["FOO": "bar baz", "LANG": "en_US.UTF-8"]))
        #expect(r.status == .exited && r.exitCode == 0, "\(r.summary)")
        var seen: [String: String] = [:]
        for line in r.stdout.split(separator: "\n") {
            let parts = line.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            seen[String(parts[0])] = parts.count > 1 ? String(parts[1]) : ""
        }
        #expect(!r.stdout.contains("TOOLD_TEST_SECRET") && !r.stdout.contains(secretValue), "\(r.stdout)")
        // Exactly the base environment with the request laid over it (LANG overridden).
        #expect(
            seen == [
                "PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/workspace", "LANG": "en_US.UTF-8", "TMPDIR": "/tmp",
                "FOO": "bar baz",
            ], "\(r.stdout)")
        let base = try daemon.exec(["env"])
        #expect(
            Set(base.stdout.split(separator: "\n").map(String.init))
                == ["PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/workspace", "LANG=C.UTF-8", "TMPDIR=/tmp"],
            "\(base.stdout)")
        // Not in any environ the sandbox can read either (init is a copy of the daemon).
        let scan = try daemon.exec([
            "sh", "-c", "for f in /proc/[0-9]*/environ; do cat $f 2>/dev/null | tr '\\0' '\\n'; done | grep -c TOOLD_TEST_SECRET",
        ])
        #expect(scan.stdout == "0\n", "\(scan.summary)")
        // toolc --env.
        let viaToolc = try daemon.runToolc(["exec", "--env", "K1=v1", "--env", "K2=a=b", "--", "sh", "-c", "echo $K1 $K2 ${TOOLD_TEST_SECRET:-unset}"])
        #expect(viaToolc.status == 0 && viaToolc.stdout == "v1 a=b unset\n", "\(viaToolc.stdout) \(viaToolc.stderr)")
    }

    @Test func workingDirectory() throws {
        let daemon = try startDaemon()
        defer { daemon.stop() }
        let d = try daemon.exec(["pwd"])
        #expect(d.status == .exited && d.stdout == "/workspace\n", "\(d.summary)")
        let t = try daemon.exec(ExecParams(argv: ["sh", "-c", "pwd; touch here && ls"], cwd: "/tmp"))
        #expect(t.status == .exited && t.stdout == "/tmp\nhere\n", "\(t.summary)")
        let u = try daemon.exec(ExecParams(argv: ["pwd"], cwd: "/usr/bin"))
        #expect(u.stdout == "/usr/bin\n", "\(u.summary)")
        let viaToolc = try daemon.runToolc(["exec", "--cwd", "/etc", "--", "pwd"])
        #expect(viaToolc.status == 0 && viaToolc.stdout == "/etc\n", "\(viaToolc.stderr)")
        let missing = try daemon.exec(ExecParams(argv: ["pwd"], cwd: "/no/such/dir"))
        #expect(missing.status == .failedToStart, "\(missing.summary)")
        #expect(missing.failure?.stage == "chdir" && missing.failure?.errno == ENOENT, "\(missing.summary)")
        let relative = try daemon.rawExec(["argv": ["pwd"], "cwd": "tmp"])
        #expect(relative.errorCode == RPCErrorCode.invalidParams)
        // The workspace is per execution: a file left by one is gone for the next.
        _ = try daemon.exec(["sh", "-c", "echo x > /workspace/left; echo y > /tmp/left"])
        let next = try daemon.exec(["sh", "-c", "ls -A /workspace /tmp"])
        #expect(!next.stdout.contains("left"), "\(next.summary)")
    }

    // MARK: output

    @Test func tenMegabytesOfOutputAreTruncatedAtTheLimit() throws {
        let daemon = try startDaemon()
        defer { daemon.stop() }
        let limit = 1 << 20
        let started = Date()
        let r = try daemon.exec(
            ExecParams(
                argv: ["sh", "-c", "head -c 10000000 /dev/zero | tr '\\0' a; echo done >&2"], timeoutMs: 20_000,
                limits: ExecLimits(outputBytes: limit)))
        #expect(r.status == .outputLimit, "\(r.summary)")
        #expect(r.stdoutTruncated == true && r.stderrTruncated == false, "\(r.summary)")
        #expect(r.stdoutBytes.count == limit, "got \(r.stdoutBytes.count) bytes")
        #expect(r.stdoutBytes.allSatisfy { $0 == UInt8(ascii: "a") })
        #expect(r.violations.contains("output_bytes"), "\(r.violations)")
        // The sandbox is killed at the limit, not run to its end (and not left to time out).
        #expect(Date().timeIntervalSince(started) < 10)
        #expect(r.durationMs < 10_000)
        // The default limit (1 MiB) applies without a request.
        let d = try daemon.exec(["sh", "-c", "head -c 3000000 /dev/zero"])
        #expect(d.status == .outputLimit && d.stdoutTruncated, "\(d.summary)")
        #expect(d.stdoutBytes.count == 1 << 20, "\(d.stdoutBytes.count)")
        // Exactly at the limit is not truncation.
        let exact = try daemon.exec(ExecParams(argv: ["head", "-c", "4096", "/dev/zero"], limits: ExecLimits(outputBytes: 4096)))
        #expect(exact.status == .exited && !exact.stdoutTruncated && exact.stdoutBytes.count == 4096, "\(exact.summary)")
        // toolc: 122 and one line.
        let viaToolc = try daemon.runToolc(["exec", "--output-limit", "1K", "--", "head", "-c", "100000", "/dev/zero"])
        #expect(viaToolc.status == 122, "\(viaToolc.stderr)")
        #expect(viaToolc.stdoutBytes.count == 1024)
        #expect(viaToolc.stderr.split(separator: "\n").count == 1 && viaToolc.stderr.contains("output limit"), "\(viaToolc.stderr)")
    }

    @Test func binaryOutputIsBase64WithIntactBytes() throws {
        let daemon = try startDaemon()
        defer { daemon.stop() }
        let r = try daemon.exec([
            "python3", "-c",
            "import sys; sys.stdout.buffer.write(bytes(range(256)) * 3); sys.stderr.write('text ✓')",
        ])
        #expect(r.status == .exited && r.exitCode == 0, "\(r.summary)")
        #expect(r.stdoutEncoding == .base64)
        #expect(Base64.decode(r.stdout) == Array((0..<768).map { UInt8($0 % 256) }))
        #expect(r.stderrEncoding == .utf8 && r.stderr == "text ✓")
        // The wire field says so too.
        let raw = try daemon.rawExec(["argv": ["printf", "\\377\\000\\376"]])
        #expect(raw["result"]?["stdout_encoding"] == "base64", "\(JSONCoding.serializeString(raw))")
        #expect(raw["result"]?["stdout"] == "/wD+")
        // A split UTF-8 character is text again once whole: the result is utf-8.
        let text = try daemon.exec(["printf", "\\316\\273"])
        #expect(text.stdoutEncoding == .utf8 && text.stdout == "λ")
    }

    @Test func streamedOutputArrivesInOrderAndMatchesTheResult() throws {
        let daemon = try startDaemon()
        defer { daemon.stop() }
        let client = try daemon.client()
        defer { client.close() }
        let log = NotificationLog()
        log.attach(to: client)
        let script = "for i in 1 2 3 4 5; do echo out$i; sleep 0.1; echo err$i >&2; sleep 0.1; done; "
            + "printf '\\377\\376'; sleep 0.1; echo end"
        let r = try client.exec(ExecParams(argv: ["sh", "-c", script], stream: true))
        #expect(r.status == .exited && r.exitCode == 0, "\(r.summary)")
        let notes = log.entries
        #expect(notes.first?.method == RPCMethod.execStarted)
        #expect(notes.first?.params?["execution_id"]?.stringValue == r.executionId)
        let outputs = log.outputs
        #expect(outputs.count + 1 == notes.count, "only exec.started and exec.output expected")
        #expect(outputs.allSatisfy { $0.executionId == r.executionId })
        // The streams' bytes, reassembled, equal the result's.
        let out = outputs.filter { $0.stream == .stdout }.flatMap(\.bytes)
        let err = outputs.filter { $0.stream == .stderr }.flatMap(\.bytes)
        #expect(out == r.stdoutBytes && err == r.stderrBytes)
        #expect(err == Array("err1\nerr2\nerr3\nerr4\nerr5\n".utf8))
        #expect(out == Array("out1\nout2\nout3\nout4\nout5\n".utf8) + [0xFF, 0xFE] + Array("end\n".utf8))
        // Interleaving: each line was written 100 ms after the other stream's, so the order is the writes'.
        var lines: [String] = []
        for chunk in outputs {
            let text = String(decoding: chunk.bytes.filter { $0 < 0x80 }, as: UTF8.self)
            lines += text.split(separator: "\n").map { "\(chunk.stream.rawValue):\($0)" }
        }
        let expected = (1...5).flatMap { ["stdout:out\($0)", "stderr:err\($0)"] } + ["stdout:end"]
        #expect(lines == expected)
        // The binary chunk came as data_base64.
        #expect(outputs.contains { $0.dataBase64 != nil && $0.bytes.contains(0xFF) })
        // Nothing of this execution arrives after its response.
        let before = log.entries.count
        _ = try client.status()
        #expect(log.entries.count == before)
    }

    // MARK: cancel and disconnect

    @Test func cancelFromASecondConnection() throws {
        let daemon = try startDaemon()
        defer { daemon.stop() }
        let owner = try daemon.client()
        defer { owner.close() }
        let sleep = uniqueSleep(30)
        let (request, id) = try owner.startStreamed(ExecParams(argv: ["sleep", sleep]))
        #expect(waitUntil(5) { !HostProcess.matching("sleep \(sleep)").isEmpty }, "the sleep never started")
        let other = try daemon.client()
        defer { other.close() }
        let cancelled = try other.call(RPCMethod.execCancel, params: ["execution_id": .string(id)])
        #expect(cancelled == ["cancelled": true])
        let started = Date()
        let r = try JSONCoding.fromJSON(ExecResult.self, owner.wait(for: request))
        #expect(Date().timeIntervalSince(started) < 5)
        #expect(r.status == .cancelled && r.executionId == id, "\(r.summary)")
        #expect(waitUntil(2) { HostProcess.matching("sleep \(sleep)").isEmpty }, "\(HostProcess.matching("sleep \(sleep)"))")
        // It is no longer running: a second cancel is not found.
        let again = try other.roundTrip(
            #"{"jsonrpc":"2.0","id":99,"method":"exec.cancel","params":{"execution_id":"\#(id)"}}"#)
        #expect(again.errorCode == -32004, "\(JSONCoding.serializeString(again))")
    }

    @Test func disconnectCancelsTheClientsExecutions() throws {
        let daemon = try startDaemon()
        defer { daemon.stop() }
        let sandboxUID = try #require(SandboxAccount.uid)
        let sleep = uniqueSleep(60)
        let client = try daemon.client()
        _ = try client.startStreamed(ExecParams(argv: ["sleep", sleep]))
        // A second, non-streamed one on the same connection.
        let sleep2 = uniqueSleep(60)
        _ = try client.send(RPCMethod.exec, params: JSONCoding.toJSON(ExecParams(argv: ["sleep", sleep2])))
        #expect(waitUntil(5) { HostProcess.matching(sleep2).count + HostProcess.matching(sleep).count >= 2 })
        let watcher = try daemon.client()
        defer { watcher.close() }
        #expect(try watcher.status().executions.running == 2)
        let procs = HostProcess.matching("sleep \(sleep)")
        #expect(procs.allSatisfy { $0.uids.first == sandboxUID }, "\(procs)")
        client.close()
        let closedAt = Date()
        let drained = try waitUntil(5) { try watcher.status().executions.running == 0 }
        #expect(drained, "executions still running 5 s after the client left")
        #expect(Date().timeIntervalSince(closedAt) < 3)
        #expect(waitUntil(2) { HostProcess.matching(sleep).isEmpty && HostProcess.matching(sleep2).isEmpty },
                "left behind: \(HostProcess.matching(sleep) + HostProcess.matching(sleep2))")
        let pgrep = try runRetrying("/usr/bin/pgrep", ["-u", SandboxAccount.name, "-f", "sleep \(sleep)"])
        #expect(pgrep.status == 1 && pgrep.stdout.isEmpty, "pgrep: \(pgrep.stdout)")
    }

    @Test func toolcCtrlCCancelsTheExecution() throws {
        let daemon = try startDaemon()
        defer { daemon.stop() }
        let sleep = uniqueSleep(60)
        let dir = try TempDir("ctrlc")
        defer { dir.remove() }
        let errURL = dir.url.appendingPathComponent("err")
        _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
        let err = try FileHandle(forWritingTo: errURL)
        let toolc = Process()
        toolc.executableURL = URL(fileURLWithPath: Binaries.toolc)
        toolc.arguments = ["exec", "--", "sleep", sleep]
        toolc.environment = ["TOOLD_SOCKET": daemon.socketPath, "PATH": "/usr/bin:/bin"]
        toolc.standardInput = FileHandle.nullDevice
        toolc.standardOutput = FileHandle.nullDevice
        toolc.standardError = err
        try retryingSpawn { try toolc.run() }
        defer { if toolc.isRunning { kill(toolc.processIdentifier, SIGKILL) } }
        #expect(waitUntil(5) { !HostProcess.matching("sleep \(sleep)").isEmpty }, "the sleep never started")
        kill(toolc.processIdentifier, SIGINT)
        #expect(waitUntil(5) { !toolc.isRunning }, "toolc still running 5 s after Ctrl-C")
        toolc.waitUntilExit()
        try err.close()
        let stderr = (try? String(contentsOf: errURL, encoding: .utf8)) ?? ""
        #expect(toolc.terminationStatus == 130, "\(stderr)")
        #expect(stderr == "toolc: cancelled\n", "\(stderr)")
        #expect(waitUntil(2) { HostProcess.matching("sleep \(sleep)").isEmpty }, "\(HostProcess.matching("sleep \(sleep)"))")
        let watcher = try daemon.client()
        defer { watcher.close() }
        #expect(try waitUntil(2) { try watcher.status().executions.running == 0 })
    }

    // MARK: limits that end the command

    @Test func timeoutKillsTermIgnoringDoubleForkedTree() throws {
        let daemon = try startDaemon()
        defer { daemon.stop() }
        let sleep = uniqueSleep(300)
        let script = "trap \"\" TERM; (trap \"\" TERM; sleep \(sleep) &) ; sleep \(sleep)"
        let started = Date()
        let r = try daemon.exec(ExecParams(argv: ["sh", "-c", script], timeoutMs: 1000))
        let elapsed = Date().timeIntervalSince(started)
        #expect(r.status == .timeout, "\(r.summary)")
        #expect(r.exitCode == nil)
        #expect(r.durationMs >= 1000 && r.durationMs < 4000, "\(r.durationMs)")
        #expect(elapsed < 5)
        // PROTOCOL.md: violations lists the limits hit, timeout_ms among them.
        #expect(r.violations.contains("timeout_ms"), "violations \(r.violations)")
        // Both sleeps, the double-forked one included, are gone when the result is in.
        #expect(waitUntil(1) { HostProcess.matching("sleep \(sleep)").isEmpty },
                "left behind: \(HostProcess.matching("sleep \(sleep)"))")
        let pgrep = try runRetrying("/usr/bin/pgrep", ["-u", SandboxAccount.name, "-f", "sleep \(sleep)"])
        #expect(pgrep.stdout.isEmpty, "pgrep: \(pgrep.stdout)")
        // toolc: 124 (timeout(1)'s code) and one line.
        let viaToolc = try daemon.runToolc(["exec", "--timeout", "300ms", "--", "sh", "-c", script])
        #expect(viaToolc.status == 124, "\(viaToolc.stderr)")
        #expect(viaToolc.stderr.split(separator: "\n").count == 1 && viaToolc.stderr.contains("timed out"), "\(viaToolc.stderr)")
        #expect(waitUntil(1) { HostProcess.matching("sleep \(sleep)").isEmpty })
    }

    @Test func forkBombIsHeldByPidsWhileTheDaemonKeepsAnswering() throws {
        let daemon = try startDaemon()
        defer { daemon.stop() }
        let token = uniqueToken()
        // The main process forks a bomb, then sleeps without forking and reports; every bomb process forks
        // forever (retrying when the pids limit refuses).
        let bomb = """
            import os, sys, time
            tag = '\(token)'
            if os.fork() == 0:
                while True:
                    try:
                        os.fork()
                    except OSError:
                        time.sleep(0.001)
            time.sleep(3)
            print('alive', tag)
            """
        let client = try daemon.client()
        defer { client.close() }
        let request = try client.send(
            RPCMethod.exec,
            params: JSONCoding.toJSON(ExecParams(argv: ["python3", "-c", bomb], timeoutMs: 8000, limits: ExecLimits(pids: 32))))
        let watcher = try daemon.client()
        defer { watcher.close() }
        var slowest = 0.0
        var calls = 0
        var sawRunning = false
        var mostProcesses = 0
        let until = Date().addingTimeInterval(2.5)
        while Date() < until {
            let t0 = Date()
            let status = try watcher.status()
            slowest = max(slowest, Date().timeIntervalSince(t0))
            calls += 1
            if status.executions.running == 1 { sawRunning = true }
            mostProcesses = max(mostProcesses, HostProcess.matching(token).count)
            usleep(100_000)
        }
        #expect(slowest < 2, "slowest daemon.status during the bomb: \(slowest) s")
        #expect(calls >= 5, "only \(calls) status calls answered in 2.5 s")
        #expect(sawRunning)
        // The bomb really ran against the limit: the sandbox's processes on the host stay at most 32.
        #expect(mostProcesses > 8 && mostProcesses <= 32, "bomb processes seen at once: \(mostProcesses)")
        let r = try JSONCoding.fromJSON(ExecResult.self, client.wait(for: request))
        #expect(r.status == .exited && r.exitCode == 0, "\(r.summary)")
        #expect(r.stdout == "alive \(token)\n", "\(r.summary)")
        #expect(r.violations.contains("pids"), "violations \(r.violations)")
        #expect(waitUntil(2) { HostProcess.matching(token).isEmpty }, "left behind: \(HostProcess.matching(token).count)")
        #expect(try watcher.status().executions.running == 0)
    }

    @Test func shellForkBombEndsWithPidsViolationAndNothingLeft() throws {
        let daemon = try startDaemon()
        defer { daemon.stop() }
        let token = uniqueToken()
        let r = try daemon.exec(
            ExecParams(argv: ["sh", "-c", "f() { f | f & }; f; sleep 1 # \(token)"], timeoutMs: 3000, limits: ExecLimits(pids: 16)))
        #expect([.exited, .timeout, .signaled].contains(r.status), "\(r.summary)")
        #expect(r.violations.contains("pids"), "\(r.summary)")
        #expect(waitUntil(2) { HostProcess.matching(token).isEmpty })
    }

    /// `pids` counts the command's processes, not the sandbox's init: `pids: 1` (the documented minimum) runs
    /// the command and refuses its first fork (it was `failed_to_start` with no violation: init took the one).
    @Test func pidsCountsTheCommandsProcessesOnly() throws {
        let daemon = try startDaemon()
        defer { daemon.stop() }
        let alone = try daemon.exec(ExecParams(argv: ["true"], limits: ExecLimits(pids: 1)))
        #expect(alone.status == .exited && alone.exitCode == 0, "\(alone.summary)")
        let forking = try daemon.exec(ExecParams(argv: ["sh", "-c", "/bin/true && echo forked"], limits: ExecLimits(pids: 1)))
        #expect(!forking.stdout.contains("forked") && forking.violations.contains("pids"), "\(forking.summary)")
        let two = try daemon.exec(ExecParams(argv: ["sh", "-c", "/bin/true && echo forked"], limits: ExecLimits(pids: 2)))
        #expect(two.stdout == "forked\n" && two.violations.isEmpty, "\(two.summary)")
    }

    @Test func memoryBombIsReportedAsOOM() throws {
        let daemon = try startDaemon()
        defer { daemon.stop() }
        let bomb = "chunks = []\nfor _ in range(64):\n    chunks.append(b'\\x01' * (16 << 20))\nprint('survived')"
        let r = try daemon.exec(
            ExecParams(argv: ["python3", "-c", bomb], timeoutMs: 8000, limits: ExecLimits(memoryBytes: 64 << 20)))
        #expect(r.status == .oom, "\(r.summary)")
        #expect(!r.stdout.contains("survived"))
        #expect(r.violations.contains("memory_bytes"), "\(r.violations)")
        #expect(r.memoryPeakBytes > 32 << 20 && r.memoryPeakBytes <= 80 << 20, "peak \(r.memoryPeakBytes)")
        // Below the limit the same program is fine (the limit, not python, ended it).
        let ok = try daemon.exec(
            ExecParams(argv: ["python3", "-c", "x = b'\\x01' * (16 << 20); print('ok')"], timeoutMs: 8000,
                       limits: ExecLimits(memoryBytes: 64 << 20)))
        #expect(ok.status == .exited && ok.stdout == "ok\n", "\(ok.summary)")
        // toolc: 123 and one line.
        let viaToolc = try daemon.runToolc(["exec", "--memory", "64M", "--timeout", "8s", "--", "python3", "-c", bomb])
        #expect(viaToolc.status == 123, "\(viaToolc.stderr)")
        let lines = viaToolc.stderr.split(separator: "\n")
        #expect(lines.last?.contains("out of memory") == true, "\(viaToolc.stderr)")
        #expect(lines.filter { $0.hasPrefix("toolc:") }.count == 1, "\(viaToolc.stderr)")
    }

    @Test func tmpIsSizeLimited() throws {
        let daemon = try startDaemon()
        defer { daemon.stop() }
        let r = try daemon.exec(
            ExecParams(
                argv: ["sh", "-c", "head -c 8388608 /dev/zero > /tmp/big; echo rc=$?; wc -c < /tmp/big; df -k /tmp | tail -1"],
                limits: ExecLimits(tmpBytes: 4 << 20)))
        #expect(r.status == .exited, "\(r.summary)")
        #expect(r.stderr.contains("No space left"), "\(r.summary)")
        #expect(r.stdout.contains("rc=1"), "\(r.summary)")
        // PROTOCOL.md: a full scratch tmpfs is a violation of tmp_bytes, though the command exited.
        #expect(r.violations == ["tmp_bytes"], "\(r.summary)")
        let size = r.stdout.split(separator: "\n").dropFirst().first.flatMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        #expect(size.map { $0 <= 4 << 20 && $0 > 3 << 20 } == true, "written: \(String(describing: size))")
        // /workspace has the same bound.
        let w = try daemon.exec(
            ExecParams(argv: ["sh", "-c", "head -c 8388608 /dev/zero > /workspace/big"], limits: ExecLimits(tmpBytes: 4 << 20)))
        #expect(w.status == .exited && w.exitCode != 0 && w.stderr.contains("No space left"), "\(w.summary)")
        #expect(w.violations == ["tmp_bytes"], "\(w.summary)")
        // Within the limit it works.
        let ok = try daemon.exec(
            ExecParams(argv: ["sh", "-c", "head -c 2097152 /dev/zero > /tmp/f && wc -c < /tmp/f"], limits: ExecLimits(tmpBytes: 4 << 20)))
        #expect(ok.status == .exited && ok.exitCode == 0 && ok.stdout == "2097152\n", "\(ok.summary)")
        #expect(ok.violations.isEmpty, "\(ok.summary)")
    }

    @Test func fileSizeLimit() throws {
        let daemon = try startDaemon()
        defer { daemon.stop() }
        let f = try daemon.exec(
            ExecParams(argv: ["sh", "-c", "exec head -c 2097152 /dev/zero > /tmp/f"], limits: ExecLimits(fileBytes: 1 << 20)))
        #expect(f.status == .signaled && f.signal == SIGXFSZ, "\(f.summary)")
        #expect(f.violations.contains("file_bytes"), "\(f.summary)")
    }

    // MARK: failures to start and rejected requests

    @Test func missingProgramFailsToStart() throws {
        let daemon = try startDaemon()
        defer { daemon.stop() }
        let r = try daemon.exec(["no-such-program-\(uniqueToken())", "arg"])
        #expect(r.status == .failedToStart, "\(r.summary)")
        #expect(r.failure?.message == "execve: No such file or directory", "\(r.summary)")
        #expect(r.failure?.stage == "execve" && r.failure?.errno == ENOENT, "\(r.summary)")
        #expect(r.exitCode == nil && r.signal == nil)
        let abs = try daemon.exec(["/usr/bin/no-such-program"])
        #expect(abs.status == .failedToStart && abs.failure?.errno == ENOENT, "\(abs.summary)")
        // A file that is not executable.
        let noexec = try daemon.exec(["/etc/passwd"])
        #expect(noexec.status == .failedToStart && noexec.failure?.errno == EACCES, "\(noexec.summary)")
        // toolc: 127 and the reason in one line.
        let viaToolc = try daemon.runToolc(["exec", "--", "no-such-program-\(uniqueToken())"])
        #expect(viaToolc.status == 127, "\(viaToolc.stderr)")
        #expect(viaToolc.stderr == "toolc: failed to start: execve: No such file or directory\n", "\(viaToolc.stderr)")
    }

    /// Numbers no field takes (a fraction, a negative for a size, beyond 64 bits) and values outside a closed
    /// set are refused with the field's path and what it takes — they were "The given data was not valid
    /// JSON." at path "".
    @Test func misfitValuesAreRefusedWithTheirPath() throws {
        let daemon = try startDaemon()
        defer { daemon.stop() }
        let cases: [(JSONValue, String, String)] = [
            (["argv": ["true"], "limits": ["memory_bytes": -1]], "/limits/memory_bytes", "must not be negative"),
            (["argv": ["true"], "limits": ["pids": 1.5]], "/limits/pids", "must be an integer, got 1.5"),
            (["argv": ["true"], "timeout_ms": 1.5], "/timeout_ms", "must be an integer"),
            (["argv": ["true"], "limits": ["file_bytes": 1e30]], "/limits/file_bytes", "out of range"),
            (["argv": ["true"], "mode": "root"], "/mode", "must be one of sandbox, read_only, network, trusted; got \"root\""),
            // The culprit, not the first number: 500.0 is an integer, -1 a signed field's value (range-checked).
            (["argv": ["true"], "limits": ["cpu_millicores": 500.0, "pids": 1.5]], "/limits/pids", "must be an integer"),
            (["argv": ["true"], "limits": ["cpu_millicores": -1, "memory_bytes": 1.5]], "/limits/memory_bytes", "must be an integer"),
        ]
        for (params, path, message) in cases {
            let answer = try daemon.rawExec(params)
            #expect(answer.errorCode == RPCErrorCode.invalidParams, "\(JSONCoding.serializeString(answer))")
            let errors = answer["error"]?["data"]?["errors"]?.arrayValue ?? []
            #expect(errors.count == 1 && errors.first?["path"]?.stringValue == path
                    && errors.first?["message"]?.stringValue?.contains(message) == true, "\(JSONCoding.serializeString(answer))")
        }
    }

    @Test func limitsAboveTheMaximumAreRefused() throws {
        let daemon = try startDaemon()
        defer { daemon.stop() }
        let cases: [(JSONValue, String, String)] = [
            (["argv": ["true"], "limits": ["pids": 5000]], "/limits/pids", "maximum of 1024"),
            (["argv": ["true"], "limits": ["memory_bytes": 8_589_934_592]], "/limits/memory_bytes", "maximum of 4294967296"),
            (["argv": ["true"], "limits": ["cpu_millicores": 4001]], "/limits/cpu_millicores", "maximum of 4000"),
            (["argv": ["true"], "limits": ["output_bytes": 67_108_865]], "/limits/output_bytes", "maximum of 67108864"),
            (["argv": ["true"], "limits": ["file_bytes": 1_073_741_825]], "/limits/file_bytes", "maximum of 1073741824"),
            (["argv": ["true"], "limits": ["tmp_bytes": 1_073_741_825]], "/limits/tmp_bytes", "maximum of 1073741824"),
            (["argv": ["true"], "timeout_ms": 600_001], "/timeout_ms", "maximum of 600000"),
        ]
        for (params, path, maximum) in cases {
            let answer = try daemon.rawExec(params)
            #expect(answer.errorCode == RPCErrorCode.invalidParams, "\(JSONCoding.serializeString(answer))")
            #expect(answer["error"]?["message"]?.stringValue?.contains(maximum) == true, "\(JSONCoding.serializeString(answer))")
            let paths = answer["error"]?["data"]?["errors"]?.arrayValue?.compactMap { $0["path"]?.stringValue }
            #expect(paths == [path], "\(JSONCoding.serializeString(answer))")
        }
        // Exactly the maximum is accepted.
        let atMax = try daemon.exec(ExecParams(argv: ["true"], limits: ExecLimits(pids: 1024)))
        #expect(atMax.status == .exited && atMax.exitCode == 0, "\(atMax.summary)")
        // Nothing ran for a refused request.
        let watcher = try daemon.client()
        #expect(try watcher.status().executions.running == 0)
        watcher.close()
        // toolc: 125 and the daemon's message naming the maximum.
        let viaToolc = try daemon.runToolc(["exec", "--pids", "5000", "--", "true"])
        #expect(viaToolc.status == 125, "\(viaToolc.stderr)")
        #expect(viaToolc.stderr.contains("maximum of 1024") && viaToolc.stderr.split(separator: "\n").count == 1, "\(viaToolc.stderr)")
        let mem = try daemon.runToolc(["exec", "--memory", "8G", "--", "true"])
        #expect(mem.status == 125 && mem.stderr.contains("maximum of 4294967296"), "\(mem.stderr)")
    }

    @Test func toolcExitCodesAndReasons() throws {
        let daemon = try startDaemon()
        defer { daemon.stop() }
        let exited = try daemon.runToolc(["exec", "--", "sh", "-c", "echo hi; echo oops >&2; exit 42"])
        #expect(exited.status == 42, "\(exited.stderr)")
        #expect(exited.stdout == "hi\n")
        #expect(exited.stderr == "oops\n", "a plain non-zero exit prints no reason: \(exited.stderr)")
        let zero = try daemon.runToolc(["exec", "--", "true"])
        #expect(zero.status == 0 && zero.stderr.isEmpty, "\(zero.stderr)")
        let timeout = try daemon.runToolc(["exec", "--timeout", "500ms", "--", "sleep", uniqueSleep(10)])
        #expect(timeout.status == 124, "\(timeout.stderr)")
        #expect(timeout.stderr.hasPrefix("toolc: timed out") && timeout.stderr.split(separator: "\n").count == 1, "\(timeout.stderr)")
        let oom = try daemon.runToolc([
            "exec", "--memory", "32M", "--", "python3", "-c", "x = [b'\\x01' * (8 << 20) for _ in range(64)]",
        ])
        #expect(oom.status == 123, "\(oom.stderr)")
        #expect(oom.stderr.split(separator: "\n").last?.hasPrefix("toolc: out of memory") == true, "\(oom.stderr)")
        let signaled = try daemon.runToolc(["exec", "--", "sh", "-c", "kill -KILL $$"])
        #expect(signaled.status == 137, "\(signaled.stderr)")
        let missing = try daemon.runToolc(["exec", "--", "/no/such/binary"])
        #expect(missing.status == 127, "\(missing.stderr)")
        // --json prints the result and no reason line.
        let json = try daemon.runToolc(["exec", "--json", "--", "sh", "-c", "echo j; exit 5"])
        #expect(json.status == 5, "\(json.stderr)")
        let result = try JSONCoding.fromJSON(ExecResult.self, JSONCoding.parse(json.stdoutBytes))
        #expect(result.stdout == "j\n" && result.exitCode == 5)
    }

    // MARK: concurrency

    @Test func fiftyConcurrentExecutionsEachGetTheirOwnOutput() throws {
        // The scheduler's default admits 4 per CPU at once; this test is about the sandbox side.
        let daemon = try startDaemon(["--max-running", "50"])
        defer { daemon.stop() }
        let run = uniqueToken()
        let clients = try (0..<5).map { _ in try daemon.client() }
        defer { clients.forEach { $0.close() } }
        var requests: [(client: ToolClient, id: JSONValue, token: String)] = []
        for i in 0..<50 {
            let client = clients[i % clients.count]
            let token = "tok-\(run)-\(i)"
            let params = ExecParams(argv: ["sh", "-c", "sleep 1; echo $T; echo $T-err >&2; exit \(i % 7)"], env: ["T": token])
            let id = try client.send(RPCMethod.exec, params: JSONCoding.toJSON(params))
            requests.append((client, id, token))
        }
        let watcher = try daemon.client()
        defer { watcher.close() }
        var peak = 0
        waitUntil(3) {
            peak = max(peak, (try? watcher.status().executions.running) ?? 0)
            return peak >= 10
        }
        #expect(peak >= 10, "at most \(peak) executions ran at once")
        var ids = Set<String>()
        for (i, request) in requests.enumerated() {
            let r = try JSONCoding.fromJSON(ExecResult.self, request.client.wait(for: request.id))
            #expect(r.status == .exited && r.exitCode == Int32(i % 7), "\(i): \(r.summary)")
            #expect(r.stdout == request.token + "\n" && r.stderr == request.token + "-err\n", "\(i): \(r.summary)")
            ids.insert(r.executionId)
        }
        #expect(ids.count == 50)
        #expect(try watcher.status().executions.running == 0)
    }
}
