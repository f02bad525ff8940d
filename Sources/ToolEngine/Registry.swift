import Foundation
import Logging
import Synchronization
import ToolProtocol

/// Every tool the daemon knows: the built-ins, the manifests of the tools directory (`tools_dir`,
/// default `/etc/toold/tools.d`), and the tools admins registered over the wire (persisted as
/// `<state_dir>/tools/<name>.json`, so they survive a restart).
///
/// Loading is all-or-nothing per manifest and never per directory: a broken manifest is logged with its
/// file, field and reason, kept in `skipped` (which admins see in `tools.list`), and the others load.
/// Names are unique: sources load in the order built-ins, tools directory (by file name), registered
/// (by file name), and the first definition of a name wins; later ones are skipped naming the first.
/// Readers get an immutable snapshot; `reload` (SIGHUP) builds a new one and swaps it in.
public final class ToolRegistry: Sendable {
    struct Snapshot: Sendable {
        var tools: [String: Tool] = [:]
        /// Provider names (`.` → `_`, for openai and anthropic) → tool names.
        var providerNames: [String: String] = [:]
        var skipped: [SkippedManifest] = []

        /// Adds a tool unless its name (or its provider name) is taken; returns the reason when it is.
        mutating func add(_ tool: Tool) -> String? {
            if let existing = tools[tool.name] {
                return "name \"\(tool.name)\" is already defined by \(existing.origin)"
            }
            if let other = providerNames[tool.providerName] {
                return "name \"\(tool.name)\" collides with tool \"\(other)\" in the openai and anthropic formats, where '.' reads as '_'"
            }
            tools[tool.name] = tool
            providerNames[tool.providerName] = tool.name
            return nil
        }

        mutating func remove(_ name: String) {
            guard let tool = tools.removeValue(forKey: name) else { return }
            providerNames.removeValue(forKey: tool.providerName)
        }
    }

    private let snapshot = Mutex(Snapshot())
    private let toolsDirectory: Mutex<String>
    /// `<state_dir>/tools`: registered manifests.
    public let registeredDirectory: String
    /// One gate per tool with `parallel: false`, kept across reloads so a reload never lets two calls overlap.
    private let gates = Mutex<[String: SerialGate]>([:])
    /// Serialises register/unregister (file write + snapshot update) against each other.
    private let registration = Mutex(())
    private let logger: Logger

    public init(toolsDirectory: String, stateDirectory: String, logger: Logger) {
        self.toolsDirectory = Mutex(toolsDirectory)
        self.registeredDirectory = (stateDirectory as NSString).appendingPathComponent("tools")
        self.logger = logger
    }

    // MARK: Reading

    public func tool(named name: String) -> Tool? {
        snapshot.withLock { s in s.tools[name] ?? s.providerNames[name].flatMap { s.tools[$0] } }
    }

    /// Every tool, sorted by name.
    public var tools: [Tool] { snapshot.withLock { $0.tools.values.sorted { $0.name < $1.name } } }

    /// The manifests of the last load that were not loaded, with the reasons.
    public var skipped: [SkippedManifest] { snapshot.withLock { $0.skipped } }

    func gate(for name: String) -> SerialGate {
        gates.withLock { gates in
            if let gate = gates[name] { return gate }
            let gate = SerialGate()
            gates[name] = gate
            return gate
        }
    }

    // MARK: Loading

    /// Reloads every source (at start and on SIGHUP), optionally from a new tools directory. Blocking
    /// (reads files); call it off the event loops.
    @discardableResult
    public func reload(toolsDirectory newDirectory: String? = nil) -> (loaded: Int, skipped: Int) {
        let directory = toolsDirectory.withLock { current in
            if let newDirectory { current = newDirectory }
            return current
        }
        return registration.withLock { _ in
            var next = Snapshot()
            let builtins = ToolBuiltins.load()
            next.skipped += builtins.problems
            for tool in builtins.tools { _ = next.add(tool) }
            for file in Self.manifestFiles(in: directory, &next.skipped) {
                loadFile(file, source: .file, into: &next)
            }
            for file in Self.manifestFiles(in: registeredDirectory, &next.skipped) {
                loadFile(file, source: .registered, into: &next)
            }
            for problem in next.skipped {
                logger.warning(
                    "tool manifest skipped",
                    metadata: ["toold.file": "\(problem.file)", "toold.field": "\(problem.field)", "toold.reason": "\(problem.reason)"])
            }
            logger.info(
                "tools loaded",
                metadata: [
                    "toold.tools_dir": "\(directory)", "toold.tools": "\(next.tools.count)", "toold.skipped": "\(next.skipped.count)",
                ])
            let counts = (next.tools.count, next.skipped.count)
            snapshot.withLock { $0 = next }
            return counts
        }
    }

    /// The `*.json` files of a directory, sorted. A missing directory is no tools, not an error.
    static func manifestFiles(in directory: String, _ skipped: inout [SkippedManifest]) -> [String] {
        let entries: [String]
        do {
            entries = try FileManager.default.contentsOfDirectory(atPath: directory)
        } catch {
            if FileManager.default.fileExists(atPath: directory) {
                skipped.append(SkippedManifest(file: directory, field: "", reason: "cannot list the directory: \(error.localizedDescription)"))
            }
            return []
        }
        return entries.filter { $0.hasSuffix(".json") && !$0.hasPrefix(".") }.sorted()
            .map { (directory as NSString).appendingPathComponent($0) }
    }

    private func loadFile(_ path: String, source: ToolSource, into next: inout Snapshot) {
        func skip(_ field: String, _ reason: String) { next.skipped.append(SkippedManifest(file: path, field: field, reason: reason)) }
        if let reason = Self.untrustedFileReason(path) { return skip("", reason) }
        guard let data = FileManager.default.contents(atPath: path) else { return skip("", "cannot be read") }
        guard data.count <= ManifestLoader.maxFileBytes else {
            return skip("", "is \(data.count) bytes; a manifest may hold at most \(ManifestLoader.maxFileBytes)")
        }
        let json: JSONValue
        do {
            json = try JSONCoding.parse(Array(data))
        } catch {
            return skip("", error == .invalidUTF8 ? "is not valid UTF-8" : "is not valid JSON: \(Self.parseReason(error))")
        }
        switch ManifestLoader.load(json, source: source, file: path) {
        case .failure(let problems):
            for problem in problems.problems { skip(problem.field, problem.reason) }
        case .success(let tool):
            if source == .registered, (path as NSString).lastPathComponent != tool.name + ".json" {
                return skip("/name", "a registered manifest must be stored as \(tool.name).json")
            }
            if let conflict = next.add(tool) { skip("/name", conflict) }
        }
    }

    static func parseReason(_ error: JSONParseError) -> String {
        if case .invalidJSON(let why) = error { return why }
        return error.description
    }

    /// Tools run with whatever their manifest asks (mode `trusted`, later mounts), so only files that only
    /// admins can write are loaded: owned by root or the daemon's user, not writable by group or others,
    /// in a directory that is not either.
    static func untrustedFileReason(_ path: String) -> String? {
        var fileStat = stat()
        guard lstat(path, &fileStat) == 0 else { return "cannot stat: \(String(cString: strerror(errno)))" }
        guard (fileStat.st_mode & S_IFMT) == S_IFREG else { return "is not a regular file (symlinks are not followed)" }
        let owners: Set<uid_t> = [0, geteuid()]
        if !owners.contains(fileStat.st_uid) {
            return "is owned by uid \(fileStat.st_uid); only files owned by root or the daemon's user are loaded"
        }
        if fileStat.st_mode & 0o022 != 0 {
            let mode = String(fileStat.st_mode & 0o777, radix: 8)
            return "is writable by group or others (mode \(mode)); only files that only admins can write are loaded"
        }
        var dirStat = stat()
        let directory = (path as NSString).deletingLastPathComponent
        if stat(directory, &dirStat) == 0, !owners.contains(dirStat.st_uid) || dirStat.st_mode & 0o022 != 0 {
            let mode = String(dirStat.st_mode & 0o777, radix: 8)
            return "its directory \(directory) could be changed by non-admins (owner uid \(dirStat.st_uid), mode \(mode))"
        }
        return nil
    }

    // MARK: Registration (admins only; the caller checks)

    /// Checks a manifest and stores it as a registered tool, replacing a registered tool of the same name.
    /// Invalid manifests and names owned by a built-in or a file are refused with `-32602`.
    public func register(_ json: JSONValue) throws(RPCError) -> ToolsRegisterResult {
        let path: String
        let tool: Tool
        switch ManifestLoader.load(json, source: .registered, file: nil) {
        case .failure(let problems):
            throw .invalidParams(problems.problems.map { ParamError(path: "/manifest" + $0.field, message: $0.reason) })
        case .success(let loaded):
            path = (registeredDirectory as NSString).appendingPathComponent(loaded.name + ".json")
            // Rebuilt with its file, as a reload would load it.
            tool = Tool(
                manifest: loaded.manifest, json: loaded.json, source: .registered, file: path, inputSchema: loaded.inputSchema,
                outputSchema: loaded.outputSchema, command: loaded.command)
        }
        return try registration.withLock { _ throws(RPCError) -> ToolsRegisterResult in
            let current = snapshot.withLock { $0 }
            var replaced = false
            if let existing = current.tools[tool.name] {
                guard existing.source == .registered else {
                    throw .invalidParams(
                        path: "/manifest/name",
                        "tool \"\(tool.name)\" is defined by \(existing.origin) and cannot be replaced over the wire")
                }
                replaced = true
            }
            var next = current
            next.remove(tool.name)
            if let conflict = next.add(tool) { throw .invalidParams(path: "/manifest/name", conflict) }
            do {
                try Self.writeAtomically(JSONCoding.serialize(json), to: path, directory: registeredDirectory)
            } catch {
                throw .internalError("storing the manifest at \(path): \(error)")
            }
            snapshot.withLock { $0 = next }
            logger.info("tool registered", metadata: ["toold.tool": "\(tool.name)", "toold.replaced": "\(replaced)"])
            return ToolsRegisterResult(name: tool.name, replaced: replaced)
        }
    }

    /// Removes a registered tool and its file. Built-ins and file tools are refused (`-32602`: remove the
    /// file and reload); an unknown name is `-32004`.
    public func unregister(name: String) throws(RPCError) {
        try registration.withLock { _ throws(RPCError) in
            guard let existing = snapshot.withLock({ $0.tools[name] }) else { throw .notFound("no tool named \"\(name)\"") }
            guard existing.source == .registered, let file = existing.file else {
                let remedy = existing.source == .file ? "remove the file and reload (SIGHUP)" : "built-in tools cannot be removed"
                throw .invalidParams(
                    path: "/name", "tool \"\(name)\" is defined by \(existing.origin), not registered over the wire; \(remedy)")
            }
            if unlink(file) != 0 && errno != ENOENT {
                throw .internalError("removing \(file): \(String(cString: strerror(errno)))")
            }
            snapshot.withLock { $0.remove(name) }
            logger.info("tool unregistered", metadata: ["toold.tool": "\(name)"])
        }
    }

    /// Writes a file through a temporary name and rename, so a crash leaves the old or the new manifest.
    static func writeAtomically(_ bytes: [UInt8], to path: String, directory: String) throws {
        try FileManager.default.createDirectory(
            atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o750])
        let temporary = (directory as NSString).appendingPathComponent(".\((path as NSString).lastPathComponent).tmp")
        guard FileManager.default.createFile(atPath: temporary, contents: Data(bytes), attributes: [.posixPermissions: 0o640]) else {
            throw POSIXError(.EIO)
        }
        guard rename(temporary, path) == 0 else {
            let code = errno
            unlink(temporary)
            throw POSIXError(POSIXErrorCode(rawValue: code) ?? .EIO)
        }
    }
}

extension Tool {
    /// Where a tool is defined, for messages: "the built-in tools", "file /etc/toold/tools.d/x.json".
    var origin: String {
        switch source {
        case .builtin: return "the built-in tools"
        case .file: return "file \(file ?? "?")"
        case .registered: return "registration (\(file ?? "?"))"
        }
    }
}

/// Lets calls of one tool run one at a time, in arrival order (`parallel: false`).
actor SerialGate {
    private var busy = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    func acquire() async {
        if !busy {
            busy = true
            return
        }
        await withCheckedContinuation { waiters.append($0) }
    }

    func release() {
        if waiters.isEmpty {
            busy = false
        } else {
            // Ownership passes straight to the next caller; `busy` stays true.
            waiters.removeFirst().resume()
        }
    }
}
