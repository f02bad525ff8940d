// Small POSIX helpers for the parent side: file reads and writes that report
// the call and its object, errno text, a monotonic clock.
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

func errnoString(_ code: Int32) -> String {
    String(cString: strerror(code))
}

/// A failed syscall on a path: "open `/sys/fs/cgroup/…/memory.max`: Permission denied".
struct SyscallError: Error, CustomStringConvertible {
    var call: String
    var path: String
    var errno: Int32
    var description: String { "\(call) `\(path)`: \(errnoString(errno))" }
}

enum Posix {
    static func readFile(_ path: String, limit: Int = 1 << 20) throws(SyscallError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw SyscallError(call: "open", path: path, errno: errno) }
        defer { close(fd) }
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16384)
        while out.count < limit {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw SyscallError(call: "read", path: path, errno: errno)
            }
            if n == 0 { break }
            out.append(contentsOf: buffer[0..<n])
        }
        return out
    }

    static func readText(_ path: String) throws(SyscallError) -> String {
        String(decoding: try readFile(path), as: UTF8.self)
    }

    static func writeFile(_ path: String, _ text: String) throws(SyscallError) {
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        if fd < 0 { throw SyscallError(call: "open", path: path, errno: errno) }
        defer { close(fd) }
        var bytes = Array(text.utf8)
        if bytes.isEmpty { bytes = [0x0a] }
        let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        if n < 0 { throw SyscallError(call: "write", path: path, errno: errno) }
    }

    /// Creates a file with exactly these contents and mode (replacing one).
    static func createFile(_ path: String, contents: [UInt8], mode: mode_t = 0o644) throws(SyscallError) {
        unlink(path)
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode)
        if fd < 0 { throw SyscallError(call: "open", path: path, errno: errno) }
        defer { close(fd) }
        var offset = 0
        while offset < contents.count {
            let n = contents.withUnsafeBytes { write(fd, $0.baseAddress! + offset, $0.count - offset) }
            if n < 0 {
                if errno == EINTR { continue }
                throw SyscallError(call: "write", path: path, errno: errno)
            }
            offset += n
        }
        fchmod(fd, mode)
    }

    static func makeDirectory(_ path: String, mode: mode_t = 0o755) throws(SyscallError) {
        if mkdir(path, mode) < 0 && errno != EEXIST {
            throw SyscallError(call: "mkdir", path: path, errno: errno)
        }
    }

    /// mkdir -p.
    static func makeDirectories(_ path: String, mode: mode_t = 0o755) throws(SyscallError) {
        var current = ""
        for component in path.split(separator: "/") {
            current += "/" + component
            try makeDirectory(current, mode: mode)
        }
    }

    static func exists(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0
    }

    static func fileType(_ path: String) -> mode_t? {
        var st = stat()
        guard lstat(path, &st) == 0 else { return nil }
        return st.st_mode & S_IFMT
    }

    static func readLink(_ path: String) -> String? {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlink(path, &buffer, buffer.count - 1)
        guard n >= 0 else { return nil }
        return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    static func directoryEntries(_ path: String) -> [String] {
        guard let dir = opendir(path) else { return [] }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// rm -rf without following symlinks; stays on one filesystem level.
    static func removeTree(_ path: String) {
        guard let type = fileType(path) else { return }
        if type == S_IFDIR {
            for name in directoryEntries(path) { removeTree(path + "/" + name) }
            rmdir(path)
        } else {
            unlink(path)
        }
    }

    /// Milliseconds on CLOCK_MONOTONIC.
    static func monotonicMs() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }

    static func monotonicNs() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    static func sleepMs(_ ms: Int) {
        var request = timespec(tv_sec: ms / 1000, tv_nsec: (ms % 1000) * 1_000_000)
        var remaining = timespec()
        while nanosleep(&request, &remaining) < 0 && errno == EINTR { request = remaining }
    }
}
