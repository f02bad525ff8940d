import Foundation
import Sandbox
import ToolEngine
import ToolProtocol

extension Dispatcher {
    /// `daemon.status`: version, uptime, the caller, what the sandbox can do here, executions in progress.
    static func statusRoutes(startedAt: ContinuousClock.Instant, executions: ExecutionService) -> [String: MethodHandler] {
        [
            RPCMethod.daemonStatus: { params, context throws(RPCError) in
                _ = try ParamsDecoding.decode(NoParams.self, from: params)
                let runtime = executions.runtime
                return try encodeResult(
                    DaemonStatusResult(
                        version: TooldVersion.current,
                        uptimeMs: Int64((ContinuousClock.now - startedAt) / .milliseconds(1)),
                        pid: getpid(),
                        caller: context.caller,
                        cgroup: CgroupStatus(layout: runtime.cgroupLayout.rawValue, controllers: runtime.usableControllers),
                        sandbox: SandboxFeatures(
                            userNamespaces: runtime.userNamespacesAvailable, seccomp: runtime.seccompAvailable,
                            prepared: PreparedSandboxes(runtime.preparedSandboxes)),
                        executions: executions.counts(perUser: context.caller.admin),
                        policy: executions.policy.status,
                        scheduler: SchedulerStatus(executions.scheduler.settings)))
            }
        ]
    }
}

extension PreparedSandboxes {
    init(_ pool: (poolSize: Int, ready: Int, used: Int, missed: Int)) {
        self.init(poolSize: pool.poolSize, ready: pool.ready, used: pool.used, missed: pool.missed)
    }
}

extension SchedulerStatus {
    init(_ settings: Scheduler.Settings) {
        self.init(
            maxRunning: settings.maxRunning, maxQueued: settings.maxQueued, maxQueuedPerUser: settings.maxQueuedPerUser,
            queueTimeoutMs: settings.queueTimeoutMs)
    }
}
