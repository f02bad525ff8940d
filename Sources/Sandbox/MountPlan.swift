// MountPlan: the sandbox's filesystem, as an ordered list of operations the
// child executes (Sources/CSandbox/mount.c) before pivot_root. The order is
// the design; each group says why it sits where it does.
#if canImport(Glibc)
import Glibc
#endif
import CSandbox

struct MountOp: Sendable {
    var kind: cs_mount_kind
    var create: cs_mount_create = CS_CREATE_NONE
    var flags: UInt64 = 0
    var mode: UInt32 = 0
    var source: String? = nil
    var target: String
    var data: String? = nil
    /// The path as the sandbox sees it, for failure messages.
    var insidePath: String
}

enum MountFlags {
    static let readOnly: UInt64 = 1  // MS_RDONLY
    static let noSUID: UInt64 = 2  // MS_NOSUID
    static let noDev: UInt64 = 4  // MS_NODEV
    static let noExec: UInt64 = 8  // MS_NOEXEC
    static let recursive: UInt64 = 16384  // MS_REC
}

/// What the runtime learned about the host once, at start.
struct HostLayout: Sendable {
    enum RootEntry: Sendable {
        case symlink(String)
        case directory
    }
    enum HostRootEntry: Sendable {
        case symlink(String)
        case directory
        case file
    }
    /// Top-level /bin, /sbin, /lib* entries: merged-/usr links or real dirs.
    var rootEntries: [(name: String, entry: RootEntry)]
    /// Every entry of the host's "/", for mode trusted.
    var hostRoot: [(name: String, entry: HostRootEntry)]
    var procNullMasks: [String]
    var procTmpfsMasks: [String]
    var procReadOnly: [String]
    /// The minimal /dev: name and device number of each host node present.
    var devices: [(name: String, rdev: UInt64)]

    static func probe() -> HostLayout {
        var entries: [(String, RootEntry)] = []
        for name in ["bin", "sbin", "lib", "lib64", "lib32", "libx32"] {
            switch Posix.fileType("/" + name) {
            case S_IFLNK?: if let target = Posix.readLink("/" + name) { entries.append((name, .symlink(target))) }
            case S_IFDIR?: entries.append((name, .directory))
            default: break
            }
        }
        // Present on this kernel? The sandbox's /proc is the same kernel's.
        // cmdline: the host's boot command line (a VM's may name its control ports).
        let nullMasks = ["kcore", "sysrq-trigger", "timer_list", "keys", "latency_stats", "sched_debug", "kallsyms",
                         "config.gz", "kmsg", "softirqs", "cmdline"]
            .filter { Posix.exists("/proc/" + $0) }
        let tmpfsMasks = ["acpi", "scsi", "asound", "driver", "pressure"].filter { Posix.fileType("/proc/" + $0) == S_IFDIR }
        let readOnly = ["sys", "irq", "bus", "fs"].filter { Posix.fileType("/proc/" + $0) == S_IFDIR }
        let devices = ["null", "zero", "full", "random", "urandom", "tty"].compactMap { name -> (String, UInt64)? in
            var st = stat()
            guard stat("/dev/" + name, &st) == 0, st.st_mode & S_IFMT == S_IFCHR else { return nil }
            return (name, UInt64(st.st_rdev))
        }
        var hostRoot: [(String, HostRootEntry)] = []
        for name in Posix.directoryEntries("/").sorted() {
            switch Posix.fileType("/" + name) {
            case S_IFLNK?: if let target = Posix.readLink("/" + name) { hostRoot.append((name, .symlink(target))) }
            case S_IFDIR?: hostRoot.append((name, .directory))
            case S_IFREG?: hostRoot.append((name, .file))
            default: break
            }
        }
        return HostLayout(
            rootEntries: entries,
            hostRoot: hostRoot,
            procNullMasks: nullMasks,
            procTmpfsMasks: tmpfsMasks,
            procReadOnly: readOnly,
            devices: devices
        )
    }
}


enum MountPlan {
    static func build(
        root: String,
        etcSkeleton: String,
        host: HostLayout,
        hostUID: UInt32,
        hostGID: UInt32,
        limits: SandboxLimits,
        mode: IsolationMode
    ) -> [MountOp] {
        let ro = MountFlags.readOnly | MountFlags.noSUID | MountFlags.noDev
        let hardened = MountFlags.noSUID | MountFlags.noDev | MountFlags.noExec
        var ops: [MountOp] = []
        func at(_ inside: String) -> String { root + inside }

        // 1. The new root: a small tmpfs holding only mount points and links,
        //    so nothing of the host's root directory is reachable.
        ops.append(MountOp(kind: CS_MOUNT_TMPFS, flags: MountFlags.noSUID | MountFlags.noDev,
                           target: root, data: "mode=0755,size=1m,nr_inodes=4096", insidePath: "/"))

        if mode == .trusted {
            // 2t. Trusted: the host's whole tree, every submount included,
            //     read-only, nosuid, nodev (mount_setattr, recursive) — except
            //     what the sandbox gets fresh below.
            let own: Set<String> = ["proc", "dev", "tmp", "workspace"]
            for (name, entry) in host.hostRoot where !own.contains(name) {
                switch entry {
                case .symlink(let target):
                    ops.append(MountOp(kind: CS_MOUNT_SYMLINK, source: target, target: at("/" + name), insidePath: "/" + name))
                case .directory:
                    ops.append(MountOp(kind: CS_MOUNT_RBIND, create: CS_CREATE_DIR, flags: ro,
                                       source: "/" + name, target: at("/" + name), insidePath: "/" + name))
                case .file:
                    ops.append(MountOp(kind: CS_MOUNT_BIND, create: CS_CREATE_FILE, flags: ro,
                                       source: "/" + name, target: at("/" + name), insidePath: "/" + name))
                }
            }
        } else {
            // 2. Programs: /usr read-only, and /bin, /lib… as the host has them.
            //    Non-recursive: submounts under /usr stay hidden, not writable.
            ops.append(MountOp(kind: CS_MOUNT_BIND, create: CS_CREATE_DIR, flags: ro,
                               source: "/usr", target: at("/usr"), insidePath: "/usr"))
            for (name, entry) in host.rootEntries {
                switch entry {
                case .symlink(let target):
                    ops.append(MountOp(kind: CS_MOUNT_SYMLINK, source: target, target: at("/" + name), insidePath: "/" + name))
                case .directory:
                    ops.append(MountOp(kind: CS_MOUNT_BIND, create: CS_CREATE_DIR, flags: ro,
                                       source: "/" + name, target: at("/" + name), insidePath: "/" + name))
                }
            }

            // 3. /etc: the skeleton prepared at runtime start, read-only.
            ops.append(MountOp(kind: CS_MOUNT_BIND, create: CS_CREATE_DIR, flags: ro,
                               source: etcSkeleton, target: at("/etc"), insidePath: "/etc"))
        }

        // 4. A fresh /proc of the sandbox's PID namespace (the child is its
        //    PID 1), then the sensitive parts masked or made read-only —
        //    after the proc mount, which they sit on.
        ops.append(MountOp(kind: CS_MOUNT_MKDIR, mode: 0o555, target: at("/proc"), insidePath: "/proc"))
        ops.append(MountOp(kind: CS_MOUNT_PROC, flags: hardened, target: at("/proc"), insidePath: "/proc"))
        // The first mask of each kind is made (read-only); the others are binds of it, which copy its
        // flags — one remount and one tmpfs in all instead of one per path.
        for (i, name) in host.procNullMasks.enumerated() {
            let first = at("/proc/" + host.procNullMasks[0])
            ops.append(MountOp(kind: CS_MOUNT_BIND, flags: i == 0 ? ro | MountFlags.noExec : 0,
                               source: i == 0 ? "/dev/null" : first, target: at("/proc/" + name),
                               insidePath: "/proc/" + name))
        }
        for (i, name) in host.procTmpfsMasks.enumerated() {
            if i == 0 {
                ops.append(MountOp(kind: CS_MOUNT_TMPFS, flags: ro | MountFlags.noExec, target: at("/proc/" + name),
                                   data: "mode=0555,size=4k,nr_inodes=1", insidePath: "/proc/" + name))
            } else {
                ops.append(MountOp(kind: CS_MOUNT_BIND, source: at("/proc/" + host.procTmpfsMasks[0]),
                                   target: at("/proc/" + name), insidePath: "/proc/" + name))
            }
        }
        for name in host.procReadOnly {
            ops.append(MountOp(kind: CS_MOUNT_BIND, flags: ro | MountFlags.noExec, source: at("/proc/" + name),
                               target: at("/proc/" + name), insidePath: "/proc/" + name))
        }

        // 5. A minimal /dev: the host's device numbers, made with mknod while
        //    the child is still host root (the tmpfs is not nodev; the
        //    sandbox cannot mknod: no capability, and seccomp), the usual
        //    links, a small /dev/shm; then /dev itself read-only.
        ops.append(MountOp(kind: CS_MOUNT_MKDIR, mode: 0o755, target: at("/dev"), insidePath: "/dev"))
        ops.append(MountOp(kind: CS_MOUNT_TMPFS, flags: MountFlags.noSUID | MountFlags.noExec, target: at("/dev"),
                           data: "mode=0755,size=64k,nr_inodes=64", insidePath: "/dev"))
        for (name, rdev) in host.devices {
            ops.append(MountOp(kind: CS_MOUNT_MKNOD, flags: rdev, mode: 0o666, target: at("/dev/" + name),
                               insidePath: "/dev/" + name))
        }
        for (name, target) in [("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
                               ("stderr", "/proc/self/fd/2")] {
            ops.append(MountOp(kind: CS_MOUNT_SYMLINK, source: target, target: at("/dev/" + name), insidePath: "/dev/" + name))
        }
        let shmBytes = min(limits.tmpBytes, 64 << 20)
        ops.append(MountOp(kind: CS_MOUNT_MKDIR, mode: 0o755, target: at("/dev/shm"), insidePath: "/dev/shm"))
        ops.append(MountOp(kind: CS_MOUNT_TMPFS, flags: hardened, target: at("/dev/shm"),
                           data: "mode=1777,size=\(max(4096, shmBytes))", insidePath: "/dev/shm"))
        ops.append(MountOp(kind: CS_MOUNT_REMOUNT, flags: MountFlags.readOnly | MountFlags.noSUID | MountFlags.noExec,
                           target: at("/dev"), insidePath: "/dev"))

        // 6. Writable scratch: /tmp and /workspace, size-limited tmpfs owned
        //    by the sandbox user; gone with the mount namespace.
        let tmpBytes = max(4096, limits.tmpBytes)
        let owner = "uid=\(hostUID),gid=\(hostGID)"
        ops.append(MountOp(kind: CS_MOUNT_MKDIR, mode: 0o755, target: at("/tmp"), insidePath: "/tmp"))
        ops.append(MountOp(kind: CS_MOUNT_TMPFS, flags: MountFlags.noSUID | MountFlags.noDev, target: at("/tmp"),
                           data: "mode=1777,size=\(tmpBytes),\(owner)", insidePath: "/tmp"))
        ops.append(MountOp(kind: CS_MOUNT_MKDIR, mode: 0o755, target: at("/workspace"), insidePath: "/workspace"))
        ops.append(MountOp(kind: CS_MOUNT_TMPFS, flags: MountFlags.noSUID | MountFlags.noDev, target: at("/workspace"),
                           data: "mode=0755,size=\(tmpBytes),\(owner)", insidePath: "/workspace"))
        if mode == .readOnly {
            ops.append(MountOp(kind: CS_MOUNT_REMOUNT, flags: ro, target: at("/workspace"), insidePath: "/workspace"))
        }

        // 7. Last: the root itself read-only — no new top-level entries.
        ops.append(MountOp(kind: CS_MOUNT_REMOUNT, flags: ro, target: root, insidePath: "/"))
        return ops
    }
}
