/// Why a schema cannot be compiled: a keyword with a value of the wrong type or range, a pattern that is
/// not a valid regular expression, a reference that does not resolve inside the document, or a cycle of
/// references that would never consume any of the instance.
///
/// `schemaPath` is a JSON Pointer into the schema document (`""` for the root) naming the offending keyword.
public struct SchemaError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What kind of defect the schema has; lets callers react without parsing `reason`.
    public enum Kind: Sendable, Equatable {
        /// A keyword's value has the wrong JSON type or is out of range (`"minLength": "x"`).
        case invalidKeywordValue
        /// `pattern` or a `patternProperties` key is not a valid regular expression.
        case invalidPattern
        /// `$ref` or `$dynamicRef` names a document or anchor not contained in this schema.
        case unresolvableReference
        /// References that loop back to the same schema without moving into the instance.
        case referenceCycle
    }

    public var kind: Kind
    /// JSON Pointer to the offending keyword inside the schema, such as `/properties/age/minimum`.
    public var schemaPath: String
    /// A sentence saying what is wrong and what was expected.
    public var reason: String

    public init(kind: Kind, schemaPath: String, reason: String) {
        self.kind = kind
        self.schemaPath = schemaPath
        self.reason = reason
    }

    public var description: String {
        "invalid schema at \(schemaPath.isEmpty ? "the root" : schemaPath): \(reason)"
    }
}

/// One reason an instance does not satisfy a schema, addressed so that a person or a model can fix it.
///
/// `instancePath` is a JSON Pointer into the instance (`""` for the whole value); `schemaPath` is a JSON
/// Pointer through the schema along the keywords that were applied (a `$ref` appears as a step, as in the
/// specification's `keywordLocation`), ending at the keyword that failed.
public struct ValidationError: Sendable, Equatable, Codable, CustomStringConvertible {
    public var instancePath: String
    public var schemaPath: String
    public var message: String

    public init(instancePath: String, schemaPath: String, message: String) {
        self.instancePath = instancePath
        self.schemaPath = schemaPath
        self.message = message
    }

    /// `"/age: must be >= 18, got 12"`; the root is shown as `(root)`.
    public var description: String {
        "\(instancePath.isEmpty ? "(root)" : instancePath): \(message)"
    }
}
