import Foundation
@testable import Sandbox
import Testing

/// The teardown's backstop kill (CgroupFiles.killMembers, used on cgroup v1 and on v2 kernels without
/// cgroup.kill) reaches exactly the processes in the sandbox's cgroup — never a pid that was listed once
/// and is not a member any more (after a member's exit, its pid may be a host process's).
@Suite struct CgroupKillTests {
    private func sleeper() throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sleep")
        p.arguments = ["60"]
        try p.run()
        return p
    }

    /// Whether `pid` is a live process (not gone, not a zombie): what a SIGKILL changes at once,
    /// unlike `Process.isRunning`, which waits for Foundation to reap it.
    private func alive(_ pid: pid_t) -> Bool {
        guard let stat = try? Posix.readText("/proc/\(pid)/stat"), let close = stat.lastIndex(of: ")") else { return false }
        return stat[stat.index(after: close)...].first(where: { $0 != " " }) != "Z"
    }

    /// Whether `p` has ended within 5 s (a kill that did not happen must not wait out the sleep).
    private func ended(_ p: Process) -> Bool {
        for _ in 0..<500 where p.isRunning { Posix.sleepMs(10) }
        return !p.isRunning
    }

    @Test func killsTheCgroupsMembersAndNothingElse() throws {
        let cgroups = TestRuntime.shared.core.cgroups
        guard !cgroups.usableControllers.isEmpty else { return }  // no cgroups here: nothing to kill
        let cgroup = try cgroups.create(name: "killtest-\(getpid())", limits: SandboxLimits())
        defer { try? cgroups.remove(cgroup) }
        let member = try sleeper()
        let outsider = try sleeper()
        defer {
            for p in [member, outsider] where p.isRunning { kill(p.processIdentifier, SIGKILL) }
        }
        for dir in cgroup.directories {
            try Posix.writeFile(dir + "/cgroup.procs", "\(member.processIdentifier)")
        }
        let listed = cgroup.directories.map { CgroupFiles.pids(in: $0) }
        #expect(listed.allSatisfy { $0 == [member.processIdentifier] }, "\(listed)")

        // A pid listed by the first read that is no member at the second (the outsider stands for a
        // host process that took over an exited member's pid) is not signalled; the member, not in
        // that first read, is not either.
        #expect(CgroupFiles.killMembers(of: cgroup.directories[0], firstListing: [outsider.processIdentifier]) == 1)
        Posix.sleepMs(20)
        #expect(alive(outsider.processIdentifier) && alive(member.processIdentifier))

        #expect(CgroupFiles.killMembers(of: cgroup.directories[0]) == 1)
        #expect(ended(member))
        #expect(member.terminationReason == .uncaughtSignal && member.terminationStatus == SIGKILL)
        #expect(alive(outsider.processIdentifier))
        // Once it has left, the cgroup lists nobody and the loop ends at once.
        var left = false
        for _ in 0..<200 where !left {
            left = cgroup.directories.allSatisfy { CgroupFiles.pids(in: $0).isEmpty }
            if !left { Posix.sleepMs(5) }
        }
        #expect(left)
        #expect(CgroupFiles.killMembers(of: cgroup.directories[0]) == 0)
        cgroups.killAll(cgroup)
        #expect(alive(outsider.processIdentifier))
    }
}
