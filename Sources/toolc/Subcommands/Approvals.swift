import ArgumentParser
import ToolClient
import ToolProtocol

/// `toolc approvals`: the calls waiting for an admin's decision (`approvals.list`, admins only).
struct Approvals: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the calls waiting for an admin's approval (admins only).",
        discussion: """
            Oldest first: execution id, user, tool, how long it has waited, when it expires, the rule that asks \
            for approval and the arguments (redacted by the caller's policy). Decide with `toolc approve ID` or \
            `toolc deny ID`; nobody decides their own call.
            """)

    @OptionGroup var options: ClientOptions

    func run() throws {
        let json = try callDaemon(options, RPCMethod.approvalsList, .object([:]))
        if options.json { return printJSON(json) }
        guard let list = try? JSONCoding.fromJSON(ApprovalsListResult.self, json) else {
            throw fail(.protocolError("approvals.list returned an unexpected shape"))
        }
        if list.approvals.isEmpty { return writeAll(1, Array("no calls wait for approval\n".utf8)) }
        var rows = [["EXECUTION ID", "USER", "TOOL", "WAITED", "EXPIRES IN", "RULE", "ARGUMENTS"]]
        for a in list.approvals {
            rows.append([
                a.executionId, a.user == String(a.uid) ? a.user : "\(a.user) (\(a.uid))", a.tool,
                formatDuration(ms: Int64(a.waitedMs)), formatDuration(ms: Int64(a.expiresInMs)), a.rule,
                truncate(JSONCoding.serializeString(a.arguments), 80),
            ])
        }
        writeAll(1, Array(table(rows).utf8))
    }
}
