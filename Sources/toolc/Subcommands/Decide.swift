import ArgumentParser
import ToolClient
import ToolProtocol

/// `toolc approve ID` and `toolc deny ID`: an admin's decision (`approvals.decide`).
struct Approve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Approve a call that waits for approval (admins; not your own call).",
        discussion: "The call then queues for a sandbox and runs. `toolc approvals` lists the ids.")

    @OptionGroup var options: ClientOptions
    @Option(help: "Why (logged by the daemon).") var reason: String?
    @Argument(help: "The execution id, from `toolc approvals`.") var executionID: String

    func run() throws { try decide(options, executionID, approve: true, reason: reason) }
}

struct Deny: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Deny a call that waits for approval (admins; not your own call).",
        discussion: "The caller's call fails with approval denied, naming you and the reason.")

    @OptionGroup var options: ClientOptions
    @Option(help: "Why; the caller sees it.") var reason: String?
    @Argument(help: "The execution id, from `toolc approvals`.") var executionID: String

    func run() throws { try decide(options, executionID, approve: false, reason: reason) }
}

private func decide(_ options: ClientOptions, _ executionID: String, approve: Bool, reason: String?) throws {
    var params: [String: JSONValue] = ["execution_id": .string(executionID), "approve": .bool(approve)]
    if let reason { params["reason"] = .string(reason) }
    let json = try callDaemon(options, RPCMethod.approvalsDecide, .object(params))
    if options.json { return printJSON(json) }
    writeAll(1, Array("\(approve ? "approved" : "denied") \(executionID)\n".utf8))
}
