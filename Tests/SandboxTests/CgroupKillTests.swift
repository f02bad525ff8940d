import Foundation
@testable import Sandbox
import Testing

/// The teardown's backstop kill (CgroupFiles.killMembers, used on cgroup v1 and on v2 kernels without
/// cgroup.kill) reaches exactly the processes in the sandbox's cgroup.
@Suite struct CgroupKillTests {
    private func sleeper() throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sleep")
        p.arguments = ["60"]
        try p.run()
        return p
    }

    @Test func killsTheCgroupsMembersAndNothingElse() throws {
        let cgroups = TestRuntime.shared.core.cgroups
        guard !cgroups.usableControllers.isEmpty else { return }  // no cgroups here: nothing to kill
        let cgroup = try cgroups.create(name: "killtest-\(getpid())", limits: SandboxLimits())
        defer { try? cgroups.remove(cgroup) }
        let member = try sleeper()
        let outsider = try sleeper()
        defer {
            if outsider.isRunning { kill(outsider.processIdentifier, SIGKILL) }
            outsider.waitUntilExit()
        }
        for dir in cgroup.directories {
            try Posix.writeFile(dir + "/cgroup.procs", "\(member.processIdentifier)")
        }
        let listed = cgroup.directories.map { CgroupFiles.pids(in: $0) }
        #expect(listed.allSatisfy { $0 == [member.processIdentifier] }, "\(listed)")

        #expect(CgroupFiles.killMembers(of: cgroup.directories[0]) == 1)
        member.waitUntilExit()
        #expect(member.terminationReason == .uncaughtSignal && member.terminationStatus == SIGKILL)
        #expect(outsider.isRunning)
        // Once it has left, the cgroup lists nobody and the loop ends at once.
        var left = false
        for _ in 0..<200 where !left {
            left = cgroup.directories.allSatisfy { CgroupFiles.pids(in: $0).isEmpty }
            if !left { Posix.sleepMs(5) }
        }
        #expect(left)
        #expect(CgroupFiles.killMembers(of: cgroup.directories[0]) == 0)
        cgroups.killAll(cgroup)
        #expect(outsider.isRunning)
    }
}
