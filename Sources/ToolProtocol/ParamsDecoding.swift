/// Types whose JSON form has a closed set of fields; unknown fields in params are refused so a typo
/// (`timeout` for `timeout_ms`) is an error instead of a silently ignored setting.
public protocol ClosedWireType: Decodable {
    static var knownFields: [String] { get }
    /// Nested closed objects: field name → their known fields.
    static var nestedFields: [String: [String]] { get }
}

extension ClosedWireType {
    public static var nestedFields: [String: [String]] { [:] }
}

extension ExecParams: ClosedWireType {
    public static var knownFields: [String] { CodingKeys.allCases.map(\.stringValue) }
    public static var nestedFields: [String: [String]] { ["limits": ExecLimits.knownFields] }
}
extension ExecLimits: ClosedWireType {
    public static var knownFields: [String] { CodingKeys.allCases.map(\.stringValue) }
}
extension ExecCancelParams: ClosedWireType {
    public static var knownFields: [String] { CodingKeys.allCases.map(\.stringValue) }
}

/// Params of a method that takes none (`daemon.status`): absent or `{}`.
public struct NoParams: ClosedWireType, Sendable {
    public static var knownFields: [String] { [] }
    public init() {}
}

public enum ParamsDecoding {
    /// Decodes by-name params into `T`. Absent params decode as `{}`. Every problem becomes an
    /// invalid-params error whose `data.errors` carry JSON Pointers into params.
    public static func decode<T: ClosedWireType>(_ type: T.Type, from params: JSONValue?) throws(RPCError) -> T {
        let value = params ?? .object([:])
        guard case .object(let o) = value else {
            throw .invalidParams(path: "", "params must be an object (by-name), got \(value.typeName)")
        }
        var errors: [ParamError] = []
        for key in o.keys.sorted() where !T.knownFields.contains(key) {
            errors.append(ParamError(path: "/" + escape(key), message: "unknown field; known: \(T.knownFields.sorted().joined(separator: ", "))"))
        }
        for (field, known) in T.nestedFields {
            guard case .object(let nested)? = o[field] else { continue }
            for key in nested.keys.sorted() where !known.contains(key) {
                errors.append(ParamError(path: "/\(field)/" + escape(key), message: "unknown field; known: \(known.sorted().joined(separator: ", "))"))
            }
        }
        if !errors.isEmpty { throw .invalidParams(errors) }
        do {
            return try JSONCoding.fromJSON(T.self, value)
        } catch let error as DecodingError {
            // The decoder reports a number that does not fit its field (a fraction, a negative for an unsigned
            // field, beyond 64 bits) as "not valid JSON" at the root; the number itself says where.
            if case .dataCorrupted(let context) = error, context.codingPath.isEmpty, let misfit = numberMisfit(in: value) {
                throw .invalidParams([misfit])
            }
            throw .invalidParams([paramError(error)])
        } catch {
            throw .invalidParams(path: "", "\(error)")
        }
    }

    /// The number in params (keys in order; free-form `arguments` skipped) no integer field takes: first a
    /// fraction or one beyond 64 bits, else a negative (which only the unsigned size fields refuse this way; the
    /// signed ones decode and are range-checked). Integral doubles within 2^53 (`500.0`, `1e6`) decode fine.
    static func numberMisfit(in value: JSONValue) -> ParamError? {
        misfit(in: value, path: "", negatives: false) ?? misfit(in: value, path: "", negatives: true)
    }

    private static func misfit(in value: JSONValue, path: String, negatives: Bool) -> ParamError? {
        switch value {
        case .int(let n) where negatives && n < 0:
            return ParamError(path: path, message: "must not be negative, got \(n)")
        case .double(let d) where !negatives && !(d.rounded() == d && abs(d) < 9_007_199_254_740_992):
            return ParamError(
                path: path,
                message: d.rounded() == d ? "is out of range: at most \(Int64.max)" : "must be an integer, got \(d)")
        case .double(let d) where negatives && d < 0:
            return ParamError(path: path, message: "must not be negative, got \(d)")
        case .array(let items):
            for (i, item) in items.enumerated() {
                if let found = misfit(in: item, path: path + "/\(i)", negatives: negatives) { return found }
            }
            return nil
        case .object(let members):
            for key in members.keys.sorted() where !(path.isEmpty && key == "arguments") {
                if let found = misfit(in: members[key]!, path: path + "/" + escape(key), negatives: negatives) { return found }
            }
            return nil
        default:
            return nil
        }
    }

    /// The values of the wire's closed string sets, by Swift type name, for errors that list them.
    static let enumValues: [String: [String]] = [
        "ToolMode": ToolMode.allCases.map(\.rawValue), "ToolCategory": ToolCategory.allCases.map(\.rawValue),
        "ToolRisk": ToolRisk.allCases.map(\.rawValue), "ExecStatus": ExecStatus.allCases.map(\.rawValue),
        "ExecutionStatus": ExecutionStatus.allCases.map(\.rawValue), "ExecutionMethod": ExecutionMethod.allCases.map(\.rawValue),
    ]

    /// "Cannot initialize ToolMode from invalid String value root" (the decoder's words) as the values it takes.
    static func enumMessage(_ description: String) -> String? {
        let prefix = "Cannot initialize ", middle = " from invalid String value "
        guard description.hasPrefix(prefix), let split = description.firstRange(of: middle) else { return nil }
        let type = String(description[description.index(description.startIndex, offsetBy: prefix.count)..<split.lowerBound])
        guard let values = enumValues[type] else { return nil }
        return "must be one of \(values.joined(separator: ", ")); got \"\(description[split.upperBound...])\""
    }

    /// The `{path, message}` entry for a decoding failure (params, manifests).
    public static func paramError(_ error: DecodingError) -> ParamError {
        switch error {
        case .keyNotFound(let key, let context):
            return ParamError(path: pointer(context.codingPath + [key]), message: "missing required field \"\(key.stringValue)\"")
        case .typeMismatch(let type, let context):
            return ParamError(path: pointer(context.codingPath), message: "expected \(jsonTypeName(type))")
        case .valueNotFound(let type, let context):
            return ParamError(path: pointer(context.codingPath), message: "must be \(jsonTypeName(type)), not null")
        case .dataCorrupted(let context):
            return ParamError(path: pointer(context.codingPath), message: enumMessage(context.debugDescription) ?? context.debugDescription)
        @unknown default:
            return ParamError(path: "", message: "\(error)")
        }
    }

    static func jsonTypeName(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: return "a string"
        case is Bool.Type: return "a boolean"
        case is Int.Type, is Int32.Type, is Int64.Type, is UInt64.Type, is UInt32.Type: return "an integer"
        case is Double.Type: return "a number"
        default:
            let name = "\(type)"
            if name.hasPrefix("Array") { return "an array" }
            if name.hasPrefix("Dictionary") { return "an object" }
            return "an object"
        }
    }

    /// JSON Pointer (RFC 6901) of a coding path.
    public static func pointer(_ path: [any CodingKey]) -> String {
        path.map { key in "/" + (key.intValue.map(String.init) ?? escape(key.stringValue)) }.joined()
    }

    public static func escape(_ token: String) -> String {
        token.replacing("~", with: "~0").replacing("/", with: "~1")
    }
}
