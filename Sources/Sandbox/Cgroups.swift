// Cgroups: one per execution, with memory (no swap), pids and CPU limits and
// accounting. Two backends behind one interface, chosen once at start by
// CgroupDetection: CgroupV1 (legacy and hybrid hierarchies) and CgroupV2.
#if canImport(Glibc)
import Glibc
#endif
import CSandbox

/// What the runtime learned from a finished sandbox's cgroup.
struct CgroupStats: Sendable {
    var cpuMs: Int = 0
    var memoryPeakBytes: UInt64 = 0
    var oomKills: Int = 0
    var pidsLimitHits: Int = 0
}

/// One execution's cgroup: a directory per hierarchy (one on v2).
struct SandboxCgroup: Sendable {
    var name: String
    var directories: [String]
    /// The files the child writes "0" into to join.
    var procsFiles: [String] { directories.map { $0 + "/cgroup.procs" } }
}

/// The operations a cgroup backend offers; one implementation per layout.
protocol CgroupBackend: Sendable {
    var layout: CgroupLayout { get }
    /// Controllers limits can be set with, e.g. ["memory", "pids", "cpu", "cpuacct"].
    var usableControllers: [String] { get }
    func create(name: String, limits: SandboxLimits) throws(SyscallError) -> SandboxCgroup
    /// Changes a cgroup's memory, pids and CPU limits from `old` (what it has) to `new`, writing only what
    /// differs (a prepared sandbox's cgroup, set up with the default limits, before its command starts).
    func update(_ cgroup: SandboxCgroup, from old: SandboxLimits, to new: SandboxLimits) throws(SyscallError)
    func stats(_ cgroup: SandboxCgroup) -> CgroupStats
    /// The memory charged to the cgroup now, where the kernel can charge past the limit (v2: memory.current;
    /// nil elsewhere).
    func memoryOverLimitCharge(_ cgroup: SandboxCgroup) -> UInt64?
    /// SIGKILLs every process in the cgroup, until it is empty (bounded).
    func killAll(_ cgroup: SandboxCgroup)
    /// Removes the cgroup (retrying while the last processes exit).
    func remove(_ cgroup: SandboxCgroup) throws(SyscallError)
    /// Kills and removes every sandbox cgroup a previous run left behind.
    func removeLeftovers() -> Int
    /// Names of the sandbox cgroups that exist now.
    func liveSandboxes() -> [String]
    /// Removes this daemon's (empty) parent cgroup(s) on a clean stop; best effort, a non-empty parent stays.
    func releaseParent()
}

extension CgroupBackend {
    /// `pids.max` for a `pids` limit: the command's processes and threads, plus the sandbox's init, which the
    /// caller does not see (with `pids: 1` counting init, the command could not even start).
    static func pidsMax(_ pids: Int) -> Int { max(1, pids) + 1 }
}

/// Used when no cgroup filesystem is usable (and limits are not required).
struct NoCgroups: CgroupBackend {
    var layout: CgroupLayout
    var usableControllers: [String] { [] }
    func create(name: String, limits: SandboxLimits) throws(SyscallError) -> SandboxCgroup {
        SandboxCgroup(name: name, directories: [])
    }
    func update(_ cgroup: SandboxCgroup, from old: SandboxLimits, to new: SandboxLimits) throws(SyscallError) {}
    func stats(_ cgroup: SandboxCgroup) -> CgroupStats { CgroupStats() }
    func memoryOverLimitCharge(_ cgroup: SandboxCgroup) -> UInt64? { nil }
    func killAll(_ cgroup: SandboxCgroup) {}
    func remove(_ cgroup: SandboxCgroup) throws(SyscallError) {}
    func removeLeftovers() -> Int { 0 }
    func liveSandboxes() -> [String] { [] }
    func releaseParent() {}
}

/// One line of /proc/self/mountinfo that mounts a cgroup filesystem.
struct CgroupMount {
    var mountPoint: String
    var root: String
    var fsType: String
    var superOptions: [String]
}

enum CgroupDetection {
    static let mountRoot = "/sys/fs/cgroup"

    static func mounts(mountinfo: String) -> [CgroupMount] {
        var result: [CgroupMount] = []
        for line in mountinfo.split(separator: "\n") {
            // id parent major:minor root mountpoint options [optional...] - fstype source superoptions
            let halves = line.split(separator: " - ", maxSplits: 1)
            guard halves.count == 2 else { continue }
            let left = halves[0].split(separator: " ")
            let right = halves[1].split(separator: " ")
            guard left.count >= 5, right.count >= 3 else { continue }
            let fsType = String(right[0])
            guard fsType == "cgroup" || fsType == "cgroup2" else { continue }
            result.append(
                CgroupMount(
                    mountPoint: unescape(String(left[4])),
                    root: unescape(String(left[3])),
                    fsType: fsType,
                    superOptions: right[2].split(separator: ",").map(String.init)
                )
            )
        }
        return result
    }

    /// Parses /proc/self/cgroup into controller -> path ("" key for v2).
    static func ownPaths(procSelfCgroup: String) -> [String: String] {
        var result: [String: String] = [:]
        for line in procSelfCgroup.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count == 3 else { continue }
            let path = String(parts[2])
            if parts[1].isEmpty {
                result[""] = path
            } else {
                for controller in parts[1].split(separator: ",") { result[String(controller)] = path }
            }
        }
        return result
    }

    static func unescape(_ s: String) -> String {
        // mountinfo escapes space, tab, newline and backslash as \ooo.
        guard s.contains("\\") else { return s }
        var bytes: [UInt8] = []
        var it = Array(s.utf8)[...]
        while let c = it.popFirst() {
            if c == UInt8(ascii: "\\"), it.count >= 3,
                let v = UInt8(String(decoding: it.prefix(3), as: UTF8.self), radix: 8)
            {
                bytes.append(v)
                it = it.dropFirst(3)
            } else {
                bytes.append(c)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Picks and initialises the backend. Never throws: problems are logged
    /// by the caller through `notes`, and the layout degrades to `none`.
    static func detect(
        sandboxParentName: String,
        override: String?,
        notes: inout [String]
    ) -> any CgroupBackend {
        let mountinfo = (try? Posix.readText("/proc/self/mountinfo")) ?? ""
        let procSelf = (try? Posix.readText("/proc/self/cgroup")) ?? ""
        let all = mounts(mountinfo: mountinfo)
        let own = ownPaths(procSelfCgroup: procSelf)
        let v1 = all.filter { $0.fsType == "cgroup" }
        let v2 = all.filter { $0.fsType == "cgroup2" }
        if let unified = v2.first(where: { $0.mountPoint == mountRoot }), v1.isEmpty {
            do {
                return try CgroupV2(mount: unified, ownPath: own[""] ?? "/", override: override)
            } catch {
                notes.append("cgroup v2: \(error)")
                return NoCgroups(layout: .v2)
            }
        }
        if !v1.isEmpty {
            let layout: CgroupLayout = v2.isEmpty ? .v1 : .hybrid
            return CgroupV1(
                layout: layout,
                mounts: v1,
                ownPaths: own,
                parentName: sandboxParentName,
                override: override,
                notes: &notes
            )
        }
        notes.append("no cgroup filesystem mounted")
        return NoCgroups(layout: .none)
    }
}

/// Shared by both backends.
enum CgroupFiles {
    static func pids(in directory: String) -> [pid_t] {
        guard let text = try? Posix.readText(directory + "/cgroup.procs") else { return [] }
        return text.split(separator: "\n").compactMap { pid_t($0) }
    }

    /// Value of `key` in a "key value" per-line file (memory.events, pids.events...).
    static func keyed(_ path: String, _ key: String) -> Int? {
        guard let text = try? Posix.readText(path) else { return nil }
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ")
            if parts.count == 2, parts[0] == key { return Int(parts[1]) }
        }
        return nil
    }

    static func number(_ path: String) -> UInt64? {
        guard let text = try? Posix.readText(path) else { return nil }
        return UInt64(text.trimmingCharacters(in: " \n"))
    }

    static func killLoop(_ directories: [String]) {
        // Everything in a sandbox cgroup is in its PID namespace too, so the
        // SIGKILL to init has usually done this already; this catches the rest.
        for attempt in 0..<200 {
            var found = false
            for dir in directories where killMembers(of: dir) > 0 { found = true }
            if !found { return }
            Posix.sleepMs(attempt < 20 ? 1 : 5)
        }
    }

    /// SIGKILLs every process listed in `directory`'s cgroup.procs; returns how many were listed.
    ///
    /// Never by number: a listed process may exit and its pid go to an unrelated host process before
    /// the signal (the daemon is root; that one would die). Each pid is pinned with a pidfd first, then
    /// the list is read again: a pid still listed after its pidfd was opened is held by a member, and
    /// the pidfd is that member (or a process already gone, which the signal cannot reach).
    /// `firstListing` stands in for the first read of cgroup.procs (tests: a pid that left, or was
    /// never a member, between the two reads).
    @discardableResult
    static func killMembers(of directory: String, firstListing: [pid_t]? = nil) -> Int {
        let listed = (firstListing ?? pids(in: directory)).filter { $0 > 0 }
        guard !listed.isEmpty else { return 0 }
        var pinned: [(pid: pid_t, fd: Int32)] = []
        for pid in listed {
            let fd = cs_pidfd_open(pid)
            if fd >= 0 { pinned.append((pid, fd)) }
        }
        let members = Set(pids(in: directory))
        for (pid, fd) in pinned {
            if members.contains(pid) { _ = cs_pidfd_send_signal(fd, SIGKILL) }
            close(fd)
        }
        return listed.count
    }

    static func removeDirectory(_ directory: String) throws(SyscallError) {
        // rmdir fails with EBUSY until the last task has left; tasks leave
        // when they are reaped by init's exit, which is asynchronous.
        for attempt in 0..<400 {
            if rmdir(directory) == 0 || errno == ENOENT { return }
            let e = errno
            if e != EBUSY { throw SyscallError(call: "rmdir", path: directory, errno: e) }
            if attempt % 50 == 49 { killMembers(of: directory) }
            Posix.sleepMs(attempt < 20 ? 1 : 5)
        }
        throw SyscallError(call: "rmdir", path: directory, errno: EBUSY)
    }
}

extension String {
    func trimmingCharacters(in set: String) -> String {
        let chars = Set(set)
        var s = Substring(self)
        while let f = s.first, chars.contains(f) { s = s.dropFirst() }
        while let l = s.last, chars.contains(l) { s = s.dropLast() }
        return String(s)
    }
}
