import Synchronization
import ToolProtocol

/// Counts admitted calls per user and per (user, tool) on sliding windows, for `rate` and `cooldown_ms`.
/// A refusal says exactly when the call would be admitted: when the oldest call that fills a window
/// leaves it, or when the cooldown ends. Refused calls are not counted. Timestamps older than an hour
/// are dropped, so memory is bounded by the calls of the last hour.
final class RateBook: Sendable {
    private struct Key: Hashable {
        var uid: UInt32
        var tool: String?
    }
    private struct State {
        var log: [Key: [Int64]] = [:]
        var admitsSinceSweep = 0
    }
    private let state = Mutex(State())
    static let minute: Int64 = 60_000
    static let hour: Int64 = 3_600_000

    struct Refusal: Error {
        var retryAfterMs: Int
        var why: String
        var rule: String
    }

    /// Admits and counts the call, or says why not and for how long.
    func admit(uid: UInt32, tool: String, policy: EffectivePolicy, now: Int64) -> Refusal? {
        let rates = policy.rates
        let cooldown = policy.cooldownMs
        guard rates.perMinute != nil || rates.perHour != nil || rates.perToolPerMinute != nil || rates.perToolPerHour != nil
            || cooldown != nil
        else { return nil }
        return state.withLock { s -> Refusal? in
            let userKey = Key(uid: uid, tool: nil)
            let toolKey = Key(uid: uid, tool: tool)
            Self.prune(&s.log[userKey, default: []], now: now)
            Self.prune(&s.log[toolKey, default: []], now: now)
            let userLog = s.log[userKey]!
            let toolLog = s.log[toolKey]!
            var worst: Refusal? = nil
            func consider(_ refusal: Refusal?) {
                guard let refusal else { return }
                if worst == nil || refusal.retryAfterMs > worst!.retryAfterMs { worst = refusal }
            }
            if let cooldown, let last = toolLog.last, now - last < Int64(cooldown.value) {
                consider(
                    Refusal(
                        retryAfterMs: Int(last + Int64(cooldown.value) - now),
                        why: "cooldown of \(cooldown.value) ms between two calls of \"\(tool)\"", rule: "\(cooldown.rule) cooldown_ms"))
            }
            consider(Self.window(userLog, rates.perMinute, Self.minute, now, "calls per minute", "rate.per_minute"))
            consider(Self.window(userLog, rates.perHour, Self.hour, now, "calls per hour", "rate.per_hour"))
            consider(
                Self.window(toolLog, rates.perToolPerMinute, Self.minute, now, "calls of \"\(tool)\" per minute", "rate.per_tool_per_minute"))
            consider(
                Self.window(toolLog, rates.perToolPerHour, Self.hour, now, "calls of \"\(tool)\" per hour", "rate.per_tool_per_hour"))
            if worst == nil {
                s.log[userKey]!.append(now)
                s.log[toolKey]!.append(now)
                s.admitsSinceSweep += 1
                if s.admitsSinceSweep >= 4096 {
                    s.admitsSinceSweep = 0
                    for key in Array(s.log.keys) {
                        Self.prune(&s.log[key]!, now: now)
                        if s.log[key]!.isEmpty { s.log.removeValue(forKey: key) }
                    }
                }
            }
            return worst
        }
    }

    /// Drops timestamps older than the longest window (the log is in time order).
    private static func prune(_ log: inout [Int64], now: Int64) {
        guard let first = log.first, now - first >= hour else { return }
        log.removeFirst(firstIndex(in: log, within: hour, of: now))
    }

    /// The index of the first timestamp less than `length` before `now` (binary search: the log is sorted).
    private static func firstIndex(in log: [Int64], within length: Int64, of now: Int64) -> Int {
        var low = 0
        var high = log.count
        while low < high {
            let mid = (low + high) / 2
            if now - log[mid] >= length { low = mid + 1 } else { high = mid }
        }
        return low
    }

    /// A full window: the call fits again when the call at `count - limit` leaves it.
    private static func window(
        _ log: [Int64], _ limit: PolicySetting<Int>?, _ length: Int64, _ now: Int64, _ what: String, _ field: String
    ) -> Refusal? {
        guard let limit else { return nil }
        let start = firstIndex(in: log, within: length, of: now)
        let count = log.count - start
        guard count >= limit.value else { return nil }
        let freeing = log[log.count - limit.value]
        return Refusal(
            retryAfterMs: Int(freeing + length - now), why: "\(limit.value) \(what) reached", rule: "\(limit.rule) \(field)")
    }
}
