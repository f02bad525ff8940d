import Foundation
import Testing
import ToolProtocol

/// A new connection's caller is named through NSS (`getpwuid_r`, group names), which waits on whatever
/// the host's nsswitch names — LDAP or sssd that may hang. These tests give the real daemon a directory
/// service that hangs: a small NSS module, loaded through a private /etc/nsswitch.conf bound over the
/// host's in a mount namespace of the daemon's own.
@Suite struct UserDatabaseTests {
    /// `passwd` lookups of uids 64700–64799 mark `<uid>.start` in TOOLD_TEST_NSS_MARKS, sleep
    /// TOOLD_TEST_NSS_DELAY_MS, mark `<uid>.done` and find nothing (the files service answers the rest);
    /// `group` lookups of gids 64800–64899 do the same with `g<gid>.start`/`.done` (a range apart: the
    /// test callers' own gids are their uids). Each mark holds the name of the thread that looked up.
    static let hangingModule = #"""
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <nss.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

static void mark(const char *prefix, unsigned id, const char *what) {
    const char *dir = getenv("TOOLD_TEST_NSS_MARKS");
    char path[512], thread[17] = {0};
    if (!dir || snprintf(path, sizeof path, "%s/%s%u.%s", dir, prefix, id, what) >= (int)sizeof path) return;
    prctl(PR_GET_NAME, thread);
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return;
    if (write(fd, thread, strlen(thread)) < 0) {}
    close(fd);
}

static enum nss_status hang(const char *prefix, unsigned id, unsigned first) {
    if (id < first || id > first + 99) return NSS_STATUS_NOTFOUND;
    mark(prefix, id, "start");
    const char *ms = getenv("TOOLD_TEST_NSS_DELAY_MS");
    long delay = ms ? atol(ms) : 5000;
    struct timespec ts = { delay / 1000, (delay % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {}
    mark(prefix, id, "done");
    return NSS_STATUS_NOTFOUND;
}

enum nss_status _nss_tooldhang_getpwuid_r(uid_t uid, struct passwd *pw, char *buf, size_t len, int *errnop) {
    (void)pw; (void)buf; (void)len; (void)errnop;
    return hang("", (unsigned)uid, 64700);
}

enum nss_status _nss_tooldhang_getgrgid_r(gid_t gid, struct group *gr, char *buf, size_t len, int *errnop) {
    (void)gr; (void)buf; (void)len; (void)errnop;
    return hang("g", (unsigned)gid, 64800);
}
"""#

    /// Builds the module into `dir` as `libnss_tooldhang.so.2` and writes an nsswitch.conf that asks it
    /// after `files` for passwd and group; returns that file's path.
    static func hangingDirectoryService(in dir: TempDir) throws -> String {
        let source = dir.path + "/hang.c"
        try hangingModule.write(toFile: source, atomically: true, encoding: .utf8)
        let compilers = ["/usr/bin/cc", "/opt/swift/usr/bin/clang"].filter { FileManager.default.isExecutableFile(atPath: $0) }
        guard let compiler = compilers.first else { throw TestFailure("no C compiler (cc or the toolchain's clang)") }
        let built = try runProgram(compiler, ["-shared", "-fPIC", "-O1", "-o", dir.path + "/libnss_tooldhang.so.2", source])
        guard built.status == 0 else { throw TestFailure("building the NSS module failed: \(built.stderr)") }
        let host = (try? String(contentsOfFile: "/etc/nsswitch.conf", encoding: .utf8)) ?? ""
        var lines = host.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            .filter { !$0.hasPrefix("passwd:") && !$0.hasPrefix("group:") }
        lines.insert(contentsOf: ["passwd: files tooldhang", "group: files tooldhang"], at: 0)
        let conf = dir.path + "/nsswitch.conf"
        try lines.joined(separator: "\n").write(toFile: conf, atomically: true, encoding: .utf8)
        return conf
    }

    /// A daemon whose NSS asks the hanging module (built into `dir`), in a mount namespace of its own with
    /// the private nsswitch.conf; lookups hang `delayMs`. Returns it and the marks directory.
    static func daemonWithHangingDirectory(
        in dir: TempDir, delayMs: Int, arguments: [String] = [], environment: [String: String] = [:]
    ) throws -> (TestDaemon, String) {
        let conf = try hangingDirectoryService(in: dir)
        let marks = dir.path + "/marks"
        try FileManager.default.createDirectory(atPath: marks, withIntermediateDirectories: true)
        let daemon = try TestDaemon(
            arguments,
            environment: environment.merging(
                ["LD_LIBRARY_PATH": dir.path, "TOOLD_TEST_NSS_MARKS": marks, "TOOLD_TEST_NSS_DELAY_MS": "\(delayMs)"]
            ) { $1 },
            launcher: [
                "/usr/bin/unshare", "--mount", "--propagation", "private", "--", "/bin/sh", "-c",
                #"mount --bind "$0" /etc/nsswitch.conf && exec "$@""#, conf,
            ])
        return (daemon, marks)
    }

    @Test func aHangingDirectoryServiceStallsOnlyTheConnectionsItNames() throws {
        let dir = try TempDir("nss-hang")
        defer { dir.remove() }
        let (daemon, marks) = try Self.daemonWithHangingDirectory(in: dir, delayMs: 6000)
        defer { daemon.stop() }
        let group = groupID("toold") ?? 0
        // More hanging lookups than the cooperative pool has threads (one per core), fewer than the lookup
        // threads (16), so root's own lookup finds one free.
        let count = min(ProcessInfo.processInfo.activeProcessorCount + 2, 15)
        let uids = (0..<count).map { UInt32(64701 + $0) }
        let slow = try uids.map { uid in
            try PeerClient(socket: daemon.socketPath, uid: uid, groups: [group], requests: [(RPCMethod.daemonStatus, .object([:]))])
        }
        func marked(_ what: String) -> Int {
            ((try? FileManager.default.contentsOfDirectory(atPath: marks)) ?? []).filter { $0.hasSuffix("." + what) }.count
        }
        // Every one of them is inside its lookup at once, none has come back…
        try waitUntil("every slow caller's lookup started") { marked("start") == count }
        #expect(marked("done") == 0)
        // …and the daemon serves everyone else meanwhile: a new connection, status and an exec.
        let root = try daemon.client()
        defer { root.close() }
        #expect(try root.call(RPCMethod.daemonStatus)["caller"]?["uid"] == .int(0))
        let ran = try root.call(RPCMethod.exec, params: ["argv": ["/bin/echo", "served"]])
        #expect(ran["stdout"] == "served\n")
        #expect(marked("done") == 0, "the slow lookups had ended: the test proves nothing; raise the delay")
        #expect(slow.allSatisfy { $0.response(1) == nil })
        // Once its lookup ends, each slow caller is served under its uid (no name: the directory had none).
        for (client, uid) in zip(slow, uids) {
            try client.finish()
            let caller = client.response(1)?["result"]?["caller"]
            #expect(caller?["uid"] == .int(Int64(uid)) && caller?["user"] == .string(String(uid)), "\(client.messages)")
        }
    }

    /// A policy reload resolves the policy's numeric group ids (`group:<gid>` principals) to names through
    /// NSS as well: on a lookup thread, never on the cooperative pool, where a hanging directory would
    /// hold one of the few threads every request needs for as long as it hangs.
    @Test func aPolicyReloadLooksGroupsUpOnALookupThread() throws {
        let dir = try TempDir("nss-hang-reload")
        defer { dir.remove() }
        let (daemon, marks) = try Self.daemonWithHangingDirectory(in: dir, delayMs: 300)
        defer { daemon.stop() }
        let reloaded = try daemon.reloadPolicy(#"{"principals": {"*": {"allow": ["exec"]}, "group:64850": {"allow": ["*"]}}}"#)
        #expect(reloaded["error"] == nil, "\(reloaded)")
        let thread = try String(contentsOfFile: marks + "/g64850.start", encoding: .utf8)
        #expect(thread.hasPrefix("toold-lookup"), "the reload looked group 64850 up on thread \"\(thread)\"")
    }

    /// A reload whose group lookup hangs (a directory that is down) does not hold up a stop: SIGTERM is
    /// taken while the lookup still waits, and the daemon stops. Before, the signal loop awaited the load.
    @Test func aStopDuringAReloadStuckInALookupStopsTheDaemon() throws {
        let dir = try TempDir("nss-hang-stop")
        defer { dir.remove() }
        let (daemon, marks) = try Self.daemonWithHangingDirectory(in: dir, delayMs: 60_000)
        defer { daemon.stop() }
        try #"{"principals": {"*": {"allow": ["exec"]}, "group:64851": {"allow": ["*"]}}}"#
            .write(to: daemon.policyURL, atomically: true, encoding: .utf8)
        daemon.signal(SIGHUP)
        try waitUntil("the reload's lookup of group 64851 started") {
            FileManager.default.fileExists(atPath: marks + "/g64851.start")
        }
        daemon.signal(SIGTERM)
        try waitUntil("the daemon stopped") { !daemon.process.isRunning }
        #expect(daemon.process.terminationStatus == 0)
        #expect(!FileManager.default.fileExists(atPath: marks + "/g64851.done"), "the lookup had ended: the test proves nothing")
    }

    /// Two reloads whose group lookups are slow, then a stop that an execution still running keeps going:
    /// the reloads finish during the stop and must not say READY=1 after STOPPING=1 (systemd would read the
    /// daemon as ready again) — nor apply their policy. Before, only the newest reload was cancelled; the
    /// older one finished, applied its policy and said READY=1.
    @Test func reloadsThatFinishDuringAStopSayNothingAfterStopping() throws {
        let dir = try TempDir("nss-hang-notify")
        defer { dir.remove() }
        let notify = try NotifyListener(path: dir.path + "/notify.sock")
        defer { notify.close() }
        let (daemon, marks) = try Self.daemonWithHangingDirectory(
            in: dir, delayMs: 1500, arguments: ["--shutdown-grace-ms", "20000"], environment: ["NOTIFY_SOCKET": notify.path])
        defer { daemon.stop() }
        _ = try notify.waitFor("READY=1")
        try #"{"principals": {"*": {"allow": ["exec"]}, "group:64852": {"allow": ["*"]}}}"#
            .write(to: daemon.policyURL, atomically: true, encoding: .utf8)
        daemon.signal(SIGHUP)
        _ = try notify.waitFor("RELOADING=1")
        try waitUntil("the first reload's lookup started") { FileManager.default.fileExists(atPath: marks + "/g64852.start") }
        daemon.signal(SIGHUP)
        _ = try notify.waitFor("RELOADING=1")
        // An execution that outlasts the lookups keeps the stop going (it gets its grace period).
        let c = try daemon.client()
        var started = false
        c.onNotification = { if $0.method == RPCMethod.execStarted { started = true } }
        let id = try c.send(RPCMethod.exec, params: ["argv": ["sleep", "5"], "stream": true])
        while !started { _ = try c.call(RPCMethod.daemonStatus) }
        daemon.signal(SIGTERM)
        _ = try notify.waitFor("STOPPING=1")
        #expect(try c.wait(for: id)["status"] == "exited")
        try waitUntil("the daemon stopped") { !daemon.process.isRunning }
        #expect(FileManager.default.fileExists(atPath: marks + "/g64852.done"), "no lookup ended during the stop: the test proves nothing")
        let after = notify.drain()
        #expect(!after.contains { $0.split(separator: "\n").contains("READY=1") }, "after STOPPING=1: \(after)")
    }
}
