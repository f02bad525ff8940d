import Foundation
import Testing
import ToolClient
import ToolProtocol

/// Records (issue 6) through the real daemon: the history survives `kill -9` in the middle of a burst, a
/// full disk refuses calls cleanly and recording resumes, users see only their own records, the result
/// cache hits and is invalidated, refusals and admin actions are recorded, and log lines carry the
/// execution's metadata. Callers that are not root drop to test uids through setpriv (PeerClient).
@Suite struct RecordsTests {
    // Test identities (no passwd entries: their names read as their numbers); one set per test.
    static let burstUsers: [UInt32] = [64401, 64402]
    static let ana: UInt32 = 64411
    static let ben: UInt32 = 64412
    static let cacheUser: UInt32 = 64421
    static let limitedUser: UInt32 = 64431

    var socketGroup: UInt32 { groupID("toold") ?? 0 }

    /// Runs requests as `uid` (a member of the socket group) on one connection; the responses in order.
    func callAs(_ socket: String, _ uid: UInt32, _ requests: [(String, JSONValue)]) throws -> [JSONValue] {
        let peer = try PeerClient(socket: socket, uid: uid, groups: [socketGroup], requests: requests)
        try peer.finish()
        return (1...requests.count).map { peer.response($0) ?? .null }
    }

    /// The JSON-RPC error of a call that must fail (nil when it succeeded).
    func rpcError(_ body: () throws -> JSONValue) -> RPCError? {
        do {
            _ = try body()
            return nil
        } catch ClientError.rpc(let error) {
            return error
        } catch {
            Issue.record("not an RPC error: \(error)")
            return nil
        }
    }

    // MARK: 1. kill -9

    /// 200 executions from four clients (two of them a non-root uid), quick ones and `sleep 0.3`, plus one
    /// `sleep 30`; SIGKILL once half are answered. Root's 100 pipelined calls exceed what one user may
    /// queue (64), so some are refused `overloaded`: those answers count too. After a restart on the same
    /// state directory: every answered call has its answer's status and exit code in the history; the file
    /// as the crash left it passes `integrity_check`; what was running is `interrupted`, never `running`;
    /// and the sandboxes that ran at the kill are gone, cgroups and processes.
    @Test func sigkillDuringABurstKeepsEveryAnsweredOutcomeAndMarksTheRunningInterrupted() throws {
        let dir = try TempDir("records-kill")
        defer { dir.remove() }
        let first = try RecordsDaemon(root: dir.url, policy: TestDaemon.defaultPolicy)
        defer { first.stop() }

        // One execution certain to be running at the kill: its start is recorded before exec.started.
        let long = try first.client()
        defer { long.close() }
        try long.send(RPCMethod.exec, params: ["argv": ["/bin/sleep", "30"], "stream": true])
        let longID = try Self.startedID(long)

        let callers: [UInt32] = [0, 0] + Self.burstUsers
        let peers = try callers.enumerated().map { c, uid in
            let requests: [(String, JSONValue)] = (0..<50).map { i in
                let n = c * 50 + i
                let argv: JSONValue = n % 4 == 0 ? ["/bin/sleep", "0.3"] : ["/bin/sh", "-c", .string("exit \(n % 7)")]
                return (RPCMethod.exec, ["argv": argv, "stream": true])
            }
            return try PeerClient(
                socket: first.socketPath, uid: uid, groups: uid == 0 ? [] : [socketGroup], requests: requests)
        }
        func answered() -> Int {
            peers.reduce(0) { $0 + $1.messages.filter { $0["id"] != nil && $0["method"] == nil }.count }
        }
        try waitUntil("100 of the 200 executions were answered", timeout: 90) { answered() >= 100 }

        // What runs now, for the cleanup check after the restart.
        let cgroupParents = try RecordsSandboxCgroups.parents(
            stateDirectory: first.stateDirectory, daemonPID: first.pid)
        // Executions' cgroups and the prepared sandboxes' (warm-<pid>-<n>, which executions also run in once they
        // take one): all must be gone after the restart.
        let runningCgroups = RecordsSandboxCgroups.children(cgroupParents)
        let runningPIDs = RecordsSandboxCgroups.pids(in: runningCgroups)
        let sleeping = runningPIDs.filter {
            (try? String(contentsOfFile: "/proc/\($0)/comm", encoding: .utf8)) == "sleep\n"
        }
        first.killHard()
        #expect(!runningCgroups.isEmpty, "no sandbox cgroup under \(cgroupParents) at the kill")
        #expect(!sleeping.isEmpty, "no `sleep` in the sandbox cgroups at the kill (the long sleep runs): \(runningPIDs)")

        var outcomes: [String: (status: JSONValue?, exitCode: JSONValue?)] = [:]
        var started = Set<String>()
        for peer in peers {
            try peer.finish(timeout: 20)  // the connection closed with the daemon
            for message in peer.messages {
                if message["method"] == "exec.started", let id = message["params"]?["execution_id"]?.stringValue {
                    started.insert(id)
                } else if let result = message["result"], let id = result["execution_id"]?.stringValue {
                    outcomes[id] = (result["status"], result["exit_code"])
                } else if let error = message["error"], let id = error["data"]?["execution_id"]?.stringValue,
                    error["code"] == .int(Int64(RPCErrorCode.overloaded))
                {
                    // Refused (more than a user may queue): recorded before the answer, like an outcome.
                    outcomes[id] = ("overloaded", nil)
                } else if message["error"] != nil {
                    Issue.record("a burst call failed: \(message)")
                }
            }
        }
        #expect(outcomes.count >= 100 && outcomes.count < 200, "\(outcomes.count) answered before the kill")

        // The file as the crash left it (database + WAL, copied before anything opens it again).
        let copy = try TempDir("records-crash-copy")
        defer { copy.remove() }
        for suffix in ["", "-wal"] where FileManager.default.fileExists(atPath: first.databasePath + suffix) {
            try FileManager.default.copyItem(
                atPath: first.databasePath + suffix, toPath: copy.path + "/toold.db" + suffix)
        }
        #expect(try recordsSQL(copy.path + "/toold.db", "PRAGMA integrity_check", readOnly: false) == "ok")
        let runningAtCrash = try recordsSQL(
            copy.path + "/toold.db", "SELECT execution_id FROM executions WHERE status = 'running'")
        #expect(runningAtCrash.contains(longID), "the long sleep is running in the file the crash left")

        let second = try RecordsDaemon(root: dir.url, logName: "toold-2.log")
        defer { second.stop() }
        let c = try second.client()
        defer { c.close() }
        for (id, answer) in outcomes {
            let record = try c.call(RPCMethod.executionsGet, params: ["execution_id": .string(id)])
            #expect(
                record["status"] == answer.status && record["exit_code"] == answer.exitCode,
                "\(id): answered \(answer), recorded \(record)")
        }
        let history = try recordsAllExecutions(c)
        #expect(
            !history.values.contains { $0["status"] == "running" }, "an execution is still running after the restart")
        for id in started where outcomes[id] == nil {
            // Started and never answered: interrupted, or finished with its answer lost in the kill.
            let status = history[id]?["status"]?.stringValue
            #expect(
                status != nil && status != "running", "\(id) started before the kill: \(status ?? "not in the history")"
            )
        }
        let interrupted = history.values.filter { $0["status"] == "interrupted" }
        let maxRunning = try c.call(RPCMethod.daemonStatus)["scheduler"]?["max_running"]?.int64Value ?? 0
        #expect(
            interrupted.count >= 1 && interrupted.count <= maxRunning,
            "\(interrupted.count) interrupted: between 1 (the long sleep) and max_running (\(maxRunning))")
        let longRecord = try c.call(RPCMethod.executionsGet, params: ["execution_id": .string(longID)])
        #expect(longRecord["status"] == "interrupted", "\(longRecord)")
        #expect(
            longRecord["finished_at"] != nil && longRecord["failure"]?.stringValue?.isEmpty == false, "\(longRecord)")
        #expect(try recordsSQL(second.databasePath, "PRAGMA integrity_check") == "ok")

        // The sandboxes of the kill: their cgroups removed at the restart, their processes dead.
        let marker = RecordsSandboxCgroups.parentName(stateDirectory: second.stateDirectory)
        let leftCgroups = runningCgroups.filter { FileManager.default.fileExists(atPath: $0) }
        #expect(leftCgroups.isEmpty, "sandbox cgroups left after the restart: \(leftCgroups)")
        let sandboxUID = getpwnam("toold-sandbox").map { $0.pointee.pw_uid }
        #expect(sandboxUID != nil, "no toold-sandbox user")
        if let sandboxUID {
            // The restarted daemon's own prepared sandboxes wait as that uid too; the killed one's are gone.
            #expect(
                RecordsSandboxCgroups.processes(
                    uid: sandboxUID, cgroupMarker: marker, excluding: "/warm-\(second.pid)-"
                ).isEmpty)
            let survivors = runningPIDs.filter {
                ((try? String(contentsOfFile: "/proc/\($0)/cgroup", encoding: .utf8)) ?? "").contains(marker)
            }
            #expect(survivors.isEmpty, "sandbox processes survived the kill: \(survivors)")
        }
        #expect(second.log.contains("executions interrupted by the previous stop recorded"))
    }

    /// Reads messages until `exec.started`; its execution id.
    static func startedID(_ client: ToolClient) throws -> String {
        while true {
            let message = try client.readMessage()
            if message["method"] == "exec.started", let id = message["params"]?["execution_id"]?.stringValue {
                return id
            }
            if message["id"] != nil { throw TestFailure("answered before it started: \(message)") }
        }
    }

    // MARK: 2. disk full

    /// State directory on a 4 MiB tmpfs, then filled: an execution is refused with -32009 naming the
    /// full file system (nothing runs), the daemon keeps answering and reading its history; an execution
    /// already running gets its result, and its end record lands once space returns. The file stays sound.
    @Test func aFullDiskRefusesCallsCleanlyAndRecordingResumesWhenSpaceReturns() throws {
        let dir = try TempDir("records-full")
        defer { dir.remove() }
        let tmpfs = try RecordsTmpfs(at: RecordsDaemon.stateDirectory(dir.url), size: "4m")
        defer { tmpfs.unmount() }
        let daemon = try RecordsDaemon(root: dir.url, policy: TestDaemon.defaultPolicy)
        defer { daemon.stop() }  // before the unmount (defers run in reverse)
        let c = try daemon.client()
        defer { c.close() }
        let before = try c.call(RPCMethod.exec, params: ["argv": ["/bin/true"]])
        #expect(before["status"] == "exited")

        // Running (its start recorded) when the disk fills.
        let slow = try daemon.client()
        defer { slow.close() }
        let slowRequest = try slow.send(RPCMethod.exec, params: ["argv": ["/bin/sleep", "3"], "stream": true])
        let slowID = try Self.startedID(slow)
        try tmpfs.fill("filler")

        for _ in 0..<2 {
            let refused = rpcError { try c.call(RPCMethod.exec, params: ["argv": ["/bin/echo", "unrecorded"]]) }
            #expect(refused?.code == RPCErrorCode.recordsUnavailable, "\(String(describing: refused))")
            let message = refused?.message ?? ""
            #expect(
                message.contains("records unavailable") && message.contains("nothing ran")
                    && message.contains("is full"), "\(message)")
        }
        #expect(try c.call(RPCMethod.daemonStatus)["pid"]?.int64Value == Int64(daemon.pid))
        let slowResult = try slow.wait(for: slowRequest)
        #expect(
            slowResult["status"] == "exited" && slowResult["exit_code"] == 0,
            "the running call gets its result: \(slowResult)")
        // Reads work; the end waits in memory.
        let meanwhile = try recordsAllExecutions(c)
        #expect(meanwhile.count == 2, "\(meanwhile.keys): the refused calls left no row")
        #expect(meanwhile[slowID]?["status"] == "running")
        #expect(daemon.log.contains("execution record kept in memory until it can be written"))

        try FileManager.default.removeItem(atPath: tmpfs.path + "/filler")
        let after = try c.call(RPCMethod.exec, params: ["argv": ["/bin/echo", "recorded"]])
        #expect(after["status"] == "exited" && after["stdout"] == "recorded\n")
        let afterRecord = try c.call(RPCMethod.executionsGet, params: ["execution_id": after["execution_id"] ?? .null])
        #expect(afterRecord["status"] == "exited" && afterRecord["stdout"] == "recorded\n", "\(afterRecord)")
        let slowRecord = try c.call(RPCMethod.executionsGet, params: ["execution_id": .string(slowID)])
        #expect(
            slowRecord["status"] == "exited" && slowRecord["exit_code"] == 0,
            "the kept end record was written: \(slowRecord)")
        #expect((slowRecord["duration_ms"]?.int64Value ?? 0) >= 2_900, "\(slowRecord)")
        #expect(try recordsSQL(daemon.databasePath, "PRAGMA integrity_check") == "ok")
    }

    // MARK: 3. users

    /// executions.list, executions.get and metrics.get: each user sees only their own; root (an admin)
    /// sees everyone's and may filter by user; another user's execution or figures are -32001.
    @Test func usersSeeOnlyTheirOwnHistoryAndFigures() throws {
        let daemon = try TestDaemon()
        defer { daemon.stop() }
        let socket = daemon.socketPath
        let exec = { (argv: JSONValue) -> (String, JSONValue) in (RPCMethod.exec, ["argv": argv]) }
        let anaRuns = try callAs(socket, Self.ana, [exec(["/bin/true"]), exec(["/bin/sh", "-c", "exit 3"])])
        let benRuns = try callAs(socket, Self.ben, [exec(["/bin/true"])])
        let c = try daemon.client()
        defer { c.close() }
        let rootRun = try c.call(RPCMethod.exec, params: ["argv": ["/bin/true"]])
        let anaIDs = Set(anaRuns.compactMap { $0["result"]?["execution_id"]?.stringValue })
        let benID = benRuns[0]["result"]?["execution_id"]?.stringValue ?? "?"
        let rootID = rootRun["execution_id"]?.stringValue ?? "?"
        #expect(anaIDs.count == 2, "\(anaRuns)")

        func ids(_ response: JSONValue) -> Set<String> {
            Set(response["result"]?["executions"]?.arrayValue?.compactMap { $0["execution_id"]?.stringValue } ?? [])
        }
        let anaView = try callAs(
            socket, Self.ana,
            [
                (RPCMethod.executionsList, [:]), (RPCMethod.executionsGet, ["execution_id": .string(benID)]),
                (RPCMethod.executionsGet, ["execution_id": .string(anaIDs.first ?? "?")]), (RPCMethod.metricsGet, [:]),
            ])
        #expect(ids(anaView[0]) == anaIDs, "\(anaView[0])")
        #expect(anaView[1].errorCode == RPCErrorCode.permissionDenied, "another user's execution: \(anaView[1])")
        #expect(anaView[2]["result"]?["uid"]?.int64Value == Int64(Self.ana), "\(anaView[2])")
        let anaName = anaView[2]["result"]?["user"] ?? .null
        let anaMetrics = anaView[3]["result"]
        #expect(anaMetrics?["users"] == nil, "users are for admins: \(anaMetrics ?? .null)")
        let anaExec = anaMetrics?["tools"]?.arrayValue?.first { $0["tool"] == "exec" }
        #expect(anaExec?["calls"] == 2 && anaExec?["succeeded"] == 1 && anaExec?["failed"] == 1, "\(anaExec ?? .null)")

        let benView = try callAs(
            socket, Self.ben,
            [
                (RPCMethod.executionsList, [:]), (RPCMethod.executionsList, ["user": anaName]),
                (RPCMethod.metricsGet, ["user": anaName]), (RPCMethod.executionsGet, ["execution_id": .string(rootID)]),
                (RPCMethod.metricsGet, [:]),
            ])
        #expect(ids(benView[0]) == [benID], "\(benView[0])")
        #expect(benView[1].errorCode == RPCErrorCode.permissionDenied, "another user's history: \(benView[1])")
        #expect(benView[2].errorCode == RPCErrorCode.permissionDenied, "another user's figures: \(benView[2])")
        #expect(benView[3].errorCode == RPCErrorCode.permissionDenied, "root's execution: \(benView[3])")
        let benName = benView[0]["result"]?["executions"]?.arrayValue?.first?["user"] ?? .null
        let benOwn = try callAs(socket, Self.ben, [(RPCMethod.executionsList, ["user": benName])])[0]
        #expect(ids(benOwn) == [benID], "naming oneself is allowed: \(benOwn)")
        let benExec = benView[4]["result"]?["tools"]?.arrayValue?.first { $0["tool"] == "exec" }
        #expect(benExec?["calls"] == 1 && benExec?["succeeded"] == 1, "\(benExec ?? .null)")

        // root: everyone, filtered by user on request, figures per user.
        let all = try c.call(RPCMethod.executionsList)
        #expect(ids(["result": all]) == anaIDs.union([benID, rootID]))
        let anaOnly = try c.call(RPCMethod.executionsList, params: ["user": anaName])
        #expect(ids(["result": anaOnly]) == anaIDs)
        #expect(
            try c.call(RPCMethod.executionsGet, params: ["execution_id": .string(benID)])["uid"]?.int64Value
                == Int64(Self.ben))
        let metrics = try c.call(RPCMethod.metricsGet)
        let exec4 = metrics["tools"]?.arrayValue?.first { $0["tool"] == "exec" }
        #expect(exec4?["calls"] == 4 && exec4?["succeeded"] == 3 && exec4?["failed"] == 1, "\(exec4 ?? .null)")
        let users = Dictionary(
            uniqueKeysWithValues: (metrics["users"]?.arrayValue ?? []).compactMap { u in
                u["uid"]?.int64Value.map { ($0, u) }
            })
        #expect(
            users[Int64(Self.ana)]?["calls"] == 2 && users[Int64(Self.ben)]?["calls"] == 1 && users[0]?["calls"] == 1,
            "\(users)")
        let anaFigures = try c.call(RPCMethod.metricsGet, params: ["user": anaName])
        #expect(anaFigures["tools"]?.arrayValue?.first { $0["tool"] == "exec" }?["calls"] == 2, "\(anaFigures)")
        #expect(
            rpcError {
                try c.call(RPCMethod.executionsGet, params: ["execution_id": "ex_00000000000000000000000000000000"])
            }?.code
                == RPCErrorCode.notFound)
    }

    // MARK: 4. cache

    /// A cacheable tool whose every run prints a new nanosecond clock: a repeated call is a hit (same
    /// output, `cached_from` the first call, its own id in the history); `cache: false`, other arguments
    /// and another uid miss; `cache_shared` lets another uid hit; a changed manifest misses; metrics count
    /// the hits and the hit rate exactly.
    @Test func repeatedCallsOfACacheableToolAreHitsUntilTheManifestChanges() throws {
        let tools = try ToolsDirectory()
        defer { tools.remove() }
        func roll(_ name: String, description: String = "prints its seed and the time", shared: Bool = false)
            -> JSONValue
        {
            var extra: [String: JSONValue] = [
                "cacheable": true, "cache_ttl_s": 60, "description": .string(description),
            ]
            if shared { extra["cache_shared"] = true }
            return toolManifest(
                name, properties: ["seed": ["type": "string"]], required: ["seed"],
                argv: ["/bin/sh", "-c", "echo \"$1 $(date +%s%N)\"", "sh", "{{seed}}"], stdin: "none", extra: extra)
        }
        try tools.write("roll", roll("roll"))
        try tools.write("roll.shared", roll("roll.shared", shared: true))
        let daemon = try TestDaemon(["--tools-dir", tools.path])
        defer { daemon.stop() }
        let c = try daemon.client()
        defer { c.close() }
        func call(_ tool: String, _ seed: String, cache: Bool? = nil) throws -> JSONValue {
            var params: [String: JSONValue] = ["name": .string(tool), "arguments": ["seed": .string(seed)]]
            if let cache { params["cache"] = .bool(cache) }
            let result = try c.call(RPCMethod.toolsCall, params: .object(params))
            #expect(result["status"] == "exited" && result["exit_code"] == 0, "\(result)")
            return result
        }
        func isHit(_ result: JSONValue, of first: JSONValue) -> Bool {
            result["cached"] == true && result["cached_from"] == first["execution_id"]
                && result["stdout"] == first["stdout"]
                && result["execution_id"] != first["execution_id"]
        }

        let r1 = try call("roll", "a")
        #expect(r1["cached"] != true && r1["cached_from"] == nil)
        let r2 = try call("roll", "a")
        #expect(isHit(r2, of: r1), "second call: \(r2)")
        let hitRecord = try c.call(RPCMethod.executionsGet, params: ["execution_id": r2["execution_id"] ?? .null])
        #expect(
            hitRecord["cached"] == true && hitRecord["status"] == "exited" && hitRecord["tool"] == "roll",
            "\(hitRecord)")
        let r3 = try call("roll", "a", cache: false)
        #expect(r3["cached"] != true && r3["stdout"] != r1["stdout"], "cache: false runs again: \(r3)")
        let r4 = try call("roll", "b")
        #expect(
            r4["cached"] != true && r4["stdout"]?.stringValue?.hasPrefix("b ") == true, "other arguments miss: \(r4)")

        // Per uid, unless the manifest shares the cache.
        let s1 = try call("roll.shared", "a")
        let other = try callAs(
            daemon.socketPath, Self.cacheUser,
            [
                (RPCMethod.toolsCall, ["name": "roll", "arguments": ["seed": "a"]]),
                (RPCMethod.toolsCall, ["name": "roll.shared", "arguments": ["seed": "a"]]),
            ])
        let otherRoll = other[0]["result"] ?? .null
        #expect(
            otherRoll["status"] == "exited" && otherRoll["cached"] != true && otherRoll["stdout"] != r1["stdout"],
            "\(other[0])")
        #expect(isHit(other[1]["result"] ?? .null, of: s1), "cache_shared: \(other[1])")

        // A changed manifest (same name and version): a miss, then hits on the new entry.
        try tools.write("roll", roll("roll", description: "prints its seed and the time, changed"))
        daemon.signal(SIGHUP)
        try waitUntil("the changed manifest is loaded") {
            try c.call(RPCMethod.toolsGet, params: ["name": "roll"])["description"]?.stringValue?.hasSuffix("changed")
                == true
        }
        let r5 = try call("roll", "a")
        #expect(r5["cached"] != true && r5["stdout"] != r1["stdout"], "changed manifest: \(r5)")
        let r6 = try call("roll", "a")
        #expect(isHit(r6, of: r5), "\(r6)")

        // roll, everyone's: runs r1 r3 r4 r5 and the other uid's; hits r2 r6 → 2 / 7.
        let metrics = try c.call(RPCMethod.metricsGet, params: ["tool": "roll"])
        let figures = metrics["tools"]?.arrayValue?.first { $0["tool"] == "roll" }
        #expect(
            figures?["calls"] == 7 && figures?["succeeded"] == 7 && figures?["cache_hits"] == 2, "\(figures ?? .null)")
        #expect(abs((figures?["cache_hit_rate"]?.doubleValue ?? -1) - 2.0 / 7.0) < 1e-9, "\(figures ?? .null)")
        #expect(figures?["totals"]?["cache_hits"] == 2, "\(figures ?? .null)")
        let otherMetrics = try callAs(daemon.socketPath, Self.cacheUser, [(RPCMethod.metricsGet, [:])])[0]
        let otherTools = otherMetrics["result"]?["tools"]?.arrayValue ?? []
        let otherRollFigures = otherTools.first { $0["tool"] == "roll" }
        let otherSharedFigures = otherTools.first { $0["tool"] == "roll.shared" }
        #expect(
            otherRollFigures?["cache_hits"] == 0 && otherRollFigures?["cache_hit_rate"]?.doubleValue == 0,
            "\(otherMetrics)")
        #expect(
            otherSharedFigures?["cache_hits"] == 1 && otherSharedFigures?["cache_hit_rate"]?.doubleValue == 1,
            "\(otherMetrics)")
    }

    // MARK: 5. refusals

    /// A call denied by policy and a rate-limited one are history entries (status, rule, the error the
    /// caller got) and count in metrics as denied and rate_limited.
    @Test func deniedAndRateLimitedCallsAreRecordedWithTheirRule() throws {
        let tools = try ToolsDirectory()
        defer { tools.remove() }
        try tools.write("danger.rm", toolManifest("danger.rm", argv: ["/bin/true"], risk: "high"))
        let policy = """
            {"principals": {
              "*": {"allow": ["exec", "risk:low"], "deny": ["danger.*"]},
              "user:\(Self.limitedUser)": {"rate": {"per_minute": 2}},
              "user:root": {"allow": ["*"]}
            }}
            """
        let daemon = try TestDaemon(["--tools-dir", tools.path], policy: policy)
        defer { daemon.stop() }
        let exec: (String, JSONValue) = (RPCMethod.exec, ["argv": ["/bin/true"]])
        let answers = try callAs(
            daemon.socketPath, Self.limitedUser, [(RPCMethod.toolsCall, ["name": "danger.rm"]), exec, exec, exec])
        #expect(answers[0].errorCode == RPCErrorCode.permissionDenied, "\(answers[0])")
        // The three execs run concurrently (one connection, pipelined): any one of them is the third.
        let execAnswers = answers[1...]
        #expect(execAnswers.filter { $0["result"]?["status"] == "exited" }.count == 2, "\(execAnswers)")
        let limitedAnswer = execAnswers.first { $0.errorCode == RPCErrorCode.rateLimited } ?? .null
        #expect(limitedAnswer != .null, "\(execAnswers)")
        let deniedRule = answers[0]["error"]?["data"]?["rule"] ?? .null
        let limitedRule = limitedAnswer["error"]?["data"]?["rule"] ?? .null
        #expect(
            deniedRule == #"* deny "danger.*""# && limitedRule == .string("user:\(Self.limitedUser) rate.per_minute"))

        let views = try callAs(
            daemon.socketPath, Self.limitedUser,
            [
                (RPCMethod.executionsList, ["status": "denied"]),
                (RPCMethod.executionsList, ["status": "rate_limited"]),
                (RPCMethod.metricsGet, [:]),
            ])
        let denied = views[0]["result"]?["executions"]?.arrayValue ?? []
        let limited = views[1]["result"]?["executions"]?.arrayValue ?? []
        #expect(
            denied.count == 1 && denied.first?["tool"] == "danger.rm" && denied.first?["method"] == "tools.call",
            "\(views[0])")
        #expect(
            limited.count == 1 && limited.first?["tool"] == "exec" && limited.first?["method"] == "exec", "\(views[1])")
        let c = try daemon.client()
        defer { c.close() }
        for (row, answer, rule) in [
            (denied.first, answers[0], deniedRule), (limited.first, limitedAnswer, limitedRule),
        ] {
            let record = try c.call(RPCMethod.executionsGet, params: ["execution_id": row?["execution_id"] ?? .null])
            #expect(record["rule"] == rule && record["uid"]?.int64Value == Int64(Self.limitedUser), "\(record)")
            #expect(
                record["error"]?["code"] == answer["error"]?["code"]
                    && record["error"]?["message"] == answer["error"]?["message"], "\(record)")
        }
        let figuresByTool = views[2]["result"]?["tools"]?.arrayValue ?? []
        let dangerFigures = figuresByTool.first { $0["tool"] == "danger.rm" }
        let execFigures = figuresByTool.first { $0["tool"] == "exec" }
        #expect(
            dangerFigures?["calls"] == 1 && dangerFigures?["denied"] == 1 && dangerFigures?["refused"] == 1,
            "\(dangerFigures ?? .null)")
        #expect(
            execFigures?["calls"] == 3 && execFigures?["succeeded"] == 2 && execFigures?["rate_limited"] == 1
                && execFigures?["refused"] == 1 && execFigures?["denied"] == 0, "\(execFigures ?? .null)")
        let rootDenied =
            try c.call(RPCMethod.executionsList, params: ["status": "denied"])["executions"]?.arrayValue ?? []
        #expect(rootDenied.count == 1 && rootDenied.first?["uid"]?.int64Value == Int64(Self.limitedUser))
    }

    /// Refusals cost nothing but their row, so a caller could grow the database as fast as it writes (20,000
    /// pipelined refusals grew it by 165 MB in 12 s; five with 15 MB arguments by 150 MB). A refused call keeps
    /// at most 64 KiB of arguments, and per uid 100 refusals in a row and 10 a second after are recorded.
    @Test func refusalsCannotFillTheDisk() throws {
        let daemon = try TestDaemon()
        defer { daemon.stop() }
        let c = try daemon.client()
        defer { c.close() }
        let refused: JSONValue = ["argv": ["/bin/true"], "limits": ["pids": 100_000]]
        let big: JSONValue = ["argv": ["/bin/true"], "env": ["PAD": .string(String(repeating: "x", count: 1 << 20))],
                              "limits": ["pids": 100_000]]
        // Alone first: recorded, its arguments replaced by their size.
        #expect(throws: ClientError.self) { try c.call(RPCMethod.exec, params: big) }
        let bigRow = try #require(c.call(RPCMethod.executionsList, params: ["limit": 1])["executions"]?.arrayValue?.first)
        let record = try c.call(RPCMethod.executionsGet, params: ["execution_id": bigRow["execution_id"] ?? .null])
        #expect(record["status"] == "invalid_params", "\(record)")
        let kept = try #require(record["arguments"]?.stringValue, "\(record["arguments"] ?? .null)")
        #expect(kept.hasSuffix("bytes of arguments, not kept: a refused call keeps at most 65536"), "\(kept)")
        // Then a flood, pipelined.
        let started = Date()
        let ids = try (0..<300).map { _ in try c.send(RPCMethod.exec, params: refused) }
        var answered = 0
        while answered < ids.count {
            let message = try c.readMessage()
            guard message["method"] == nil else { continue }
            #expect(message.errorCode == RPCErrorCode.invalidParams, "\(message)")
            answered += 1
        }
        let elapsed = Date().timeIntervalSince(started)
        let rows = try c.call(RPCMethod.executionsList, params: ["status": "invalid_params", "limit": 1000])["executions"]?.arrayValue ?? []
        // ExecutionRecorder.refusalBurst and refusalsPerSecond; the big call took one of the burst.
        let (burst, perSecond) = (100, 10)
        #expect(rows.count >= burst && rows.count <= burst + perSecond * (Int(elapsed) + 1), "\(rows.count) rows in \(elapsed) s")
    }

    // MARK: 6. audit

    /// tools.register, tools.unregister and policy reloads (good and broken) are audit rows of kind
    /// `admin` with the action names the daemon uses, who did it and through which method.
    @Test func adminActionsAreAudited() throws {
        let daemon = try TestDaemon()
        defer { daemon.stop() }
        let c = try daemon.client()
        defer { c.close() }
        _ = try c.call(RPCMethod.toolsRegister, params: ["manifest": toolManifest("audit.temp", argv: ["/bin/true"])])
        _ = try c.call(RPCMethod.toolsUnregister, params: ["name": "audit.temp"])
        try daemon.reloadPolicy(TestDaemon.defaultPolicy)
        try daemon.reloadPolicy("{ not json")
        let run = try c.call(RPCMethod.exec, params: ["argv": ["/bin/true"]])
        let db = daemon.dir.url.appendingPathComponent("state/toold.db").path
        let expected = [
            "tool_registered|audit.temp|tools.register|0|root", "tool_unregistered|audit.temp|tools.unregister|0|root",
            "policy_reloaded||signal|0|toold", "policy_reload_failed||signal|0|toold",
        ]
        var rows: [String] = []
        // A reload's audit row is written after the policy status changes: poll.
        try waitUntil("the reloads are audited", timeout: 10) {
            rows = try recordsSQL(
                db, "SELECT action, IFNULL(tool, ''), method, uid, user FROM audit WHERE kind = 'admin' ORDER BY id"
            ).split(separator: "\n").map(String.init)
            return rows.count >= expected.count
        }
        #expect(rows == expected)
        let failure = try recordsSQL(db, "SELECT details FROM audit WHERE action = 'policy_reload_failed'")
        #expect(failure.contains("error") && failure.contains("policy.json"), "\(failure)")
        let call = try recordsSQL(
            db,
            "SELECT kind, method, status FROM audit WHERE execution_id = '\(run["execution_id"]?.stringValue ?? "?")'")
        #expect(call == "call|exec|exited", "\(call)")
    }

    /// A secret in the arguments and the output (the default policy's `password` pattern) is redacted
    /// before it is recorded: not in the history's arguments, the stored output, the audit, or the log.
    @Test func secretsAreRedactedBeforeTheyReachTheRecords() throws {
        let daemon = try TestDaemon()
        defer { daemon.stop() }
        let c = try daemon.client()
        defer { c.close() }
        let run = try c.call(
            RPCMethod.exec, params: ["argv": ["/bin/echo", "password=hunter2"], "env": ["NOTE": "secret=hunter2"]])
        #expect(run["status"] == "exited" && run["stdout"]?.stringValue?.contains("hunter2") == false, "\(run)")
        let record = try c.call(RPCMethod.executionsGet, params: ["execution_id": run["execution_id"] ?? .null])
        let recordText = JSONCoding.serializeString(record)
        #expect(!recordText.contains("hunter2") && recordText.contains("[REDACTED:password]"), "\(recordText)")
        let db = daemon.dir.url.appendingPathComponent("state/toold.db").path
        let leaks = try recordsSQL(
            db,
            """
            SELECT (SELECT count(*) FROM executions WHERE instr(arguments, 'hunter2') > 0)
                 + (SELECT count(*) FROM outputs WHERE instr(stdout, 'hunter2') > 0 OR instr(stderr, 'hunter2') > 0)
                 + (SELECT count(*) FROM audit WHERE instr(IFNULL(arguments, ''), 'hunter2') > 0)
            """)
        #expect(leaks == "0")
        #expect(try recordsSQL(db, "SELECT count(*) FROM audit WHERE kind = 'call'") == "1")
        #expect(!daemon.log.contains("hunter2"))
    }

    // MARK: 7. log metadata

    /// toold's log lines carry the execution's metadata: `toold.tool=` and `toold.execution_id=`. Under
    /// systemd they are journal fields (TOOLD_TOOL=, e2e-systemd checks those); TestDaemon's stderr is
    /// never the journal (it drops JOURNAL_STREAM), so here they are stderr text.
    @Test func executionLogLinesCarryToolAndExecutionID() throws {
        let tools = try ToolsDirectory()
        defer { tools.remove() }
        try tools.write("say", toolManifest("say", argv: ["/bin/echo", "hi"], stdin: "none"))
        let daemon = try TestDaemon(["--tools-dir", tools.path])
        defer { daemon.stop() }
        let c = try daemon.client()
        defer { c.close() }
        let execID = try c.call(RPCMethod.exec, params: ["argv": ["/bin/true"]])["execution_id"]?.stringValue ?? "?"
        let toolID = try c.call(RPCMethod.toolsCall, params: ["name": "say"])["execution_id"]?.stringValue ?? "?"
        for (id, tool) in [(execID, "exec"), (toolID, "say")] {
            try waitUntil("the log has \(id)'s finish", timeout: 10) {
                daemon.log.split(separator: "\n").contains {
                    $0.contains("execution finished") && $0.contains("toold.execution_id=\(id)")
                        && $0.contains("toold.tool=\(tool)")
                }
            }
        }
    }
}

