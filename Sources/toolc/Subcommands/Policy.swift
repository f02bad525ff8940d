import ArgumentParser
import ToolClient
import ToolProtocol

/// `toolc policy [show]` and `toolc policy check`: the effective policy (`policy.get`) for people.
struct Policy: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the policy that applies to you (admins: to any user or group) and explain decisions.",
        discussion: """
            `toolc policy` shows every setting with the rule it comes from; `toolc policy check TOOL` explains \
            whether one call would be allowed. Non-admins may ask about themselves and the groups they are in.
            """,
        subcommands: [Show.self, Check.self],
        defaultSubcommand: Show.self)

    /// Whose policy: the caller's, or a named user's or group's.
    struct Subject: ParsableArguments {
        @Option(help: "A user name or uid (admins: anyone, with the groups the user database gives them; others: themselves).")
        var user: String?
        @Option(help: "A group name or gid: the policy a member of only this group gets.") var group: String?

        func validate() throws {
            if user != nil && group != nil { throw ValidationError("give --user or --group, not both") }
        }

        var params: JSONValue {
            var o: [String: JSONValue] = [:]
            if let user { o["user"] = .string(user) }
            if let group { o["group"] = .string(group) }
            return .object(o)
        }

        func fetch(_ options: ClientOptions) throws -> (JSONValue, PolicyView) {
            let json = try callDaemon(options, RPCMethod.policyGet, params)
            guard let view = try? JSONCoding.fromJSON(PolicyView.self, json) else {
                throw fail(.protocolError("policy.get returned an unexpected shape"))
            }
            return (json, view)
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show the effective policy: principals, modes, limits, rates, approvals, patterns and every tool's verdict.")

        @OptionGroup var options: ClientOptions
        @OptionGroup var subject: Subject

        func run() throws {
            let (json, view) = try subject.fetch(options)
            if options.json { return printJSON(json) }
            writeAll(1, Array(Self.render(view).utf8))
        }

        static func render(_ p: PolicyView) -> String {
            var lines: [String] = []
            let indent = String(repeating: " ", count: 18)
            func field(_ name: String, _ value: String) {
                let label = name + ":"
                lines.append(label + String(repeating: " ", count: max(1, indent.count - label.count)) + value)
            }
            /// One item a line, aligned under the first.
            func fieldList(_ name: String, _ items: [String]) {
                field(name, items.isEmpty ? "none" : items.joined(separator: "\n" + indent))
            }
            func setting<T: Sendable & Equatable & Codable>(_ s: PolicySetting<T>?, _ show: (T) -> String) -> String {
                s.map { "\(show($0.value))  (\($0.rule))" } ?? "none"
            }
            field("subject", p.subject + (p.uid.map { " (uid \($0))" } ?? ""))
            field("groups", p.groups.isEmpty ? "none" : p.groups.joined(separator: ", "))
            field("policy", p.source)
            field("principals", p.principals.isEmpty ? "none (nothing is allowed)" : p.principals.joined(separator: ", "))
            field("modes", "\(p.modes.value.joined(separator: ", "))  (\(p.modes.rule))")
            let capped = p.limits.keys.sorted()
            if capped.isEmpty {
                field("limits", "no policy maxima (the daemon's maxima apply)")
            } else {
                field("limits", "the most a call may ask for (other limits: the daemon's maxima)")
                var rows = [["  LIMIT", "MAXIMUM", "RULE"]]
                for name in capped {
                    let s = p.limits[name]!
                    rows.append(["  " + name, formatLimit(name, s.value), s.rule])
                }
                lines.append(String(table(rows).dropLast()))
            }
            let r = p.rate
            let rates = [
                r.perMinute.map { "\($0.value) per minute (\($0.rule))" },
                r.perHour.map { "\($0.value) per hour (\($0.rule))" },
                r.perToolPerMinute.map { "\($0.value) per tool per minute (\($0.rule))" },
                r.perToolPerHour.map { "\($0.value) per tool per hour (\($0.rule))" },
            ].compactMap { $0 }
            field("rates", rates.isEmpty ? "unlimited" : rates.joined(separator: ", "))
            field("concurrency", setting(p.concurrency) { "\($0) running at once" })
            field("cooldown", setting(p.cooldownMs) { "\($0) ms between two calls of the same tool" })
            fieldList("require approval", p.requireApproval.map(\.rule))  // the rule names the selector
            fieldList("deny patterns", p.denyPatterns.map { "\($0.name): \($0.pattern)  (\($0.rule))" })
            fieldList("redact", p.redact.map { "\($0.name)  (\($0.rule))" })
            lines.append("tools:")
            var rows = [["  TOOL", "VERDICT", "MODE", "RULE"]]
            for t in p.tools {
                var rule = t.rule
                if let approval = t.approvalRule { rule += "; approval: \(approval)" }
                rows.append(["  " + t.tool, t.verdict.rawValue, t.mode + (t.modeAllowed ? "" : " (not permitted)"), rule])
            }
            lines.append(String(table(rows).dropLast()))
            return lines.joined(separator: "\n") + "\n"
        }

        /// Bytes also in binary units, times as given: `1073741824 (1 GiB)`.
        static func formatLimit(_ name: String, _ value: UInt64) -> String {
            guard name.hasSuffix("_bytes") else { return "\(value)" }
            for (unit, shift) in [("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10)] where value >= 1 << shift {
                let whole = value >> shift
                return whole << shift == value ? "\(value) (\(whole) \(unit))" : "\(value)"
            }
            return "\(value)"
        }
    }

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Explain whether a call of one tool would be allowed, and by which rule.",
            discussion: """
                Checks, in the daemon's order: the tool's allow/deny rules, the mode, whether an admin must \
                approve. Exit status 0 when the call would be allowed, \(ExitCodes.policyRefuses) when it would be denied \
                (by a rule or for its mode) or need an admin's approval. Deny patterns, rates and the cooldown \
                depend on the call's arguments and timing and are not part of the check.
                --mode chooses the mode of `exec` (default sandbox); every other tool runs in its manifest's mode.
                Example: toolc policy check --user alice --mode network exec
                """)

        @OptionGroup var options: ClientOptions
        @OptionGroup var subject: Subject
        @Option(help: "The isolation mode to check (sandbox, read_only, network, trusted); for exec only.") var mode: String?
        @Argument(help: "The tool's name.") var tool: String

        func validate() throws {
            if let mode, ToolMode(rawValue: mode) == nil {
                throw ValidationError("--mode must be one of \(ToolMode.allCases.map(\.rawValue).joined(separator: ", "))")
            }
        }

        func run() throws {
            let (_, view) = try subject.fetch(options)
            // tools.call accepts the openai/anthropic spelling (`.` as `_`): so does the check.
            guard let decision = view.tools.first(where: { $0.tool == tool })
                ?? view.tools.first(where: { $0.tool.replacingDots == tool })
            else {
                printError("toolc: no tool named \"\(tool)\" (toolc tools list shows the tools)")
                throw ExitCode(ExitCodes.rejected)
            }
            var mode = decision.mode
            var modeAllowed = decision.modeAllowed
            if let asked = self.mode, asked != decision.mode {
                guard decision.tool == "exec" else {
                    throw ValidationError("\(decision.tool) always runs in mode \(decision.mode); --mode chooses the mode of exec only")
                }
                mode = asked
                modeAllowed = view.modes.value.contains(asked)
            }
            let who = view.subject.hasPrefix("user:") ? String(view.subject.dropFirst(5)) : view.subject
            let allowed = decision.verdict == .allow && modeAllowed
            let line: String
            if decision.verdict == .deny {
                line = "denied: \(decision.rule)"
            } else if !modeAllowed {
                line = "denied: mode \(mode) not permitted (allowed: \(view.modes.value.joined(separator: ", ")); \(view.modes.rule))"
            } else if decision.verdict == .approval {
                line = "needs approval: \(decision.approvalRule ?? "an admin must approve") (allowed by \(decision.rule)) in mode \(mode)"
            } else {
                line = "\(who) may call \(decision.tool) (\(decision.rule)) in mode \(mode)"
            }
            if options.json {
                var o: [String: JSONValue] = [
                    "subject": .string(view.subject), "tool": .string(decision.tool), "mode": .string(mode),
                    "mode_allowed": .bool(modeAllowed), "verdict": .string(decision.verdict.rawValue),
                    "rule": .string(decision.rule), "allowed": .bool(allowed), "explanation": .string(line),
                ]
                if let approval = decision.approvalRule { o["approval_rule"] = .string(approval) }
                printJSON(.object(o))
            } else {
                writeAll(1, Array((line + "\n").utf8))
            }
            if !allowed { throw ExitCode(ExitCodes.policyRefuses) }
        }
    }
}

extension String {
    /// A tool name as openai and anthropic spell it.
    var replacingDots: String { String(map { $0 == "." ? "_" : $0 }) }
}
