import Foundation
import Testing

/// systemd/ and scripts/install.sh: the install layout and modes under DESTDIR/PREFIX, the units'
/// contract (and the hardening they must not have), sysusers/tmpfiles applied to a scratch root,
/// and `systemd-analyze verify` on both installed units.
@Suite("systemd units and install.sh", .serialized)
struct SystemdUnitTests {
    static let repoRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    struct Output {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// Runs a program to completion; output goes through files so a full pipe can never block it.
    static func run(_ argv: [String], env: [String: String] = [:], cwd: URL? = nil) throws -> Output {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("systemd-test-io-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let outURL = dir.appendingPathComponent("out"), errURL = dir.appendingPathComponent("err")
        _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
        let out = try FileHandle(forWritingTo: outURL), err = try FileHandle(forWritingTo: errURL)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = argv
        var environment = ProcessInfo.processInfo.environment
        environment["PATH"] = "/usr/sbin:/usr/bin:/sbin:/bin:" + (environment["PATH"] ?? "")
        for (k, v) in env { environment[k] = v }
        p.environment = environment
        if let cwd { p.currentDirectoryURL = cwd }
        p.standardInput = FileHandle.nullDevice
        p.standardOutput = out
        p.standardError = err
        try p.run()
        p.waitUntilExit()
        try out.close()
        try err.close()
        return Output(
            status: p.terminationStatus,
            stdout: (try? String(contentsOf: outURL, encoding: .utf8)) ?? "",
            stderr: (try? String(contentsOf: errURL, encoding: .utf8)) ?? "")
    }

    static func tempDir(_ tag: String) throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("toold-\(tag)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// toold/toolc to install: TOOLD_BIN_DIR, else .build/release. When neither holds a build,
    /// stand-in executables (this suite checks packaging, not the daemon; e2e-systemd runs the real one).
    static func binaryDir() throws -> URL {
        let fm = FileManager.default
        let candidate = ProcessInfo.processInfo.environment["TOOLD_BIN_DIR"].map { URL(fileURLWithPath: $0) }
            ?? repoRoot.appendingPathComponent(".build/release")
        if fm.isExecutableFile(atPath: candidate.appendingPathComponent("toold").path),
            fm.isExecutableFile(atPath: candidate.appendingPathComponent("toolc").path)
        {
            return candidate
        }
        let stub = try tempDir("stub-bin")
        for name in ["toold", "toolc"] {
            let path = stub.appendingPathComponent(name).path
            _ = fm.createFile(atPath: path, contents: Data("#!/bin/sh\nexit 0\n".utf8), attributes: [.posixPermissions: 0o755])
        }
        return stub
    }

    static func install(destdir: URL, prefix: String? = nil, args: [String] = [], binDir: URL? = nil) throws -> Output {
        var env = ["DESTDIR": destdir.path, "TOOLD_BIN_DIR": try (binDir ?? binaryDir()).path]
        if let prefix { env["PREFIX"] = prefix }
        return try run([repoRoot.appendingPathComponent("scripts/install.sh").path] + args, env: env)
    }

    static func mode(_ url: URL) throws -> Int {
        let attrs = try FileManager.default.attributesOfItem(atPath: url.path)
        return (attrs[.posixPermissions] as? NSNumber)?.intValue ?? -1
    }

    /// The `Key=value` lines of a unit file, comments and blank lines dropped.
    static func directives(_ url: URL) throws -> [String] {
        try String(contentsOf: url, encoding: .utf8).split(separator: "\n").map {
            $0.trimmingCharacters(in: .whitespaces)
        }.filter { !$0.isEmpty && !$0.hasPrefix("#") && !$0.hasPrefix(";") && !$0.hasPrefix("[") }
    }

    /// `systemd-analyze verify` insists that ExecStart= exists, so it checks copies of the installed
    /// units whose ExecStart= points at the staged binary; everything else is verified as installed.
    static func verify(unitDir: URL, stagedToold: URL, installedToold: String) throws -> Output {
        let work = try tempDir("verify")
        defer { try? FileManager.default.removeItem(at: work) }
        var paths: [String] = []
        for name in ["toold.service", "toold.socket"] {
            let text = try String(contentsOf: unitDir.appendingPathComponent(name), encoding: .utf8)
                .replacingOccurrences(of: "ExecStart=\(installedToold)", with: "ExecStart=\(stagedToold.path)")
            let copy = work.appendingPathComponent(name)
            try text.write(to: copy, atomically: true, encoding: .utf8)
            paths.append(copy.path)
        }
        return try run(["systemd-analyze", "verify"] + paths, cwd: work)
    }

    @Test("install.sh --help documents DESTDIR and PREFIX")
    func help() throws {
        let r = try Self.run([Self.repoRoot.appendingPathComponent("scripts/install.sh").path, "--help"])
        #expect(r.status == 0)
        #expect(r.stdout.contains("DESTDIR"))
        #expect(r.stdout.contains("PREFIX"))
    }

    @Test("default prefix: every file in place with its mode, units verify")
    func installDefaultPrefix() throws {
        let dest = try Self.tempDir("destdir")
        defer { try? FileManager.default.removeItem(at: dest) }
        let r = try Self.install(destdir: dest)
        #expect(r.status == 0, "install.sh failed: \(r.stderr)")

        let expected: [(String, Int)] = [
            ("usr/bin/toold", 0o755), ("usr/bin/toolc", 0o755),
            ("usr/lib/systemd/system/toold.service", 0o644), ("usr/lib/systemd/system/toold.socket", 0o644),
            ("usr/lib/sysusers.d/toold.conf", 0o644), ("usr/lib/tmpfiles.d/toold.conf", 0o644),
            ("etc/toold", 0o750), ("etc/toold/tools.d", 0o750), ("etc/toold/toold.json", 0o640),
        ]
        for (path, wanted) in expected {
            let url = dest.appendingPathComponent(path)
            #expect(FileManager.default.fileExists(atPath: url.path), "\(path) not installed")
            if FileManager.default.fileExists(atPath: url.path) {
                let actual = try Self.mode(url)
                #expect(actual == wanted, "\(path): mode \(String(actual, radix: 8)), wanted \(String(wanted, radix: 8))")
            }
        }
        // Binaries are installed byte for byte.
        let bin = try Self.binaryDir()
        for name in ["toold", "toolc"] {
            #expect(
                FileManager.default.contents(atPath: bin.appendingPathComponent(name).path)
                    == FileManager.default.contents(atPath: dest.appendingPathComponent("usr/bin/\(name)").path))
        }

        let unitDir = dest.appendingPathComponent("usr/lib/systemd/system")
        #expect(try Self.directives(unitDir.appendingPathComponent("toold.service")).contains("ExecStart=/usr/bin/toold"))

        // The default config is valid JSON naming the socket the socket unit listens on.
        let config = try Data(contentsOf: dest.appendingPathComponent("etc/toold/toold.json"))
        let object = try JSONSerialization.jsonObject(with: config) as? [String: Any]
        #expect(object?["socket"] as? String == "/run/toold.sock")
        #expect(object?["socket_group"] as? String == "toold")

        let v = try Self.verify(
            unitDir: unitDir, stagedToold: dest.appendingPathComponent("usr/bin/toold"), installedToold: "/usr/bin/toold")
        #expect(v.status == 0, "systemd-analyze verify failed:\n\(v.stderr)")
        // verify exits 0 on unknown keys and bad values (it only warns): any output is a failure.
        #expect(v.stderr.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, "systemd-analyze verify warned:\n\(v.stderr)")
    }

    @Test("PREFIX=/opt/toold: ExecStart and search paths follow the prefix, config stays in /etc")
    func installCustomPrefix() throws {
        let dest = try Self.tempDir("destdir-prefix")
        defer { try? FileManager.default.removeItem(at: dest) }
        let r = try Self.install(destdir: dest, prefix: "/opt/toold")
        #expect(r.status == 0, "install.sh failed: \(r.stderr)")
        let unitDir = dest.appendingPathComponent("opt/toold/lib/systemd/system")
        let service = try Self.directives(unitDir.appendingPathComponent("toold.service"))
        #expect(service.contains("ExecStart=/opt/toold/bin/toold"))
        #expect(!service.contains { $0.contains("/usr/bin/toold") })
        for path in ["opt/toold/bin/toold", "opt/toold/bin/toolc", "opt/toold/lib/sysusers.d/toold.conf",
                     "opt/toold/lib/tmpfiles.d/toold.conf", "etc/toold/toold.json"] {
            #expect(FileManager.default.fileExists(atPath: dest.appendingPathComponent(path).path), "\(path) not installed")
        }
        #expect(!FileManager.default.fileExists(atPath: dest.appendingPathComponent("usr").path))
        let v = try Self.verify(
            unitDir: unitDir, stagedToold: dest.appendingPathComponent("opt/toold/bin/toold"),
            installedToold: "/opt/toold/bin/toold")
        #expect(v.status == 0 && v.stderr.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty,
                "systemd-analyze verify:\n\(v.stderr)")
    }

    @Test("an existing /etc/toold/toold.json is never overwritten")
    func keepsExistingConfig() throws {
        let dest = try Self.tempDir("destdir-keep")
        defer { try? FileManager.default.removeItem(at: dest) }
        let etc = dest.appendingPathComponent("etc/toold")
        try FileManager.default.createDirectory(at: etc, withIntermediateDirectories: true)
        let mine = Data("{\"log_level\": \"debug\"}\n".utf8)
        try mine.write(to: etc.appendingPathComponent("toold.json"))
        let r = try Self.install(destdir: dest)
        #expect(r.status == 0, "install.sh failed: \(r.stderr)")
        #expect(FileManager.default.contents(atPath: etc.appendingPathComponent("toold.json").path) == mine)
        #expect(r.stdout.contains("kept existing"))
    }

    @Test("install.sh refuses to run without built binaries")
    func missingBinaries() throws {
        let dest = try Self.tempDir("destdir-nobin")
        defer { try? FileManager.default.removeItem(at: dest) }
        let r = try Self.install(destdir: dest, binDir: dest.appendingPathComponent("nothing-here"))
        #expect(r.status != 0)
        #expect(r.stderr.contains("scripts/build"))
    }

    @Test("--apply into a scratch root creates the groups, the sandbox user and the directories")
    func applySysusersAndTmpfiles() throws {
        let dest = try Self.tempDir("destdir-apply")
        defer { try? FileManager.default.removeItem(at: dest) }
        let r = try Self.install(destdir: dest, args: ["--apply"])
        #expect(r.status == 0, "install.sh --apply failed: \(r.stderr)")
        let passwd = (try? String(contentsOf: dest.appendingPathComponent("etc/passwd"), encoding: .utf8)) ?? ""
        let group = (try? String(contentsOf: dest.appendingPathComponent("etc/group"), encoding: .utf8)) ?? ""
        let sandbox = passwd.split(separator: "\n").first { $0.hasPrefix("toold-sandbox:") }.map { $0.split(separator: ":", omittingEmptySubsequences: false) }
        #expect(sandbox != nil, "no toold-sandbox in passwd:\n\(passwd)")
        if let sandbox, sandbox.count == 7 {
            #expect(Int(sandbox[2]) != 0, "toold-sandbox must not be uid 0")
            #expect(sandbox[5] == "/nonexistent")
            #expect(sandbox[6] == "/usr/sbin/nologin")
        }
        for name in ["toold", "toold-admin", "toold-sandbox"] {
            #expect(group.split(separator: "\n").contains { $0.hasPrefix("\(name):") }, "group \(name) missing")
        }
        let state = dest.appendingPathComponent("var/lib/toold")
        #expect(FileManager.default.fileExists(atPath: state.path))
        if FileManager.default.fileExists(atPath: state.path) { #expect(try Self.mode(state) == 0o750) }
    }

    @Test("units: the contract, and no hardening that breaks the sandbox")
    func unitContract() throws {
        let dir = Self.repoRoot.appendingPathComponent("systemd")
        let socket = try Self.directives(dir.appendingPathComponent("toold.socket"))
        for line in ["ListenStream=/run/toold.sock", "SocketMode=0660", "SocketGroup=toold", "Accept=no"] {
            #expect(socket.contains(line), "toold.socket lacks \(line)")
        }
        let service = try Self.directives(dir.appendingPathComponent("toold.service"))
        for line in [
            "Type=notify", "NotifyAccess=main", "ExecStart=/usr/bin/toold", "ExecReload=/bin/kill -HUP $MAINPID",
            "Delegate=yes", "OOMPolicy=continue", "Restart=on-failure", "StateDirectory=toold",
            "RuntimeDirectory=toold", "KillMode=mixed", "Requires=toold.socket", "NoNewPrivileges=yes",
        ] {
            #expect(service.contains(line), "toold.service lacks \(line)")
        }
        #expect(service.contains { $0.hasPrefix("WatchdogSec=") })
        #expect(service.contains { $0.hasPrefix("TimeoutStopSec=") })
        // Each of these would stop sandboxes from mounting /proc, writing cgroups, creating
        // namespaces, or would stack a seccomp filter under every sandbox (see the unit's comments).
        for key in [
            "ProtectKernelTunables", "ProtectKernelLogs", "ProtectProc", "ProcSubset", "ProtectControlGroups",
            "RestrictNamespaces", "PrivateUsers", "SystemCallFilter", "RestrictAddressFamilies",
            "MemoryDenyWriteExecute", "LockPersonality", "PrivateDevices", "DynamicUser", "User",
            "ProtectHostname", "ProtectClock", "ProtectKernelModules", "SystemCallArchitectures",
        ] {
            #expect(!service.contains { $0.hasPrefix(key + "=") }, "toold.service must not set \(key)=")
        }
    }
}
