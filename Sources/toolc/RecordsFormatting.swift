import ArgumentParser
import ToolProtocol

#if canImport(Glibc)
    import Glibc
#endif

/// Times and figures of the records commands (`history`, `show`, `metrics`) as people read them. The
/// daemon speaks UTC (RFC 3339); tables show local time (`TZ` decides, as for `date`).
enum RecordsText {
    /// `--since`/`--until`: a duration ago (`90m`, `24h`, `7d`, `1h30m`; units s, m, h, d, w) or an RFC 3339
    /// time (`2026-11-21T09:30:00Z`, any offset). A usage error names the flag and both forms.
    static func time(_ text: String, flag: String, now: Timestamp) throws -> Timestamp {
        if let ago = durationMilliseconds(text) { return now.adding(milliseconds: -ago) }
        if let time = Timestamp(rfc3339: text) { return time }
        throw ValidationError(
            "\(flag) \(text): expected a duration ago (90m, 24h, 7d) or an RFC 3339 time (2026-11-21T09:30:00Z)")
    }

    /// `90m`, `24h`, `7d`, `1h30m` in milliseconds; nil when `text` is not such a duration.
    static func durationMilliseconds(_ text: String) -> Int64? {
        let units: [Character: Int64] = ["s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000]
        var total: Int64 = 0
        var digits = ""
        for c in text {
            if c.isASCII, c.isNumber {
                digits.append(c)
            } else if let unit = units[c], let value = Int64(digits) {
                let (part, overflow) = value.multipliedReportingOverflow(by: unit)
                guard !overflow, total <= Int64.max - part else { return nil }
                total += part
                digits = ""
            } else {
                return nil
            }
        }
        return digits.isEmpty && !text.isEmpty ? total : nil
    }

    /// `2026-11-21 10:30:01` in local time (`.250` appended with `milliseconds`).
    static func local(_ time: Timestamp, milliseconds: Bool = false) -> String {
        let ms = time.millisecondsSince1970
        let secondsSinceEpoch = ms >= 0 ? ms / 1000 : (ms - 999) / 1000
        var seconds = time_t(secondsSinceEpoch)
        var parts = tm()
        guard localtime_r(&seconds, &parts) != nil else { return time.rfc3339 }
        var text =
            "\(pad(Int(parts.tm_year) + 1900, 4))-\(pad(Int(parts.tm_mon) + 1, 2))-\(pad(Int(parts.tm_mday), 2)) "
            + "\(pad(Int(parts.tm_hour), 2)):\(pad(Int(parts.tm_min), 2)):\(pad(Int(parts.tm_sec), 2))"
        if milliseconds { text += ".\(pad(Int(ms - secondsSinceEpoch * 1000), 3))" }
        return text
    }

    static func pad(_ value: Int, _ width: Int) -> String {
        let digits = String(value)
        return String(repeating: "0", count: max(0, width - digits.count)) + digits
    }

    /// A duration in a table cell: `12ms`, `1.2s`, `3m5s`; `-` when absent.
    static func milliseconds(_ ms: Int?) -> String {
        guard let ms else { return "-" }
        if ms < 1000 { return "\(ms)ms" }
        if ms < 60_000 { return "\(ms / 1000).\(ms % 1000 / 100)s" }
        return formatDuration(ms: Int64(ms))
    }

    /// A period's length in its largest whole unit (`24h`, `7d`, `90m`), else as `formatDuration` prints it.
    static func period(_ ms: Int64) -> String {
        for (unit, size) in [("d", Int64(86_400_000)), ("h", 3_600_000), ("m", 60_000), ("s", 1000)]
        where ms > 0 && ms % size == 0 {
            // 24h reads better than 1d; 48h is 2d.
            if unit == "d" && ms / size < 2 { continue }
            return "\(ms / size)\(unit)"
        }
        return formatDuration(ms: ms)
    }

    /// A ratio as a percentage with one decimal: `91.7`; `-` when absent.
    static func percent(_ ratio: Double?) -> String {
        guard let ratio, ratio.isFinite else { return "-" }
        return oneDecimal(ratio * 100)
    }

    static func oneDecimal(_ value: Double) -> String {
        let tenths = Int64((value * 10).rounded())
        let sign = tenths < 0 ? "-" : ""
        return "\(sign)\(tenths.magnitude / 10).\(tenths.magnitude % 10)"
    }

    /// A relative change as a signed whole percentage: `+20%`, `-5%`, `±0%`; nil when there is no ratio.
    static func relativeChange(_ change: MetricChange?) -> String? {
        guard let relative = change?.relative, relative.isFinite else { return nil }
        let percent = Int64((relative * 100).rounded())
        return percent == 0 ? "±0%" : percent > 0 ? "+\(percent)%" : "\(percent)%"
    }

    /// Bytes, with a binary unit when large: `1081344 bytes (1.0 MiB)`.
    static func bytes(_ value: UInt64) -> String {
        for (unit, shift) in [("GiB", 30), ("MiB", 20), ("KiB", 10)] where value >= 1 << shift {
            return "\(value) bytes (\(oneDecimal(Double(value) / Double(UInt64(1) << UInt64(shift)))) \(unit))"
        }
        return "\(value) bytes"
    }

    /// `ana` or `ana (1000)` when the name is not just the uid.
    static func user(_ name: String, _ uid: UInt32) -> String {
        name == String(uid) ? name : "\(name) (\(uid))"
    }
}
