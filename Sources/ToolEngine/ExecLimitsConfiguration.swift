/// Default and maximum of every execution limit. A request above a maximum is refused with the maximum named.
public struct ExecLimitsConfiguration: Sendable, Equatable {
    public struct Limit<T: Sendable & Equatable & Comparable>: Sendable, Equatable {
        public var defaultValue: T
        public var maximum: T
        public init(defaultValue: T, maximum: T) {
            self.defaultValue = defaultValue
            self.maximum = maximum
        }
    }
    public var timeoutMs = Limit(defaultValue: 30_000, maximum: 600_000)
    public var memoryBytes = Limit<UInt64>(defaultValue: 256 << 20, maximum: 4 << 30)
    public var pids = Limit(defaultValue: 64, maximum: 1024)
    public var cpuMillicores = Limit(defaultValue: 1000, maximum: 4000)
    public var outputBytes = Limit(defaultValue: 1 << 20, maximum: 64 << 20)
    public var fileBytes = Limit<UInt64>(defaultValue: 64 << 20, maximum: 1 << 30)
    public var tmpBytes = Limit<UInt64>(defaultValue: 64 << 20, maximum: 1 << 30)

    public init() {}

    public static let names = ["timeout_ms", "memory_bytes", "pids", "cpu_millicores", "output_bytes", "file_bytes", "tmp_bytes"]
}


import Sandbox

extension ExecLimitsConfiguration {
    /// The limits of a call that asks for none (before policy caps): what prepared sandboxes are set up with.
    public var defaultSandboxLimits: SandboxLimits {
        SandboxLimits(
            memoryBytes: memoryBytes.defaultValue, pids: pids.defaultValue, cpuMillicores: cpuMillicores.defaultValue,
            outputBytes: outputBytes.defaultValue, fileBytes: fileBytes.defaultValue, tmpBytes: tmpBytes.defaultValue)
    }
}
