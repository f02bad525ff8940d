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
        abstract:
            "Client for toold: run sandboxed commands and tools, read the daemon's status, policy, history and metrics, decide approvals.",
        discussion: """
            The socket is --socket, else $TOOLD_SOCKET, else /run/toold.sock.
            Exit codes: 0 success; for `exec`, the command's own exit code, 128+N when it was killed by \
            signal N, \(ExitCodes.timeout) timeout, \(ExitCodes.outOfMemory) out of memory, \(ExitCodes.outputLimit) output limit, \
            \(ExitCodes.failedToStart) failed to start, \(ExitCodes.notFound) command not found, \(ExitCodes.cancelled) cancelled (Ctrl-C, \
            or cancelled by someone else while it waited); \
            for `call`, the same, and \(ExitCodes.invalidOutput) when the output does not match the tool's output schema; \
            \(ExitCodes.approvalDenied) an admin denied the call or its approval expired; \(ExitCodes.rateLimited) rate limited \
            (a rate or cooldown of the policy; the reason says when to retry); \(ExitCodes.overloaded) the daemon is overloaded \
            (its queue is full or the call waited too long in it; the reason says when to retry); \
            \(ExitCodes.recordsUnavailable) records unavailable (the daemon could not write the call's record — a full disk or a \
            damaged database — so nothing ran; safe to retry once it is fixed); \
            \(ExitCodes.rejected) the daemon rejected the request (invalid params, permission or policy denial, limits, \
            unknown names); \(ExitCodes.unreachable) daemon unreachable; \(ExitCodes.protocolError) protocol error; \
            \(ExitCodes.permissionDenied) no permission to use the socket; 64 bad usage. \
            `toolc policy check` exits 0 when the call would be allowed and \(ExitCodes.policyRefuses) when it would be \
            denied or need an admin's approval.
            """,
        version: "toolc \(TooldVersion.current)",
        subcommands: [
            Status.self, Exec.self, Tools.self, Call.self, History.self, Show.self, Metrics.self, Policy.self,
            Approvals.self, Approve.self, Deny.self,
        ])
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
    /// -32007: an admin denied the call, or nobody decided before it expired.
    static let approvalDenied: Int32 = 120
    /// -32002: a rate or cooldown of the policy refused the call (`retry_after_ms` says when it fits).
    static let rateLimited: Int32 = 119
    /// -32005: the scheduler's queue is full or the call waited too long in it (`retry_after_ms`: an estimate).
    static let overloaded: Int32 = 118
    /// -32009: the daemon could not write the call's record (full disk, damaged database), so nothing ran.
    static let recordsUnavailable: Int32 = 117
    /// `toolc policy check`: the call would be denied or need approval.
    static let policyRefuses: Int32 = 1
    static let failedToStart: Int32 = 126
    static let notFound: Int32 = 127
    static let cancelled: Int32 = 130
    static let unreachable: Int32 = 69  // EX_UNAVAILABLE
    static let protocolError: Int32 = 76  // EX_PROTOCOL
    static let permissionDenied: Int32 = 77  // EX_NOPERM
}

/// Prints the one-line reason and turns a client error into its exit code.
func fail(_ error: ClientError) -> ExitCode {
    switch error {
    case .rpc(let rpc):
        printError("toolc: \(reason(rpc))")
        return ExitCode(exitCode(for: rpc))
    default:
        printError("toolc: \(error)")
    }
    switch error {
    case .unreachable: return ExitCode(ExitCodes.unreachable)
    case .permissionDenied: return ExitCode(ExitCodes.permissionDenied)
    case .protocolError: return ExitCode(ExitCodes.protocolError)
    case .rpc: return ExitCode(ExitCodes.rejected)
    case .interrupted: return ExitCode(ExitCodes.cancelled)
    }
}

/// The exit code of a JSON-RPC error: the refusals a person or script acts on differently (retry later,
/// ask an admin) have their own; every other refusal is `rejected`.
func exitCode(for error: RPCError) -> Int32 {
    switch error.code {
    case RPCErrorCode.rateLimited: return ExitCodes.rateLimited
    case RPCErrorCode.overloaded: return ExitCodes.overloaded
    case RPCErrorCode.approvalDenied: return ExitCodes.approvalDenied
    case RPCErrorCode.recordsUnavailable: return ExitCodes.recordsUnavailable
    case RPCErrorCode.cancelled: return ExitCodes.cancelled
    default: return ExitCodes.rejected
    }
}

/// The daemon's message, plus what its `data` adds for a person: the policy rule when the message does
/// not name it, and when to retry.
func reason(_ error: RPCError) -> String {
    var text = error.message
    var extras: [String] = []
    if let rule = error.data?["rule"]?.stringValue, !text.contains(rule) { extras.append("rule \(rule)") }
    if let retry = error.data?["retry_after_ms"]?.int64Value { extras.append("retry after \(retry) ms") }
    if !extras.isEmpty { text += " (\(extras.joined(separator: "; ")))" }
    return text
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
