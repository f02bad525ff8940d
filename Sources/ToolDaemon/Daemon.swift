import Dispatch
import Foundation
import Logging
import NIOCore
import NIOPosix
import Sandbox
import Synchronization
import ToolEngine
import ToolProtocol
import ToolRecords

/// The daemon's lifecycle: start (runtime, socket, READY=1), serve, reload on SIGHUP, stop gracefully on
/// SIGTERM/SIGINT. `main` only parses arguments and calls `run`.
public enum Daemon {
    /// Builds the configuration afresh: the config file, then the command-line flags over it.
    public typealias ConfigurationSource = @Sendable () throws -> DaemonConfiguration

    /// Runs until stopped; returns the process exit status.
    public static func run(configurationSource: @escaping ConfigurationSource) async -> Int32 {
        let configuration: DaemonConfiguration
        do {
            configuration = try configurationSource()
            try configuration.validate()
        } catch {
            FileHandle.standardError.write(Data("toold: \(error)\n".utf8))
            return 78  // EX_CONFIG
        }
        LogSetup.bootstrap(level: configuration.logLevel)
        let logger = Logger(label: "toold")
        do {
            return try await serve(configuration: configuration, source: configurationSource, logger: logger)
        } catch {
            logger.critical("toold cannot start: \(error)")
            Systemd.notify("STATUS=Failed to start: \(error)")
            if !Systemd.stderrIsJournal { FileHandle.standardError.write(Data("toold: \(error)\n".utf8)) }
            return 1
        }
    }

    static func serve(configuration: DaemonConfiguration, source: @escaping ConfigurationSource, logger: Logger) async throws -> Int32 {
        Systemd.notify("STATUS=Starting")
        try FileManager.default.createDirectory(
            atPath: configuration.stateDirectory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o750])
        // Policy first: a broken policy file stops the start before any sandbox machinery exists.
        let manualClock = configuration.manualClock ? ManualPolicyClock() : nil
        let clock: any PolicyClock = manualClock ?? SystemPolicyClock()
        let policy = PolicyService(
            document: try PolicyService.load(path: configuration.policyFile, required: configuration.policyFileRequired),
            clock: clock)
        logger.info("policy loaded", metadata: ["toold.policy": "\(policy.source)", "toold.event": "policy"])
        logPolicyWarnings(policy, logger)
        if manualClock != nil { logger.warning("manual policy clock: for tests only (testing.clock.advance)") }
        // Records next: executions that were running when the daemon last died become `interrupted`.
        let store = try openRecords(configuration, logger: logger)
        let recorder = ExecutionRecorder(store: store, logger: logger)
        let runtime = try SandboxRuntime(
            configuration: SandboxConfiguration(
                stateDirectory: configuration.stateDirectory,
                sandboxUser: configuration.sandboxUser,
                netnsPoolSize: configuration.netnsPoolSize,
                requireCgroupLimits: configuration.requireCgroupLimits,
                warmPoolSize: configuration.warmPoolSize,
                // Prepared sandboxes are set up for a call that asks for nothing special.
                warmLimits: configuration.execLimits.defaultSandboxLimits,
                refillWaitMs: configuration.refillWaitMs),
            logger: logger)
        let scheduler = Scheduler(settings: configuration.schedulerSettings, clock: clock)
        let executions = ExecutionService(
            runtime: runtime, limits: configuration.execLimits, policy: policy, scheduler: scheduler, recorder: recorder,
            logger: logger)
        let registry = ToolRegistry(
            toolsDirectory: configuration.toolsDirectory, stateDirectory: configuration.stateDirectory, logger: logger)
        registry.reload()
        let tools = ToolCallService(registry: registry, executions: executions, logger: logger)
        tools.invalidateStaleCache()
        let retention = Retention(history: configuration.recordsHistoryDays, audit: configuration.recordsAuditDays)
        let pruning = store.map { startPruning($0, retention: retention, logger: logger) }
        let backlogRetry = store.map { _ in startBacklogRetry(recorder) }
        let serverBox = Mutex<Server?>(nil)
        let dispatcher = Dispatcher(executions: executions, tools: tools, manualClock: manualClock, logger: logger) {
            serverBox.withLock { $0?.isDraining ?? false }
        }
        let server = Server(configuration: configuration, dispatcher: dispatcher, logger: logger)
        serverBox.withLock { $0 = server }

        let signals = SignalStream(signals: [SIGTERM, SIGINT, SIGHUP])
        let group = MultiThreadedEventLoopGroup(numberOfThreads: max(1, min(4, System.coreCount)))
        let activated: CInt?
        let listener: any Channel
        do {
            activated = try Systemd.activatedSocket()
            listener = try await server.listen(group: group, activatedFD: activated)
        } catch {
            // Not serving (e.g. another daemon answers on the socket): take down what the runtime set up —
            // prepared sandboxes, their cgroups and the parent — or they outlive this process.
            runtime.shutdown()
            try? await group.shutdownGracefully()
            throw error
        }
        let where_ = activated != nil ? "socket-activated \(configuration.socketPath)" : configuration.socketPath
        let summary = "cgroups \(runtime.cgroupLayout.rawValue) [\(runtime.usableControllers.joined(separator: ","))]"
        logger.info(
            "serving",
            metadata: [
                "toold.socket": "\(where_)", "toold.cgroup_layout": "\(runtime.cgroupLayout.rawValue)",
                "toold.version": "\(TooldVersion.current)", "toold.event": "ready",
            ])
        Systemd.notify("READY=1\nSTATUS=Serving on \(where_); \(summary)")
        let watchdog = startWatchdog(logger: logger)

        var current = configuration
        // The policy part of a reload (see below); reloads run one after another.
        var policyReload: Task<Void, Never>? = nil
        let reloads = ReloadState()
        for await signal in signals.stream {
            if signal == SIGHUP {
                let generation = reloads.begin()
                Systemd.notify("RELOADING=1\nSTATUS=Reloading configuration")
                logger.info("reloading configuration", metadata: ["toold.event": "reload"])
                do {
                    let next = try source()
                    try next.validate()
                    for (name, old, new) in [
                        ("socket", current.socketPath, next.socketPath), ("state_dir", current.stateDirectory, next.stateDirectory),
                        ("sandbox_user", current.sandboxUser, next.sandboxUser),
                    ] where old != new {
                        logger.warning("setting changes only on restart", metadata: ["toold.setting": "\(name)"])
                    }
                    LogSetup.level.withLock { $0 = next.logLevel }
                    server.update(next)
                    executions.updateLimits(next.execLimits)
                    scheduler.update(next.schedulerSettings)
                    registry.reload(toolsDirectory: next.toolsDirectory)
                    tools.invalidateStaleCache()
                    store?.updateSettings(next.recordSettings)
                    retention.days.withLock { $0 = (next.recordsHistoryDays, next.recordsAuditDays) }
                    current = next
                    // Loading resolves the policy's numeric group ids to names (NSS, which may wait on a
                    // directory that is down): on a lookup thread, not the cooperative pool, and in a task of
                    // its own, so this loop still takes SIGTERM while a lookup hangs. READY=1 follows the load.
                    let (policyFile, policyRequired) = (next.policyFile, next.policyFileRequired)
                    let previous = policyReload
                    policyReload = Task {
                        await previous?.value
                        await reloadPolicy(
                            file: policyFile, required: policyRequired, into: policy, recorder: recorder, logger: logger,
                            serving: "Serving on \(where_); \(summary)", reloads: reloads, generation: generation)
                    }
                } catch {
                    logger.error("reload failed; keeping the previous configuration", metadata: ["toold.error": "\(error)"])
                    reloads.notifyIfLatest(generation, "READY=1\nSTATUS=Serving on \(where_); reload failed, previous configuration kept: \(error)")
                }
                continue
            }
            break  // SIGTERM or SIGINT
        }
        // A policy reload still waiting for its lookups is not waited for: once `reloads.stop` has run, no
        // reload applies a policy or says READY=1 (STOPPING=1 goes out under the same lock).

        let inFlight = server.requestsInFlight
        // The unit's TimeoutStopSec (30 s) would cut a longer grace short: ask for the grace plus what the
        // rest of the stop may take.
        let stopBudgetUs = (UInt64(current.shutdownGraceMs) + Self.stopAfterGraceMs) * 1000
        reloads.stop("STOPPING=1\nEXTEND_TIMEOUT_USEC=\(stopBudgetUs)\nSTATUS=Stopping: \(inFlight) requests in flight")
        logger.info("stopping", metadata: ["toold.requests": "\(inFlight)", "toold.event": "stopping"])
        try? await listener.close()
        await server.drain(grace: .milliseconds(current.shutdownGraceMs))
        executions.cancelAll()
        pruning?.cancel()
        backlogRetry?.cancel()
        if recorder.flush() > 0 {
            logger.error(
                "execution records still unwritten at stop (the disk is full?): their executions will read interrupted",
                metadata: ["toold.count": "\(recorder.backlogCount)", "toold.event": "records"])
        }
        runtime.shutdown()
        watchdog?.cancel()
        try? await group.shutdownGracefully()
        if activated == nil { unlink(configuration.socketPath) }
        logger.info("stopped", metadata: ["toold.event": "stopped"])
        return 0
    }

    /// What a stop may take after the grace period, with room to spare: cancelling what still runs (up to
    /// 5 s), flushing records, and the sandbox runtime's shutdown — the prepared-sandbox thread (up to
    /// 15 s), executions tearing down (up to 10 s), each prepared sandbox's discard.
    static let stopAfterGraceMs: UInt64 = 60_000

    /// The daemon as the actor of actions without a request (reloads), for the audit.
    static var daemonIdentity: CallerIdentity {
        CallerIdentity(uid: getuid(), gid: getgid(), pid: getpid(), user: "toold", groups: [], admin: true)
    }

    /// The policy part of a SIGHUP reload: loads the file on a lookup thread and applies it, or keeps the
    /// previous policy and says why (journal, audit, `STATUS=`); then READY=1.
    static func reloadPolicy(
        file: String, required: Bool, into policy: PolicyService, recorder: ExecutionRecorder, logger: Logger,
        serving: String, reloads: ReloadState, generation: Int
    ) async {
        guard !reloads.isStopping else { return }
        let loaded = await BlockingThreads.lookups.run {
            Result { () throws(ConfigurationError) in try PolicyService.load(path: file, required: required) }
        }
        // The daemon began to stop meanwhile: the policy is not applied (nor audited, nor announced).
        guard !reloads.isStopping else { return }
        policy.reload(loaded)
        recorder.admin(
            AdminAction(
                at: .now(), requestID: nil, caller: daemonIdentity, method: "signal",
                action: loaded.isSuccess ? "policy_reloaded" : "policy_reload_failed",
                details: ["source": .string(file), "error": loaded.errorText.map(JSONValue.string) ?? .null]))
        if case .failure(let error) = loaded {
            logger.error(
                "policy reload failed; keeping the previous policy",
                metadata: ["toold.error": "\(error)", "toold.event": "policy"])
            reloads.notifyIfLatest(generation, "READY=1\nSTATUS=\(serving); policy reload failed, previous policy kept: \(error)")
        } else {
            logger.info("policy loaded", metadata: ["toold.policy": "\(policy.source)", "toold.event": "policy"])
            logPolicyWarnings(policy, logger)
            reloads.notifyIfLatest(generation, "READY=1\nSTATUS=\(serving); configuration reloaded")
        }
    }

    /// Each of the loaded policy's warnings (a superseded shipped rule), at warning level.
    static func logPolicyWarnings(_ policy: PolicyService, _ logger: Logger) {
        for warning in policy.warnings {
            logger.warning(
                "policy: \(warning)", metadata: ["toold.policy": "\(policy.source)", "toold.event": "policy"])
        }
    }

    /// Opens `<state_dir>/toold.db` (unless records are off) and marks what a previous run left running
    /// as `interrupted`.
    static func openRecords(_ configuration: DaemonConfiguration, logger: Logger) throws -> RecordStore? {
        guard configuration.recordsEnabled else {
            logger.warning("records are off: nothing is recorded in the database (records.enabled is false)")
            return nil
        }
        let path = (configuration.stateDirectory as NSString).appendingPathComponent("toold.db")
        let store = try RecordStore(path: path, settings: configuration.recordSettings, logger: logger)
        do {
            let interrupted = try store.markInterrupted(now: .now())
            if !interrupted.isEmpty {
                logger.warning(
                    "executions interrupted by the previous stop recorded",
                    metadata: ["toold.count": "\(interrupted.count)", "toold.execution_ids": "\(interrupted.prefix(20).joined(separator: ","))"])
            }
        } catch {
            logger.error("cannot mark interrupted executions", metadata: ["toold.error": "\(error)"])
        }
        return store
    }

    /// Retries end records kept in memory (a full disk) every second, so they land once space returns
    /// even when no other call comes.
    static func startBacklogRetry(_ recorder: ExecutionRecorder) -> Task<Void, Never> {
        Task.detached(priority: .background) {
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(1))
                if recorder.backlogCount > 0 { recorder.flush() }
            }
        }
    }

    /// Prunes history, outputs and audit past their retention at start and then daily.
    static func startPruning(
        _ store: RecordStore, retention: Retention, logger: Logger
    ) -> Task<Void, Never> {
        Task.detached(priority: .background) {
            while !Task.isCancelled {
                let days = retention.days.withLock { $0 }
                do {
                    let report = try store.prune(now: .now(), historyDays: days.history, auditDays: days.audit)
                    logger.info("records pruned", metadata: ["toold.report": "\(report)", "toold.event": "records"])
                } catch {
                    logger.error("records could not be pruned", metadata: ["toold.error": "\(error)", "toold.event": "records"])
                }
                try? await Task.sleep(for: .seconds(86_400))
            }
        }
    }

    /// Pings the watchdog at half the interval systemd asked for.
    static func startWatchdog(logger: Logger) -> Task<Void, Never>? {
        guard let interval = Systemd.watchdogInterval() else { return nil }
        logger.debug("watchdog enabled", metadata: ["toold.interval": "\(interval)"])
        return Task.detached {
            while !Task.isCancelled {
                Systemd.notify("WATCHDOG=1")
                try? await Task.sleep(for: interval / 2)
            }
        }
    }
}

/// Delivers signals as an async sequence (the signals are blocked from their default action).
// @unchecked: `sources` is set once in init and only kept alive afterwards; the stream is Sendable.
final class SignalStream: @unchecked Sendable {
    let stream: AsyncStream<Int32>
    private let sources: [any DispatchSourceSignal]

    init(signals: [Int32]) {
        let (stream, continuation) = AsyncStream.makeStream(of: Int32.self)
        self.stream = stream
        let queue = DispatchQueue(label: "toold.signals")
        sources = signals.map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: queue)
            source.setEventHandler { continuation.yield(number) }
            source.resume()
            return source
        }
    }
}

/// The process-wide logging setup: the journal when stderr is connected to it, stderr otherwise.
/// The level is shared so a reload can change it for every logger.
enum LogSetup {
    static let level = Mutex<Logger.Level>(.info)

    static func bootstrap(level initial: Logger.Level) {
        level.withLock { $0 = initial }
        let journal = Systemd.stderrIsJournal
        LoggingSystem.bootstrap { label -> any LogHandler in
            if journal { return SharedLevelHandler(JournalLogHandler(label: label, level: .trace)) }
            return SharedLevelHandler(StreamLogHandler.standardError(label: label))
        }
    }
}

/// Wraps a handler so its level follows `LogSetup.level`.
struct SharedLevelHandler<Inner: LogHandler>: LogHandler {
    var inner: Inner
    init(_ inner: Inner) {
        self.inner = inner
        self.inner.logLevel = .trace
    }
    var metadataProvider: Logger.MetadataProvider? {
        get { inner.metadataProvider }
        set { inner.metadataProvider = newValue }
    }
    var metadata: Logger.Metadata {
        get { inner.metadata }
        set { inner.metadata = newValue }
    }
    var logLevel: Logger.Level {
        get { LogSetup.level.withLock { $0 } }
        // The daemon's level is one setting (config `log_level`, changed by reload), not per logger.
        set {}
    }
    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { inner[metadataKey: key] }
        set { inner[metadataKey: key] = newValue }
    }
    func log(event: LogEvent) { inner.log(event: event) }
}

extension Result {
    var isSuccess: Bool {
        if case .success = self { return true }
        return false
    }
    var errorText: String? {
        if case .failure(let error) = self { return "\(error)" }
        return nil
    }
}

/// History and audit retention in days; a reload changes them for the next pruning.
final class Retention: Sendable {
    let days: Mutex<(history: Int, audit: Int)>
    init(history: Int, audit: Int) { days = Mutex((history, audit)) }
}

/// What the reloads (SIGHUP) say to systemd, in order. Each SIGHUP is a generation; only the latest one's
/// outcome says READY=1 and sets STATUS= (an older reload still loading its policy must not announce itself
/// after a newer one failed or finished), and nothing says READY=1 after STOPPING=1 (both under one lock).
final class ReloadState: Sendable {
    private let state = Mutex<(generation: Int, stopping: Bool)>((0, false))

    /// A SIGHUP: its generation.
    func begin() -> Int { state.withLock { s in s.generation += 1; return s.generation } }

    var isStopping: Bool { state.withLock { $0.stopping } }

    /// Sends `message` when `generation` is the latest reload and the daemon is not stopping.
    func notifyIfLatest(_ generation: Int, _ message: String) {
        state.withLock { s in
            guard !s.stopping, s.generation == generation else { return }
            Systemd.notify(message)
        }
    }

    /// The daemon stops: `message` (STOPPING=1) goes out, and no reload notifies after it.
    func stop(_ message: String) {
        state.withLock { s in
            s.stopping = true
            Systemd.notify(message)
        }
    }
}
