import Foundation
import Testing
import ToolClient
import ToolProtocol

/// toolc as a person or an agent uses it: live streaming, stdin pass-through, --json, Ctrl-C.
@Suite struct ToolcTests {
    @Test func execStreamsOutputAndPassesStdinThrough() throws {
        let daemon = try TestDaemon()
        defer { daemon.stop() }
        let out = try daemon.toolc(["exec", "--", "sh", "-c", "tr a-z A-Z; echo warn >&2; exit 7"], stdin: Array("hello\n".utf8))
        #expect(out.status == 7)
        #expect(out.stdout == "HELLO\n")
        #expect(out.stderr == "warn\n")
        let binary: [UInt8] = [0, 255, 1, 254, 10]
        let echoed = try daemon.toolc(["exec", "--", "cat"], stdin: binary)
        #expect(echoed.stdoutBytes == binary)
        let quiet = try daemon.toolc(["exec", "--no-stdin", "--", "cat"], stdin: Array("ignored".utf8))
        #expect(quiet.status == 0 && quiet.stdout.isEmpty)
    }

    @Test func execJSONPrintsTheWholeResult() throws {
        let daemon = try TestDaemon()
        defer { daemon.stop() }
        let out = try daemon.toolc(["exec", "--json", "--env", "GREETING=hi there", "--", "sh", "-c", "echo \"$GREETING\""])
        #expect(out.status == 0)
        let result = try JSONCoding.fromJSON(ExecResult.self, JSONCoding.parse(out.stdoutBytes))
        #expect(result.status == .exited && result.stdout == "hi there\n")
        #expect(result.executionId.hasPrefix("ex_"))
    }

    @Test func ctrlCCancelsTheExecution() throws {
        let daemon = try TestDaemon()
        defer { daemon.stop() }
        let dir = try TempDir("ctrlc")
        defer { dir.remove() }
        let errURL = dir.url.appendingPathComponent("err")
        _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
        let toolc = Process()
        toolc.executableURL = URL(fileURLWithPath: Binaries.toolc)
        toolc.arguments = ["exec", "--no-stdin", "--", "sh", "-c", "echo started; exec sleep 60"]
        toolc.environment = ["TOOLD_SOCKET": daemon.socketPath]
        let outPipe = Pipe()
        toolc.standardOutput = outPipe
        toolc.standardError = try FileHandle(forWritingTo: errURL)
        try toolc.run()
        // Wait until the command runs (its first output arrived), then press "Ctrl-C".
        let first = outPipe.fileHandleForReading.availableData
        #expect(String(decoding: first, as: UTF8.self) == "started\n")
        kill(toolc.processIdentifier, SIGINT)
        toolc.waitUntilExit()
        #expect(toolc.terminationStatus == 130)
        #expect((try? String(contentsOf: errURL, encoding: .utf8))?.contains("cancelled") == true)
        // The daemon killed it: nothing is running any more.
        var running = -1
        for _ in 0..<100 {
            running = try daemon.client().call(RPCMethod.daemonStatus)["executions"]?["running"]?.int64Value.map(Int.init) ?? -1
            if running == 0 { break }
            usleep(50_000)
        }
        #expect(running == 0)
    }

    /// A connection the daemon refuses (too many) is answered with an error that has no id, then closed:
    /// toolc reports it as overloaded (118), not as a protocol error after the close (76).
    @Test func aRefusedConnectionIsReportedAsOverloaded() throws {
        let daemon = try TestDaemon(["--max-connections", "1"])
        defer { daemon.stop() }
        usleep(300_000)  // let the daemon see the start-up probe's connection close before counting
        let held = try daemon.client()
        defer { held.close() }
        #expect(try held.call(RPCMethod.daemonStatus)["version"] != nil)
        for command in [["status"], ["metrics"], ["history"]] {
            let out = try daemon.toolc(command)
            #expect(out.status == 118, "toolc \(command): exit \(out.status): \(out.stderr)")
        }
    }

    @Test func limitAboveMaximumIsRejectedWithTheMaximumNamed() throws {
        let daemon = try TestDaemon()
        defer { daemon.stop() }
        let out = try daemon.toolc(["exec", "--pids", "100000", "--", "true"])
        #expect(out.status == 125)
        #expect(out.stderr.contains("maximum of 1024"))
        let usage = try daemon.toolc(["exec", "--memory", "lots", "--", "true"])
        #expect(usage.status == 64)
    }
}
