import Testing
import Sandbox

@Suite struct SmokeTests {
    @Test func echoRuns() async {
        let o = await run(sh("echo hello; id; hostname; ls /; cat /proc/self/status | grep -E 'Cap|Seccomp|NoNewPrivs'; cat /proc/self/uid_map; ls /dev; mount | head -50; ip a 2>&1 || cat /proc/net/dev"))
        print(o.status, o.exitCode as Any, o.failure as Any)
        print(o.out)
        print(o.err)
        #expect(o.status == .exited)
    }
}
