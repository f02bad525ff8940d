import ArgumentParser
#if canImport(Glibc)
import Glibc
#endif
import ToolClient
import ToolProtocol

@main
struct Toolc: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "toolc",
        abstract: "Client for toold: run sandboxed commands and tools, read the daemon's status.",
        discussion: """
            The socket is --socket, else $TOOLD_SOCKET, else /run/toold.sock.
            Exit codes: 0 success; for `exec`, the command's own exit code, 128+N when it was killed by \
            signal N, \(ExitCodes.timeout) timeout, \(ExitCodes.outOfMemory) out of memory, \(ExitCodes.outputLimit) output limit, \
            \(ExitCodes.failedToStart) failed to start, \(ExitCodes.notFound) command not found, \(ExitCodes.cancelled) cancelled (Ctrl-C); \
            for `call`, the same, and \(ExitCodes.invalidOutput) when the output does not match the tool's output schema; \
            \(ExitCodes.rejected) the daemon rejected the request (invalid params, permission, limits); \
            \(ExitCodes.unreachable) daemon unreachable; \(ExitCodes.protocolError) protocol error; \(ExitCodes.permissionDenied) no permission to use the socket; \
            64 bad usage.
            """,
        version: "toolc \(TooldVersion.current)",
        subcommands: [Status.self, Exec.self, Tools.self, Call.self])
}

/// Options every subcommand takes.
struct ClientOptions: ParsableArguments {
    @Option(help: "Socket of the daemon (default: $TOOLD_SOCKET or /run/toold.sock).") var socket: String?
    @Flag(help: "Print machine-readable JSON instead of text.") var json = false

    func connect() throws -> ToolClient {
        do {
            return try ToolClient(socketPath: ToolClient.socketPath(explicit: socket))
        } catch {
            throw fail(error)
        }
    }
}

/// Documented exit codes (also in `toolc --help` and README.md).
enum ExitCodes {
    static let rejected: Int32 = 125
    static let timeout: Int32 = 124
    static let outOfMemory: Int32 = 123
    static let outputLimit: Int32 = 122
    static let invalidOutput: Int32 = 121
    static let failedToStart: Int32 = 126
    static let notFound: Int32 = 127
    static let cancelled: Int32 = 130
    static let unreachable: Int32 = 69  // EX_UNAVAILABLE
    static let protocolError: Int32 = 76  // EX_PROTOCOL
    static let permissionDenied: Int32 = 77  // EX_NOPERM
}

/// Prints the one-line reason and turns a client error into its exit code.
func fail(_ error: ClientError) -> ExitCode {
    printError("toolc: \(error)")
    switch error {
    case .unreachable: return ExitCode(ExitCodes.unreachable)
    case .permissionDenied: return ExitCode(ExitCodes.permissionDenied)
    case .protocolError: return ExitCode(ExitCodes.protocolError)
    case .rpc: return ExitCode(ExitCodes.rejected)
    case .interrupted: return ExitCode(ExitCodes.cancelled)
    }
}

func printError(_ text: String) {
    var line = Array(text.utf8)
    line.append(10)
    writeAll(2, line)
}

func writeAll(_ fd: Int32, _ bytes: [UInt8]) {
    var offset = 0
    while offset < bytes.count {
        let n = bytes[offset...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        if n <= 0 {
            if n < 0 && errno == EINTR { continue }
            return
        }
        offset += n
    }
}

func printJSON(_ value: JSONValue) {
    var bytes = JSONCoding.serialize(value)
    bytes.append(10)
    writeAll(1, bytes)
}
