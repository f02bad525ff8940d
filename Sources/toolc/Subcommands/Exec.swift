import ArgumentParser
import ToolClient
import ToolProtocol

#if canImport(Glibc)
import Glibc
#endif

struct Exec: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a command in a fresh sandbox, streaming its output.",
        discussion: """
            Output streams live to stdout/stderr; toolc exits with the command's exit code (see `toolc --help` \
            for the codes of timeouts, OOM and rejections) and prints a one-line reason on stderr when a limit \
            ended the command. Standard input is passed through when it is not a terminal. Ctrl-C cancels.
            When policy requires an admin's approval, toolc says so on stderr (with the execution id an admin \
            passes to `toolc approve`) and waits; Ctrl-C cancels the waiting call too. A denied or expired \
            approval, a rate limit and an overloaded daemon have their own exit codes (`toolc --help`).
            Example: toolc exec --timeout 5s --memory 128M -- python3 -c 'print(1)'
            """)

    @OptionGroup var options: ClientOptions
    @Option(help: "Wall-clock limit, e.g. 500ms, 10s, 2m.") var timeout: String?
    @Option(help: "Memory limit, e.g. 64M, 1G.") var memory: String?
    @Option(help: "Maximum number of processes.") var pids: Int?
    @Option(help: "CPU limit in cores, e.g. 0.5, 2, or millicores like 500m.") var cpu: String?
    @Option(name: .customLong("output-limit"), help: "Per-stream output limit, e.g. 1M.") var outputLimit: String?
    @Option(name: .customLong("file-limit"), help: "Largest file the command may write, e.g. 16M.") var fileLimit: String?
    @Option(name: .customLong("tmp-size"), help: "Size of /tmp and /workspace, e.g. 64M.") var tmpSize: String?
    @Option(name: .customLong("env"), help: ArgumentHelp("Set a variable (repeatable).", valueName: "K=V")) var env: [String] = []
    @Option(help: "Working directory inside the sandbox (default /workspace).") var cwd: String?
    @Option(help: "Isolation mode: sandbox (default), read_only, network or trusted; network and trusted need the policy's permission.")
    var mode: String?
    @Flag(name: .customLong("no-stdin"), help: "Do not pass standard input through.") var noStdin = false
    @Option(
        name: .customLong("stdin-limit"),
        help: "Largest standard input passed through, e.g. 1M (default 11M, which fits the daemon's default 16 MiB frame even as base64); more is an error, exit 64."
    )
    var stdinLimit: String?
    @Argument(parsing: .postTerminator, help: "The command and its arguments, after --.") var command: [String] = []

    /// 11 MiB: as base64 (15 MiB) it still fits the default 16 MiB frame with room for the rest.
    static let defaultStdinLimit: UInt64 = 11 << 20

    func validate() throws {
        if command.isEmpty { throw ValidationError("give the command after --, e.g. toolc exec -- ls -l") }
        if let mode, ToolMode(rawValue: mode) == nil {
            throw ValidationError("--mode must be one of \(ToolMode.allCases.map(\.rawValue).joined(separator: ", "))")
        }
    }

    func buildParams() throws -> ExecParams {
        var environment: [String: String] = [:]
        for entry in env {
            guard let eq = entry.firstIndex(of: "="), eq != entry.startIndex else {
                throw ValidationError("--env \(entry): expected K=V")
            }
            environment[String(entry[..<eq])] = String(entry[entry.index(after: eq)...])
        }
        var limits = ExecLimits()
        limits.memoryBytes = try memory.map { try parseSize($0, flag: "--memory") }
        limits.pids = pids
        limits.cpuMillicores = try cpu.map { try parseCPU($0) }
        limits.outputBytes = try outputLimit.map { Int(try parseSize($0, flag: "--output-limit")) }
        limits.fileBytes = try fileLimit.map { try parseSize($0, flag: "--file-limit") }
        limits.tmpBytes = try tmpSize.map { try parseSize($0, flag: "--tmp-size") }
        var params = ExecParams(argv: command)
        params.env = environment.isEmpty ? nil : environment
        params.cwd = cwd
        params.mode = mode.flatMap(ToolMode.init(rawValue:))
        params.timeoutMs = try timeout.map { try parseDuration($0) }
        params.limits = limits == ExecLimits() ? nil : limits
        if !noStdin && isatty(0) == 0 {
            // The request carries stdin whole: an endless pipe must end in an error, not in toolc's OOM.
            let limit = try stdinLimit.map { try parseSize($0, flag: "--stdin-limit") } ?? Self.defaultStdinLimit
            guard let input = readStdin(limit: Int(clamping: limit)) else {
                printError(
                    "toolc: standard input is larger than \(limit) bytes (--stdin-limit); exec carries it in the request. "
                        + "Pass less, raise --stdin-limit (the request must fit the daemon's max_frame_bytes), or use --no-stdin")
                throw ExitCode(64)
            }
            if let text = String(validating: input, as: UTF8.self), jsonEscapedSize(input) <= (input.count + 2) / 3 * 4 {
                params.stdin = text
            } else {
                // Binary, or text whose JSON escaping (\u0000 is 6 bytes) would outgrow base64.
                params.stdinBase64 = Base64.encode(input)
            }
        }
        return params
    }

    func run() throws {
        var params = try buildParams()
        params.stream = !options.json
        let client = try options.connect()
        let paramsJSON: JSONValue
        do {
            paramsJSON = try JSONCoding.toJSON(params)
        } catch {
            throw fail(.protocolError("cannot encode params: \(error)"))
        }
        let json = try CancellableCall(client: client, method: RPCMethod.exec, params: paramsJSON).run { note in
            guard note.method == RPCMethod.execOutput, let params = note.params,
                let chunk = try? JSONCoding.fromJSON(ExecOutputNotification.self, params)
            else { return }
            writeAll(chunk.stream == .stdout ? 1 : 2, chunk.bytes)
        }
        guard let result = try? JSONCoding.fromJSON(ExecResult.self, json) else {
            throw fail(.protocolError("exec returned an unexpected shape"))
        }
        if options.json {
            printJSON(json)
        }
        throw ExitCode(Self.exitCode(for: result, quiet: options.json))
    }

    /// The exit status toolc reports for a result, printing the reason when a limit ended the command.
    static func exitCode(for result: ExecResult, quiet: Bool) -> Int32 {
        func reason(_ text: String) { if !quiet { printError("toolc: \(text)") } }
        let limits = result.violations.isEmpty ? "" : " (limits hit: \(result.violations.joined(separator: ", ")))"
        switch result.status {
        case .exited:
            if !result.violations.isEmpty { reason("command exited with \(result.exitCode ?? 0)\(limits)") }
            return result.exitCode ?? 0
        case .signaled:
            let signal = result.signal ?? 9
            reason("command killed by signal \(signal)\(limits)")
            return 128 + signal
        case .timeout:
            reason("timed out after \(result.durationMs) ms; the sandbox was killed")
            return ExitCodes.timeout
        case .oom:
            reason("out of memory (peak \(result.memoryPeakBytes) bytes); the sandbox was killed")
            return ExitCodes.outOfMemory
        case .outputLimit:
            reason("output limit reached; output truncated and the sandbox killed")
            return ExitCodes.outputLimit
        case .cancelled:
            reason("cancelled")
            return ExitCodes.cancelled
        case .failedToStart:
            reason("failed to start: \(result.failure?.message ?? "unknown")")
            // 127 only when the program itself was not found (not e.g. a missing --cwd).
            let notFound = result.failure?.stage == "execve" && result.failure?.errno == ENOENT
            return notFound ? ExitCodes.notFound : ExitCodes.failedToStart
        }
    }
}

/// Bytes `input` takes as a JSON string body: control characters become 6-byte escapes, `"` and `\` two.
func jsonEscapedSize(_ input: [UInt8]) -> Int {
    input.reduce(0) { size, byte in
        switch byte {
        case 0x22, 0x5C, 0x0A, 0x0D, 0x09: return size + 2
        case ..<0x20: return size + 6
        default: return size + 1
        }
    }
}

/// All of standard input, or nil as soon as it holds more than `limit` bytes. A read error ends toolc
/// (exit 64) rather than sending what was read so far as if it were all.
func readStdin(limit: Int) -> [UInt8]? {
    var data: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = chunk.withUnsafeMutableBytes { read(0, $0.baseAddress, $0.count) }
        if n < 0 && errno == EINTR { continue }
        if n < 0 {
            printError("toolc: cannot read standard input: \(String(cString: strerror(errno)))")
            exit(64)
        }
        if n == 0 { return data }
        if n > limit - data.count { return nil }
        data.append(contentsOf: chunk[0..<n])
    }
}

/// SIGINT/SIGTERM → a byte on a pipe the client polls, so a blocking wait can be interrupted safely.
enum InterruptPipe {
    nonisolated(unsafe) static var writeEnd: Int32 = -1

    static func install() -> Int32 {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { return -1 }
        for fd in fds {
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            _ = fcntl(fd, F_SETFL, O_NONBLOCK)
        }
        writeEnd = fds[1]
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { _ in
            var byte: UInt8 = 1
            _ = write(InterruptPipe.writeEnd, &byte, 1)  // async-signal-safe
        }
        sigaction(SIGINT, &action, nil)
        sigaction(SIGTERM, &action, nil)
        // A parent may have started us with these blocked (signal masks are inherited): Ctrl-C must work.
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGINT)
        sigaddset(&set, SIGTERM)
        sigprocmask(SIG_UNBLOCK, &set, nil)
        return fds[0]
    }
}

/// Sizes: plain bytes or with K, M, G, T (powers of 1024), optional trailing B or iB.
func parseSize(_ text: String, flag: String) throws -> UInt64 {
    var digits = text.uppercased()
    for suffix in ["IB", "B"] where digits.hasSuffix(suffix) && digits.count > suffix.count { digits.removeLast(suffix.count) }
    var multiplier: UInt64 = 1
    if let last = digits.last, let power = ["K": 1, "M": 2, "G": 3, "T": 4][String(last)] {
        multiplier = 1 << (10 * UInt64(power))
        digits.removeLast()
    }
    guard let value = UInt64(digits), value > 0 else {
        throw ValidationError("\(flag) \(text): expected a size like 512K, 64M or 1G")
    }
    let (bytes, overflow) = value.multipliedReportingOverflow(by: multiplier)
    guard !overflow, bytes <= UInt64(Int64.max) else { throw ValidationError("\(flag) \(text): too large") }
    return bytes
}

/// Durations: 500ms, 10s, 2m, 1h, or plain seconds.
func parseDuration(_ text: String) throws -> Int {
    let units: [(String, Double)] = [("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000)]
    var milliseconds: Double?
    for (suffix, factor) in units where text.hasSuffix(suffix) {
        if let value = Double(text.dropLast(suffix.count)) {
            milliseconds = value * factor
            break
        }
    }
    if milliseconds == nil, let seconds = Double(text) { milliseconds = seconds * 1000 }
    guard let ms = milliseconds, ms.isFinite, ms >= 1, let value = Int(exactly: ms.rounded()) else {
        throw ValidationError("--timeout \(text): expected a duration like 500ms, 10s or 2m")
    }
    return value
}

/// CPU: cores (0.5, 2) or millicores (500m).
func parseCPU(_ text: String) throws -> Int {
    if text.hasSuffix("m"), let milli = Int(text.dropLast()), milli > 0 { return milli }
    if let cores = Double(text), cores.isFinite, cores > 0, let milli = Int(exactly: (cores * 1000).rounded()) {
        return milli
    }
    throw ValidationError("--cpu \(text): expected cores like 0.5 or 2, or millicores like 500m")
}
