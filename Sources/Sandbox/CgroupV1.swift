// CgroupV1: the legacy layout, one hierarchy per controller (memory, pids,
// cpu, cpuacct; cpu and cpuacct may share one). Used for `v1` and `hybrid`.
// Sandboxes live at <hierarchy>/<daemon's own path>/<parent name>/<id> in
// every hierarchy, so they are nested under (and charged to) the daemon.
#if canImport(Glibc)
import Glibc
#endif

struct CgroupV1: CgroupBackend {
    let layout: CgroupLayout
    /// controller -> directory holding the sandbox cgroups.
    private let parents: [String: String]
    let usableControllers: [String]
    private let hasMemsw: Bool
    /// v1 charges socket buffers to a memory cgroup only once this limit is set (then every socket's, TCP and
    /// UDP, to this counter).
    private let hasTCPKmem: Bool

    init(
        layout: CgroupLayout,
        mounts: [CgroupMount],
        ownPaths: [String: String],
        parentName: String,
        override: String?,
        notes: inout [String]
    ) {
        self.layout = layout
        var parents: [String: String] = [:]
        for controller in ["memory", "pids", "cpu", "cpuacct"] {
            guard let mount = mounts.first(where: { $0.superOptions.contains(controller) }) else {
                notes.append("cgroup v1: controller \(controller) is not mounted")
                continue
            }
            let base: String
            if let override {
                base = override
            } else {
                var own = ownPaths[controller] ?? "/"
                // A bind-mounted sub-hierarchy: paths are relative to its root.
                if mount.root != "/", own.hasPrefix(mount.root) { own = String(own.dropFirst(mount.root.count)) }
                base = own + "/" + parentName
            }
            let dir = normalize(mount.mountPoint + "/" + base)
            do {
                try Posix.makeDirectories(dir)
                parents[controller] = dir
            } catch {
                notes.append("cgroup v1 \(controller): \(error)")
            }
        }
        self.parents = parents
        self.usableControllers = ["memory", "pids", "cpu", "cpuacct"].filter { parents[$0] != nil }
        self.hasMemsw = parents["memory"].map { Posix.exists($0 + "/memory.memsw.limit_in_bytes") } ?? false
        self.hasTCPKmem = parents["memory"].map { Posix.exists($0 + "/memory.kmem.tcp.limit_in_bytes") } ?? false
    }

    /// Distinct hierarchy directories (cpu and cpuacct may be one).
    private var hierarchyParents: [String] {
        var seen = Set<String>()
        return ["memory", "pids", "cpu", "cpuacct"].compactMap { parents[$0] }.filter { seen.insert($0).inserted }
    }

    func releaseParent() {
        for dir in hierarchyParents { rmdir(dir) }
    }

    func create(name: String, limits: SandboxLimits) throws(SyscallError) -> SandboxCgroup {
        let cgroup = SandboxCgroup(name: name, directories: hierarchyParents.map { $0 + "/" + name })
        do throws(SyscallError) {
            for dir in cgroup.directories {
                if mkdir(dir, 0o755) < 0 { throw SyscallError(call: "mkdir", path: dir, errno: errno) }
            }
            try write(cgroup, limits, previous: nil)
        } catch {
            for dir in cgroup.directories { rmdir(dir) }
            throw error
        }
        return cgroup
    }

    func update(_ cgroup: SandboxCgroup, from old: SandboxLimits, to new: SandboxLimits) throws(SyscallError) {
        try write(cgroup, new, previous: old)
    }

    /// Writes the limits that differ from `previous` (all of them for a new cgroup, whose defaults are
    /// "unlimited" and a 100 ms CPU period).
    private func write(_ cgroup: SandboxCgroup, _ limits: SandboxLimits, previous: SandboxLimits?) throws(SyscallError) {
        if let memory = directory(cgroup, "memory"), limits.memoryBytes != previous?.memoryBytes {
            let value = String(limits.memoryBytes)
            // memsw = memory: no swap at all. memsw may never be below memory, so it goes second when the
            // limit grows from "unlimited" or a smaller value, first when it shrinks.
            let shrinking = previous.map { limits.memoryBytes < $0.memoryBytes } ?? false
            if hasMemsw && shrinking {
                try Posix.writeFile(memory + "/memory.limit_in_bytes", value)
                try Posix.writeFile(memory + "/memory.memsw.limit_in_bytes", value)
            } else {
                if hasMemsw && previous != nil { try Posix.writeFile(memory + "/memory.memsw.limit_in_bytes", value) }
                try Posix.writeFile(memory + "/memory.limit_in_bytes", value)
                if hasMemsw && previous == nil { try Posix.writeFile(memory + "/memory.memsw.limit_in_bytes", value) }
            }
            // Socket buffers are kernel memory outside memory.limit_in_bytes on v1: unless this is set, a
            // sandbox queues data on loopback sockets up to the host's tcp_mem/udp_mem (gigabytes), whatever
            // its limit. Once set, the cgroup's sockets — TCP and UDP alike — are charged to this counter
            // and held to the same amount (beside the memory limit); v2 charges them to memory.max.
            if hasTCPKmem { try Posix.writeFile(memory + "/memory.kmem.tcp.limit_in_bytes", value) }
        }
        if let pids = directory(cgroup, "pids"), limits.pids != previous?.pids {
            try Posix.writeFile(pids + "/pids.max", String(Self.pidsMax(limits.pids)))
        }
        if let cpu = directory(cgroup, "cpu"), limits.cpuMillicores != previous?.cpuMillicores,
            limits.cpuMillicores > 0 || previous != nil
        {
            // Quota per 100 ms period (the default period); the kernel's minimum is 1 ms; -1 is unlimited.
            let quota = limits.cpuMillicores > 0 ? String(max(1000, limits.cpuMillicores * 100)) : "-1"
            try Posix.writeFile(cpu + "/cpu.cfs_quota_us", quota)
        }
    }

    private func directory(_ cgroup: SandboxCgroup, _ controller: String) -> String? {
        parents[controller].map { $0 + "/" + cgroup.name }
    }

    /// v1 never charges past memory.limit_in_bytes; socket buffers have their own counter, which refuses too.
    func memoryOverLimitCharge(_ cgroup: SandboxCgroup) -> UInt64? { nil }

    func stats(_ cgroup: SandboxCgroup) -> CgroupStats {
        var stats = CgroupStats()
        if let dir = directory(cgroup, "cpuacct"), let ns = CgroupFiles.number(dir + "/cpuacct.usage") {
            stats.cpuMs = Int(ns / 1_000_000)
        }
        if let dir = directory(cgroup, "memory") {
            stats.memoryPeakBytes = CgroupFiles.number(dir + "/memory.max_usage_in_bytes") ?? 0
            stats.oomKills = CgroupFiles.keyed(dir + "/memory.oom_control", "oom_kill") ?? 0
        }
        if let dir = directory(cgroup, "pids") {
            stats.pidsLimitHits = CgroupFiles.keyed(dir + "/pids.events", "max") ?? 0
        }
        return stats
    }

    func killAll(_ cgroup: SandboxCgroup) {
        CgroupFiles.killLoop(cgroup.directories)
    }

    func remove(_ cgroup: SandboxCgroup) throws(SyscallError) {
        var firstError: SyscallError?
        for dir in cgroup.directories {
            do { try CgroupFiles.removeDirectory(dir) } catch { firstError = firstError ?? error }
        }
        if let firstError { throw firstError }
    }

    func liveSandboxes() -> [String] {
        var names = Set<String>()
        for parent in hierarchyParents {
            for name in Posix.directoryEntries(parent) where Posix.fileType(parent + "/" + name) == S_IFDIR {
                names.insert(name)
            }
        }
        return names.sorted()
    }

    func removeLeftovers() -> Int {
        let names = liveSandboxes()
        for name in names {
            let cgroup = SandboxCgroup(name: name, directories: hierarchyParents.map { $0 + "/" + name })
            killAll(cgroup)
            try? remove(cgroup)
        }
        return names.count
    }
}

func normalize(_ path: String) -> String {
    "/" + path.split(separator: "/").joined(separator: "/")
}
