// CgroupV2: the unified hierarchy, as systemd delegates it (Delegate=yes).
// The daemon's own cgroup becomes an inner node: the daemon moves into the
// leaf <own>/daemon (no-internal-processes rule), controllers are enabled in
// <own>/cgroup.subtree_control, and sandboxes live at <own>/sandboxes/<id>.
#if canImport(Glibc)
import Glibc
#endif

struct CgroupV2: CgroupBackend {
    var layout: CgroupLayout { .v2 }
    let usableControllers: [String]
    private let parent: String
    private let hasSwapMax: Bool
    private let hasPeak: Bool
    private let hasKill: Bool

    static let wanted = ["memory", "pids", "cpu"]

    init(mount: CgroupMount, ownPath: String, override: String?) throws(SyscallError) {
        let root = mount.mountPoint
        let parent: String
        if let override {
            parent = normalize(root + "/" + override)
            try Posix.makeDirectories(parent)
            // Enable the controllers on the way down, best effort: an
            // administrator-provided path may already be set up.
            var path = root
            for component in override.split(separator: "/") {
                Self.enable(in: path)
                path += "/" + component
            }
            Self.enable(in: parent)
        } else {
            let own = normalize(root + "/" + ownPath)
            // Leave the inner node: every process of our cgroup moves to a leaf.
            let leaf = own + "/daemon"
            try Posix.makeDirectory(leaf)
            for pid in CgroupFiles.pids(in: own) {
                do { try Posix.writeFile(leaf + "/cgroup.procs", String(pid)) } catch where error.errno == ESRCH {}
            }
            try Self.enableOrThrow(in: own)
            parent = own + "/sandboxes"
            try Posix.makeDirectory(parent)
            try Self.enableOrThrow(in: parent)
        }
        self.parent = parent
        let enabled = ((try? Posix.readText(parent + "/cgroup.subtree_control")) ?? "").split(separator: " ").map {
            String($0).trimmingCharacters(in: "\n")
        }
        self.usableControllers = Self.wanted.filter { enabled.contains($0) }
        self.hasSwapMax = Posix.exists(parent + "/memory.swap.max") || Self.probeFile(parent, "memory.swap.max")
        self.hasPeak = Self.probeFile(parent, "memory.peak")
        self.hasKill = Self.probeFile(parent, "cgroup.kill")
    }

    /// Whether a child cgroup would have `file` (checked on a throwaway child).
    private static func probeFile(_ parent: String, _ file: String) -> Bool {
        let probe = parent + "/.probe-\(getpid())"
        guard mkdir(probe, 0o755) == 0 || errno == EEXIST else { return false }
        defer { rmdir(probe) }
        return Posix.exists(probe + "/" + file)
    }

    private static func available(in dir: String) -> [String] {
        let text = (try? Posix.readText(dir + "/cgroup.controllers")) ?? ""
        return text.split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init).filter { wanted.contains($0) }
    }

    @discardableResult
    private static func enable(in dir: String) -> Bool {
        (try? enableOrThrow(in: dir)) != nil
    }

    private static func enableOrThrow(in dir: String) throws(SyscallError) {
        let controllers = available(in: dir)
        guard !controllers.isEmpty else { return }
        try Posix.writeFile(dir + "/cgroup.subtree_control", controllers.map { "+" + $0 }.joined(separator: " "))
    }

    func create(name: String, limits: SandboxLimits) throws(SyscallError) -> SandboxCgroup {
        let dir = parent + "/" + name
        if mkdir(dir, 0o755) < 0 { throw SyscallError(call: "mkdir", path: dir, errno: errno) }
        do throws(SyscallError) {
            if usableControllers.contains("memory") {
                if hasSwapMax { try Posix.writeFile(dir + "/memory.swap.max", "0") }
                // One OOM kill takes the whole sandbox: a clean `oom` outcome.
                try? Posix.writeFile(dir + "/memory.oom.group", "1")
            }
            try write(dir, limits, previous: nil)
        } catch {
            rmdir(dir)
            throw error
        }
        return SandboxCgroup(name: name, directories: [dir])
    }

    func update(_ cgroup: SandboxCgroup, from old: SandboxLimits, to new: SandboxLimits) throws(SyscallError) {
        guard let dir = cgroup.directories.first else { return }
        try write(dir, new, previous: old)
    }

    /// Writes the limits that differ from `previous` (all of them for a new cgroup).
    private func write(_ dir: String, _ limits: SandboxLimits, previous: SandboxLimits?) throws(SyscallError) {
        if usableControllers.contains("memory"), limits.memoryBytes != previous?.memoryBytes {
            try Posix.writeFile(dir + "/memory.max", String(limits.memoryBytes))
        }
        if usableControllers.contains("pids"), limits.pids != previous?.pids {
            try Posix.writeFile(dir + "/pids.max", String(Self.pidsMax(limits.pids)))
        }
        if usableControllers.contains("cpu"), limits.cpuMillicores != previous?.cpuMillicores,
            limits.cpuMillicores > 0 || previous != nil
        {
            let quota = limits.cpuMillicores > 0 ? String(max(1000, limits.cpuMillicores * 100)) : "max"
            try Posix.writeFile(dir + "/cpu.max", "\(quota) 100000")
        }
    }

    /// The kernel charges what it cannot refuse past memory.max without an OOM kill — socket buffers filled
    /// while packets are delivered (atomic charges): 400 unread UDP sockets held 150 MB under 32M.
    func memoryOverLimitCharge(_ cgroup: SandboxCgroup) -> UInt64? {
        guard let dir = cgroup.directories.first else { return nil }
        return CgroupFiles.number(dir + "/memory.current")
    }

    func stats(_ cgroup: SandboxCgroup) -> CgroupStats {
        guard let dir = cgroup.directories.first else { return CgroupStats() }
        var stats = CgroupStats()
        if let usec = CgroupFiles.keyed(dir + "/cpu.stat", "usage_usec") { stats.cpuMs = usec / 1000 }
        if hasPeak, let peak = CgroupFiles.number(dir + "/memory.peak") {
            stats.memoryPeakBytes = peak
        } else {
            // Pre-5.19 kernels: the current usage is the best we have.
            stats.memoryPeakBytes = CgroupFiles.number(dir + "/memory.current") ?? 0
        }
        stats.oomKills = CgroupFiles.keyed(dir + "/memory.events", "oom_kill") ?? 0
        stats.pidsLimitHits = CgroupFiles.keyed(dir + "/pids.events", "max") ?? 0
        return stats
    }

    func killAll(_ cgroup: SandboxCgroup) {
        guard let dir = cgroup.directories.first else { return }
        if hasKill { try? Posix.writeFile(dir + "/cgroup.kill", "1") }
        CgroupFiles.killLoop([dir])
    }

    func remove(_ cgroup: SandboxCgroup) throws(SyscallError) {
        for dir in cgroup.directories { try CgroupFiles.removeDirectory(dir) }
    }

    func releaseParent() {
        rmdir(parent)
    }

    func liveSandboxes() -> [String] {
        Posix.directoryEntries(parent).filter { Posix.fileType(parent + "/" + $0) == S_IFDIR }.sorted()
    }

    func removeLeftovers() -> Int {
        var count = 0
        for name in Posix.directoryEntries(parent) where Posix.fileType(parent + "/" + name) == S_IFDIR {
            let cgroup = SandboxCgroup(name: name, directories: [parent + "/" + name])
            killAll(cgroup)
            try? remove(cgroup)
            count += 1
        }
        return count
    }
}
