import ToolProtocol

/// Index of a compiled subschema in `CompiledSchema`'s node table. References are indices, so `$ref`
/// cycles need no reference counting and the table is a plain immutable array.
typealias NodeID = Int

/// One compiled subschema: every keyword already type-checked, every reference already resolved to a
/// `NodeID`, every regular expression already compiled. Keywords are grouped by the instance type they
/// apply to, so validation skips a whole group with one nil check.
struct SchemaRules: Sendable {
    /// JSON Pointer of this subschema in the schema document; used in compile errors.
    var location: String
    /// Set for the boolean schemas `true` and `false`; all other fields are then unused.
    var boolean: Bool?
    /// Index of the schema resource (root or `$id`) this subschema belongs to; drives `$dynamicRef`.
    var resource = -1

    var types: JSONTypeSet?
    var constValue: JSONValue?
    var enumValues: [JSONValue]?
    // Held by reference: validation reads them on every call, and copying a struct out of the table
    // would retain each of its fields.
    var number: Shared<NumberRules>?
    var string: Shared<StringRules>?
    var array: Shared<ArrayRules>?
    var object: Shared<ObjectRules>?

    var ref: NodeID?
    var dynamicRef: DynamicReference?
    var allOf: [NodeID] = []
    var anyOf: [NodeID] = []
    var oneOf: [NodeID] = []
    var not: NodeID?
    var conditional: Conditional?
    var unevaluatedItems: NodeID?
    var unevaluatedProperties: NodeID?

    init(location: String) {
        self.location = location
    }

    init(boolean: Bool) {
        self.location = ""
        self.boolean = boolean
    }

    /// Subschemas applied to the same instance location: a cycle through these never terminates.
    var inPlaceApplicators: [NodeID] {
        var result = allOf + anyOf + oneOf
        if let ref { result.append(ref) }
        if let dynamicRef { result.append(dynamicRef.target) }
        if let not { result.append(not) }
        if let conditional {
            result.append(conditional.condition)
            if let then = conditional.then { result.append(then) }
            if let otherwise = conditional.otherwise { result.append(otherwise) }
        }
        if let object { result += object.value.dependentSchemas.map(\.schema) }
        return result
    }
}

/// The seven JSON Schema type names as a bit set. An instance's own set has `integer` and `number` both
/// set for integral numbers, so `types.isDisjoint(with:)` is the whole `type` check.
struct JSONTypeSet: OptionSet, Sendable {
    let rawValue: UInt8

    static let null = JSONTypeSet(rawValue: 1 << 0)
    static let boolean = JSONTypeSet(rawValue: 1 << 1)
    static let object = JSONTypeSet(rawValue: 1 << 2)
    static let array = JSONTypeSet(rawValue: 1 << 3)
    static let number = JSONTypeSet(rawValue: 1 << 4)
    static let string = JSONTypeSet(rawValue: 1 << 5)
    static let integer = JSONTypeSet(rawValue: 1 << 6)

    /// In the order messages list them.
    static let named: [(String, JSONTypeSet)] = [
        ("null", .null), ("boolean", .boolean), ("integer", .integer), ("number", .number), ("string", .string),
        ("array", .array), ("object", .object),
    ]

    init(rawValue: UInt8) { self.rawValue = rawValue }

    init?(name: String) {
        guard let entry = Self.named.first(where: { $0.0 == name }) else { return nil }
        self = entry.1
    }

    init(of value: JSONValue) {
        switch value {
        case .null: self = .null
        case .bool: self = .boolean
        case .object: self = .object
        case .array: self = .array
        case .string: self = .string
        case .int: self = [.integer, .number]
        case .double(let d): self = d.rounded() == d && d.isFinite ? [.integer, .number] : .number
        }
    }

    /// `"integer or string"`.
    var names: String {
        let list = Self.named.filter { contains($0.1) }.map(\.0)
        if list.count <= 2 { return list.joined(separator: " or ") }
        return list.dropLast().joined(separator: ", ") + " or " + list.last!
    }
}

/// A numeric keyword's operand, kept exact when it is an integer so integer instances compare exactly.
struct NumberLimit: Sendable {
    let double: Double
    let integer: Int64?

    init(_ value: JSONValue) {
        double = value.doubleValue ?? 0
        if case .int(let i) = value { integer = i } else { integer = nil }
    }

    /// As written in messages: `18`, `0.5`.
    var text: String { describeNumber(integer.map(JSONValue.int) ?? .double(double)) }

    /// -1, 0 or 1 as `value` is below, at or above the limit.
    func compare(_ value: JSONValue) -> Int {
        if case .int(let i) = value, let integer {
            return i < integer ? -1 : (i > integer ? 1 : 0)
        }
        let d = value.doubleValue ?? 0
        return d < double ? -1 : (d > double ? 1 : 0)
    }

    /// Whether `value` is an integral multiple of this (positive) limit. Decimal fractions are not exact in
    /// binary, so a quotient within a relative 1e-14 of an integer counts (`0.0075` is a multiple of `0.0001`).
    func divides(_ value: JSONValue) -> Bool {
        if case .int(let i) = value, let integer { return i % integer == 0 }
        let quotient = (value.doubleValue ?? 0) / double
        guard quotient.isFinite else { return false }
        return abs(quotient - quotient.rounded()) <= max(abs(quotient), 1) * 1e-14
    }
}

/// An immutable value shared by reference.
final class Shared<Value: Sendable>: Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}

struct NumberRules: Sendable {
    var minimum: NumberLimit?
    var maximum: NumberLimit?
    var exclusiveMinimum: NumberLimit?
    var exclusiveMaximum: NumberLimit?
    var multipleOf: NumberLimit?
}

struct StringRules: Sendable {
    var minLength: Int?
    var maxLength: Int?
    var pattern: Pattern?
}

struct ArrayRules: Sendable {
    var minItems: Int?
    var maxItems: Int?
    var uniqueItems = false
    var prefixItems: [NodeID] = []
    var items: NodeID?
    var contains: NodeID?
    var minContains = 1
    /// Whether `minContains` was written (it decides which keyword an error names).
    var minContainsIsExplicit = false
    var maxContains: Int?
}

struct ObjectRules: Sendable {
    struct DependentRequirement: Sendable {
        var property: String
        var required: [String]
    }
    struct DependentSchema: Sendable {
        var property: String
        var schema: NodeID
    }
    struct PatternProperty: Sendable {
        var pattern: Pattern
        var schema: NodeID
    }

    var minProperties: Int?
    var maxProperties: Int?
    var required: [String] = []
    var dependentRequired: [DependentRequirement] = []
    var properties: [String: NodeID] = [:]
    /// `properties` for lookups, knowing which are required; built last by the compiler.
    var propertyTable = PropertyTable([:], required: [])
    /// `required` names that are not also in `properties` (those are counted during the member pass).
    var requiredElsewhere: [String] = []
    var patternProperties: [PatternProperty] = []
    var additionalProperties: NodeID?
    var propertyNames: NodeID?
    var dependentSchemas: [DependentSchema] = []

    /// Whether a pass over the instance's members is needed at all.
    var appliesToMembers: Bool {
        !properties.isEmpty || !patternProperties.isEmpty || additionalProperties != nil
    }
}

struct Conditional: Sendable {
    var condition: NodeID
    var then: NodeID?
    var otherwise: NodeID?
}

/// A compiled `$dynamicRef`. `anchor` is set only when the reference's initial target itself declares the
/// matching `$dynamicAnchor` (the 2020-12 "bookending" rule); otherwise it behaves exactly like `$ref`.
struct DynamicReference: Sendable {
    var target: NodeID
    var anchor: String?
}

/// A number as messages print it: integral values without a fraction.
func describeNumber(_ value: JSONValue) -> String {
    switch value {
    case .int(let i): return String(i)
    case .double(let d):
        if d.rounded() == d, abs(d) < 1e15 { return String(Int64(d)) }
        return String(d)
    default: return describeValue(value)
    }
}

/// A JSON value as messages print it: compact JSON, sorted keys.
func describeValue(_ value: JSONValue) -> String {
    switch value {
    case .int, .double: return describeNumber(value)
    default: return JSONCoding.serializeString(value)
    }
}
