import Foundation
import Testing

@testable import Sandbox

@Suite("Isolation modes")
struct ModeTests {
    func run(_ script: String, mode: IsolationMode, id: String = #function) async -> SandboxOutcome {
        var s = sh(script, id: id)
        s.mode = mode
        return await TestRuntime.shared.run(s) { _, _ in }
    }

    @Test func readOnlyModeMakesTheWorkspaceReadOnly() async {
        let o = await run("touch /workspace/x 2>&1; touch /tmp/x && echo tmp-ok", mode: .readOnly)
        #expect(o.out.contains("Read-only file system"))
        #expect(o.out.contains("tmp-ok"))
    }

    @Test func networkModeSharesTheHostNetwork() async {
        let host = Set(((try? String(contentsOfFile: "/proc/net/dev", encoding: .utf8)) ?? "").split(separator: "\n").dropFirst(2)
            .map { $0.split(separator: ":")[0].trimmingCharacters(in: .whitespaces) })
        let o = await run("tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '", mode: .network)
        #expect(Set(o.out.split(separator: "\n").map(String.init)) == host)
        // Still unprivileged and filtered.
        let u = await run("id -u; grep Seccomp: /proc/self/status", mode: .network)
        #expect(u.out.hasPrefix("1000\nSeccomp:\t2"))
    }

    @Test func trustedModeSeesTheHostReadOnlyButStaysConfined() async {
        let o = await run("""
            [ -d /root ] && echo root-visible
            [ -d /var ] && echo var-visible
            touch /var/toold-probe 2>/dev/null && echo var-writable
            touch /root/toold-probe 2>/dev/null && echo root-writable
            echo ok > /workspace/w && echo ok > /tmp/t && echo scratch-ok
            id -u; hostname; echo $$; grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status | tr -s '\\t' ' '
            """, mode: .trusted)
        #expect(o.status == .exited, "\(o.failure?.message ?? "") \(o.err)")
        #expect(o.out == "root-visible\nvar-visible\nscratch-ok\n1000\nsandbox\n2\nCapEff: 0000000000000000\nNoNewPrivs: 1\nSeccomp: 2\n", "\(o.out)")
        #expect(!FileManager.default.fileExists(atPath: "/var/toold-probe"))
    }
}
