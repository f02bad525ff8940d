// EtcSkeleton: the sandbox's /etc, prepared once at runtime start and bound
// read-only into every sandbox. It holds only what programs read: a passwd and
// group naming the sandbox user, hosts, resolv.conf, ld.so.cache, nsswitch.conf,
// localtime, protocols/services, ssl certificates (never ssl/private) and the
// alternatives symlinks. Nothing else of the host's /etc is visible.
#if canImport(Glibc)
import Glibc
#endif

enum EtcSkeleton {
    static func build(at dir: String, insideUID: UInt32, hostname: String, hostEtc: String = "/etc") throws(SyscallError) {
        Posix.removeTree(dir)
        try Posix.makeDirectory(dir, mode: 0o755)
        let uid = insideUID
        try Posix.createFile(
            dir + "/passwd",
            contents: Array(
                """
                sandbox:x:\(uid):\(uid):sandbox:/workspace:/bin/sh
                nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin

                """.utf8
            )
        )
        try Posix.createFile(
            dir + "/group",
            contents: Array("sandbox:x:\(uid):\nnogroup:x:65534:\n".utf8)
        )
        // Generated, not copied: the host's names and addresses stay out.
        try Posix.createFile(
            dir + "/hosts",
            contents: Array(
                """
                127.0.0.1\tlocalhost \(hostname)
                ::1\tlocalhost ip6-localhost ip6-loopback \(hostname)

                """.utf8
            )
        )
        try Posix.createFile(dir + "/hostname", contents: Array("\(hostname)\n".utf8))
        // Copied with symlinks resolved (resolv.conf is often a link into /run).
        for name in ["resolv.conf", "ld.so.cache", "nsswitch.conf", "protocols", "services", "host.conf", "gai.conf"] {
            if let bytes = try? Posix.readFile(hostEtc + "/" + name, limit: 16 << 20) {
                try Posix.createFile(dir + "/" + name, contents: bytes)
            }
        }
        // localtime: keep the link into /usr/share/zoneinfo (visible inside).
        if let target = Posix.readLink(hostEtc + "/localtime") {
            symlink(target, dir + "/localtime")
        } else if let bytes = try? Posix.readFile(hostEtc + "/localtime") {
            try Posix.createFile(dir + "/localtime", contents: bytes)
        }
        if Posix.fileType(hostEtc + "/ssl") == S_IFDIR {
            try Posix.makeDirectory(dir + "/ssl")
            try copyTree(hostEtc + "/ssl/certs", dir + "/ssl/certs")
            try copyTree(hostEtc + "/ssl/openssl.cnf", dir + "/ssl/openssl.cnf")
        }
        try copyTree(hostEtc + "/ca-certificates.conf", dir + "/ca-certificates.conf")
        try copyTree(hostEtc + "/alternatives", dir + "/alternatives")
    }

    /// Copies regular files, directories and symlinks (as links); skips the rest.
    static func copyTree(_ source: String, _ destination: String, depth: Int = 0) throws(SyscallError) {
        guard depth < 8, let type = Posix.fileType(source) else { return }
        switch type {
        case S_IFLNK:
            if let target = Posix.readLink(source) { symlink(target, destination) }
        case S_IFREG:
            if let bytes = try? Posix.readFile(source, limit: 16 << 20) {
                try Posix.createFile(destination, contents: bytes)
            }
        case S_IFDIR:
            try Posix.makeDirectory(destination)
            for name in Posix.directoryEntries(source) {
                try copyTree(source + "/" + name, destination + "/" + name, depth: depth + 1)
            }
        default:
            return
        }
    }
}
