import Foundation
import Testing

@testable import Sandbox

/// Each test names an attack and checks the defence holds from inside a
/// sandbox. The daemon-level escape suite repeats these through toold; these
/// keep the runtime honest on its own.
@Suite("Isolation")
struct IsolationTests {
    static let hasPython = FileManager.default.isExecutableFile(atPath: "/usr/bin/python3")
    static let hasGCC = FileManager.default.isExecutableFile(atPath: "/usr/bin/gcc")

    @Test func runsAsTheSandboxUserNeverHostRoot() async {
        let o = await run(sh("id -u; id -g; grep -E '^(Uid|Gid|Groups):' /proc/self/status; cat /proc/self/uid_map"))
        let hostUID = TestRuntime.shared.core.hostUID
        let lines = o.out.split(separator: "\n").map { $0.split(whereSeparator: { $0 == " " || $0 == "\t" }).joined(separator: " ") }
        #expect(lines == ["1000", "1000", "Uid: 1000 1000 1000 1000", "Gid: 1000 1000 1000 1000", "Groups:",
                          "1000 \(hostUID) 1"])
    }

    @Test func hasNoCapabilitiesNoNewPrivsAndSeccomp() async {
        let o = await run(sh("grep -E '^(Cap|NoNewPrivs|Seccomp:)' /proc/self/status"))
        let fields = Dictionary(uniqueKeysWithValues: o.out.split(separator: "\n").map { line -> (String, String) in
            let parts = line.split(separator: ":", maxSplits: 1)
            return (String(parts[0]), parts[1].trimmingCharacters(in: .whitespaces))
        })
        for cap in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] { #expect(fields[cap] == "0000000000000000", "\(cap)") }
        #expect(fields["NoNewPrivs"] == "1")
        #expect(fields["Seccomp"] == "2")
    }

    @Test func seesItsOwnHostnameAndPidNamespace() async {
        let o = await run(sh("hostname; echo $$; ls /proc | grep -cE '^[0-9]+$'"))
        let lines = o.out.split(separator: "\n").map(String.init)
        #expect(lines.first == "sandbox")
        #expect(lines.dropFirst().first == "2")  // init is 1, the command 2
        #expect((Int(lines.last ?? "") ?? 99) <= 4)
    }

    @Test func hostFilesAreInvisible() async {
        let state = TestRuntime.stateDirectory
        let o = await run(sh("for p in /home /root /var /run /etc/shadow /boot /sys /.dockerenv \(state); do [ -e $p ] && echo visible $p; done; ls /etc | tr '\\n' ' '"))
        #expect(!o.out.contains("visible"), "\(o.out)")
        #expect(!o.out.contains("shadow"))
    }

    @Test func readOnlyEverywhereButScratch() async {
        let o = await run(sh("""
            for p in /usr/toold-probe /etc/toold-probe /toold-probe /dev/toold-probe /proc/sys/kernel/hostname; do
              ( echo x > $p ) 2>/dev/null && echo writable $p
            done
            echo ok > /tmp/a && echo ok > /workspace/b && cat /tmp/a /workspace/b
            """))
        #expect(o.out == "ok\nok\n", "\(o.out)")
    }

    @Test func minimalDev() async {
        let o = await run(sh("ls -A /dev | tr '\\n' ' '"))
        #expect(o.out == "fd full null random shm stderr stdin stdout tty urandom zero ")
    }

    @Test func noDaemonDescriptorLeaksIn() async {
        // The test process has many descriptors open; the command sees 0-2
        // and the directory ls itself opened.
        let o = await run(sh("ls /proc/self/fd | tr '\\n' ' '"))
        #expect(o.out == "0 1 2 3 ")
    }

    @Test func mountAndNamespaceCreationAreDenied() async {
        let o = await run(sh("""
            mount -t tmpfs none /tmp 2>/dev/null && echo mounted
            unshare -U true 2>/dev/null && echo userns
            unshare -n true 2>/dev/null && echo netns
            unshare -r true 2>/dev/null && echo rootmap
            chroot / true 2>/dev/null && echo chroot
            echo done
            """))
        #expect(o.out == "done\n")
    }

    @Test func networkIsLoopbackOnly() async {
        let o = await run(sh("cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' '"))
        #expect(o.out == "lo\n")
    }

    @Test(.enabled(if: IsolationTests.hasPython))
    func hostLoopbackIsUnreachable() async throws {
        // A listener on the host's 127.0.0.1 must not be reachable.
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #expect(fd >= 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        listen(fd, 8)
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        let port = UInt16(bigEndian: addr.sin_port)
        let o = await run(spec(["python3", "-c", """
            import socket
            try:
                socket.create_connection(("127.0.0.1", \(port)), timeout=2); print("connected")
            except OSError as e:
                print(type(e).__name__)
            """]))
        #expect(o.out == "ConnectionRefusedError\n")
    }

    @Test(.enabled(if: IsolationTests.hasPython))
    func deniedSyscallsFailWithEPERMAndClone3WithENOSYS() async {
        let o = await run(spec(["python3", "-c", """
            import ctypes, os, socket
            libc = ctypes.CDLL(None, use_errno=True)
            def call(nr, *args):
                r = libc.syscall(nr, *[ctypes.c_long(a) for a in args])
                return 0 if r >= 0 else ctypes.get_errno()
            checks = {
                "keyctl": call(250, 0, 0), "add_key": call(248, 0, 0, 0, 0, 0), "bpf": call(321, 0, 0, 0),
                "perf_event_open": call(298, 0, 0, -1, -1, 0), "userfaultfd": call(323, 0),
                "io_uring_setup": call(425, 1, 0), "open_by_handle_at": call(304, 0, 0, 0),
                "init_module": call(175, 0, 0, 0), "ptrace": call(101, 16, 1, 0, 0),
                "process_vm_readv": call(310, 1, 0, 0, 0, 0, 0), "clock_settime": call(227, 0, 0),
                "reboot": call(169, 0, 0, 0, 0), "unshare": call(272, 0x10000000), "setns": call(308, 0, 0),
                "mount": call(165, 0, 0, 0, 0, 0), "fsopen": call(430, 0, 0), "open_tree": call(428, -100, 0, 0),
                "pivot_root": call(155, 0, 0), "chroot": call(161, 0), "swapon": call(167, 0, 0),
                "personality": call(135, 0x0040000), "syslog": call(103, 3, 0, 0), "acct": call(163, 0),
                "kexec_load": call(246, 0, 0, 0, 0), "clone_newuser": call(56, 0x10000000 | 17, 0, 0, 0, 0),
                "ioctl_tiocsti": call(16, 0, 0x5412, 0), "ioctl_tiocsti_high": call(16, 0, 0x100005412, 0),
                "mknod_chr": call(133, 0, 0o20644, 0x0103),
            }
            bad = {k: v for k, v in checks.items() if v != 1}
            print("clone3", call(435, 0, 0))
            print("personality-query", libc.syscall(135, ctypes.c_long(0xffffffff)) >= 0)
            for fam in (socket.AF_PACKET, socket.AF_NETLINK, 40):
                try:
                    socket.socket(fam, socket.SOCK_RAW if fam == socket.AF_PACKET else socket.SOCK_DGRAM); bad[f"socket{fam}"] = "allowed"
                except PermissionError:
                    pass
            print("not-eperm", bad)
            """]))
        #expect(o.out == "clone3 38\npersonality-query True\nnot-eperm {}\n", "\(o.out)\(o.err)")
    }

    @Test(.enabled(if: IsolationTests.hasGCC))
    func nonNativeABIsKillTheProcess() async {
        // int 0x80 (i386 ABI) and the x32 bit: both outside the filter's
        // native arch, so the process dies with SIGSYS whatever the call.
        for (name, body) in [("i386", #"__asm__ volatile("int $0x80" : : "a"(20) : "memory");"#),
                             ("x32", #"long r; __asm__ volatile("syscall" : "=a"(r) : "a"(0x40000000L | 39) : "rcx", "r11", "memory");"#)] {
            let source = "int main(void) { \(body) return 0; }"
            let o = await run(spec(["/bin/sh", "-c", "gcc -x c -o /tmp/probe - && exec /tmp/probe"],
                                   stdin: Array(source.utf8), limits: SandboxLimits(memoryBytes: 1 << 30), id: "abi-\(name)"))
            #expect(o.status == .signaled, "\(name): \(o.status) \(o.err)")
            #expect(o.signal == SIGSYS, "\(name)")
        }
    }
}
