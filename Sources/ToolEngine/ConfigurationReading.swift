import ToolProtocol

/// A config file that cannot be used: names the file, the field and why.
public struct ConfigurationError: Error, CustomStringConvertible, Sendable, Equatable {
    public var file: String
    public var field: String?
    public var reason: String
    public var description: String {
        if let field { return "config \(file): \"\(field)\": \(reason)" }
        return "config \(file): \(reason)"
    }
    public init(file: String, field: String? = nil, reason: String) {
        self.file = file
        self.field = field
        self.reason = reason
    }
}

/// Reads typed fields of one JSON object, turning every mismatch into an error that names the field.
public struct FieldReader {
    public let file: String
    public let object: [String: JSONValue]
    public var prefix = ""

    public init(file: String, object: [String: JSONValue], prefix: String = "") {
        self.file = file
        self.object = object
        self.prefix = prefix
    }

    public func rejectUnknown(_ known: Set<String>) throws(ConfigurationError) {
        if let unknown = object.keys.sorted().first(where: { !known.contains($0) }) {
            throw ConfigurationError(
                file: file, field: prefix + unknown, reason: "unknown setting; known: \(known.sorted().joined(separator: ", "))")
        }
    }

    public func string(_ key: String, _ apply: (String) throws(ConfigurationError) -> Void) throws(ConfigurationError) {
        guard let value = object[key] else { return }
        guard case .string(let s) = value, !s.isEmpty else {
            throw ConfigurationError(file: file, field: prefix + key, reason: "must be a non-empty string, got \(value.typeName)")
        }
        try apply(s)
    }

    public func integer(_ key: String, in range: ClosedRange<Int>, _ apply: (Int) -> Void) throws(ConfigurationError) {
        guard let value = object[key] else { return }
        guard let i = value.int64Value, value.typeName == "integer" else {
            throw ConfigurationError(file: file, field: prefix + key, reason: "must be an integer, got \(value.typeName)")
        }
        guard i >= Int64(range.lowerBound), i <= Int64(range.upperBound) else {
            throw ConfigurationError(
                file: file, field: prefix + key, reason: "must be between \(range.lowerBound) and \(range.upperBound), got \(i)")
        }
        apply(Int(i))
    }

    public func bool(_ key: String, _ apply: (Bool) -> Void) throws(ConfigurationError) {
        guard let value = object[key] else { return }
        guard case .bool(let b) = value else {
            throw ConfigurationError(file: file, field: prefix + key, reason: "must be true or false, got \(value.typeName)")
        }
        apply(b)
    }
}
