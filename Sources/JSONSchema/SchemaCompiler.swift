import ToolProtocol

/// Turns a schema document into the node table `CompiledSchema` evaluates.
///
/// Two passes. The first (`scan`) walks every subschema to learn the document's resources (`$id`),
/// anchors (`$anchor`, `$dynamicAnchor`) and the base URI in force at each location, because a `$ref`
/// may point forward. The second (`compile`) builds one `SchemaRules` per subschema location, type-checking
/// each keyword and resolving each reference to a node index; a location is compiled once however many
/// references reach it, which is also what lets recursive schemas terminate.
struct SchemaCompiler {
    /// Base URI of a document without `$id`; only visible in messages about unresolvable references.
    static let defaultBaseURI = "urn:toold:schema"

    static let trueNode: NodeID = 0
    static let falseNode: NodeID = 1

    /// Keywords whose value is a subschema, an array of subschemas, or a map of them. Anything else
    /// (including `enum`, `const` and unknown keywords) is data, so an `$id` inside it is not an identifier.
    static let schemaKeywords = [
        "additionalProperties", "propertyNames", "items", "contains", "not", "if", "then", "else",
        "unevaluatedItems", "unevaluatedProperties",
    ]
    static let schemaArrayKeywords = ["prefixItems", "allOf", "anyOf", "oneOf"]
    static let schemaMapKeywords = ["$defs", "properties", "patternProperties", "dependentSchemas"]

    struct Resource {
        var uri: String
        var location: String
        var dynamicAnchors: [String: String] = [:]
    }

    struct Scope {
        var base: URIReference
        var resource: Int
    }

    let document: JSONValue
    private(set) var resources: [Resource] = []
    private var resourceByURI: [String: Int] = [:]
    /// `"<resource uri>#<name>"` → location, for `$anchor` and `$dynamicAnchor`.
    private var anchors: [String: String] = [:]
    /// Base URI and resource in force at every subschema location found by the scan.
    private var scopes: [String: Scope] = [:]
    private var nodes: [SchemaRules?] = [SchemaRules(boolean: true), SchemaRules(boolean: false)]
    private var nodeByLocation: [String: NodeID] = [:]

    init(document: JSONValue) {
        self.document = document
    }

    /// The compiled table, the root's index, and per resource its `$dynamicAnchor` name → node.
    mutating func compileDocument() throws(SchemaError) -> (
        nodes: [SchemaRules], root: NodeID, dynamicAnchors: [[String: NodeID]]
    ) {
        try scan(document, at: "", in: Scope(base: URIReference(parsing: Self.defaultBaseURI), resource: -1))
        let root = try compile(document, at: "")
        // Every dynamic anchor is a potential `$dynamicRef` target chosen at run time, so compile them all.
        var dynamicAnchors: [[String: NodeID]] = []
        for resource in resources {
            var table: [String: NodeID] = [:]
            for (name, location) in resource.dynamicAnchors {
                table[name] = try compile(try value(at: location), at: location)
            }
            dynamicAnchors.append(table)
        }
        let table = nodes.map { $0! }
        try Self.rejectInPlaceCycles(table)
        return (table, root, dynamicAnchors)
    }

    // MARK: - Pass 1: resources and anchors

    private mutating func scan(_ value: JSONValue, at location: String, in outer: Scope) throws(SchemaError) {
        guard case .object(let object) = value else { return }
        var scope = outer
        if let id = object["$id"] {
            guard case .string(let text) = id else {
                throw invalid(location, "$id", "must be a string, got \(id.typeName)")
            }
            var uri = URIReference(parsing: text).resolved(against: outer.base)
            uri.fragment = nil
            let key = uri.withoutFragment
            guard resourceByURI[key] == nil else {
                throw invalid(location, "$id", "\"\(text)\" identifies another subschema of this document too")
            }
            resourceByURI[key] = resources.count
            resources.append(Resource(uri: key, location: location))
            scope = Scope(base: uri, resource: resources.count - 1)
        } else if location.isEmpty {
            resourceByURI[Self.defaultBaseURI] = 0
            resources.append(Resource(uri: Self.defaultBaseURI, location: ""))
            scope.resource = 0
        }
        scopes[location] = scope
        let resourceURI = resources[scope.resource].uri
        for keyword in ["$anchor", "$dynamicAnchor"] {
            guard let anchor = object[keyword] else { continue }
            guard case .string(let name) = anchor, Self.isValidAnchorName(name) else {
                throw invalid(location, keyword, "must be a plain name (a letter or _, then letters, digits, -, _ or .)")
            }
            anchors[resourceURI + "#" + name] = location
            if keyword == "$dynamicAnchor" { resources[scope.resource].dynamicAnchors[name] = location }
        }
        for keyword in Self.schemaKeywords {
            if let child = object[keyword] { try scan(child, at: location + "/" + keyword, in: scope) }
        }
        for keyword in Self.schemaArrayKeywords {
            guard case .array(let children)? = object[keyword] else { continue }
            for (index, child) in children.enumerated() {
                try scan(child, at: "\(location)/\(keyword)/\(index)", in: scope)
            }
        }
        for keyword in Self.schemaMapKeywords {
            guard case .object(let children)? = object[keyword] else { continue }
            for (name, child) in children {
                try scan(child, at: location + "/" + keyword + "/" + JSONPointer.escape(name), in: scope)
            }
        }
    }

    private static func isValidAnchorName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, first == "_" || (first.isASCII && first.properties.isAlphabetic)
        else { return false }
        return name.unicodeScalars.allSatisfy { scalar in
            scalar.isASCII && (scalar.properties.isAlphabetic || ("0"..."9").contains(scalar) || "-_.".unicodeScalars.contains(scalar))
        }
    }

    // MARK: - Pass 2: nodes

    private mutating func compile(_ value: JSONValue, at location: String) throws(SchemaError) -> NodeID {
        if let existing = nodeByLocation[location] { return existing }
        let object: [String: JSONValue]
        switch value {
        case .bool(let flag): return flag ? Self.trueNode : Self.falseNode
        case .object(let members): object = members
        default:
            throw SchemaError(
                kind: .invalidKeywordValue, schemaPath: location,
                reason: "a schema must be an object or a boolean, got \(value.typeName)")
        }
        let id = nodes.count
        nodes.append(nil)
        nodeByLocation[location] = id

        let scope = scope(at: location)
        var rules = SchemaRules(location: location)
        rules.resource = scope.resource
        var reader = KeywordReader(object: object, location: location)

        rules.types = try reader.types()
        rules.constValue = object["const"]
        rules.enumValues = try reader.array("enum")
        rules.number = try reader.numberRules().map(Shared.init)
        rules.string = try reader.stringRules().map(Shared.init)

        if let text = try reader.string("$ref") {
            rules.ref = try compileReference(text, keyword: "$ref", from: location, base: scope.base).node
        }
        if let text = try reader.string("$dynamicRef") {
            rules.dynamicRef = try compileDynamicReference(text, from: location, base: scope.base)
        }
        rules.allOf = try compileSchemaArray(object, "allOf", at: location)
        rules.anyOf = try compileSchemaArray(object, "anyOf", at: location)
        rules.oneOf = try compileSchemaArray(object, "oneOf", at: location)
        rules.not = try compileSchema(object, "not", at: location)
        if let condition = try compileSchema(object, "if", at: location) {
            rules.conditional = Conditional(
                condition: condition, then: try compileSchema(object, "then", at: location),
                otherwise: try compileSchema(object, "else", at: location))
        } else {
            // `then` and `else` without `if` do nothing, but a malformed one is still a schema defect.
            _ = try compileSchema(object, "then", at: location)
            _ = try compileSchema(object, "else", at: location)
        }
        rules.array = try arrayRules(object, reader: &reader, at: location).map(Shared.init)
        rules.object = try objectRules(object, reader: &reader, at: location).map(Shared.init)
        rules.unevaluatedItems = try compileSchema(object, "unevaluatedItems", at: location)
        rules.unevaluatedProperties = try compileSchema(object, "unevaluatedProperties", at: location)
        // `$defs` apply to nothing by themselves; compiling them anyway reports their defects up front.
        _ = try compileSchemaMap(object, "$defs", at: location)

        nodes[id] = rules
        return id
    }

    private mutating func arrayRules(
        _ object: [String: JSONValue], reader: inout KeywordReader, at location: String
    ) throws(SchemaError) -> ArrayRules? {
        var rules = ArrayRules()
        rules.minItems = try reader.count("minItems")
        rules.maxItems = try reader.count("maxItems")
        rules.uniqueItems = try reader.bool("uniqueItems") ?? false
        rules.prefixItems = try compileSchemaArray(object, "prefixItems", at: location)
        rules.items = try compileSchema(object, "items", at: location)
        rules.contains = try compileSchema(object, "contains", at: location)
        if let minContains = try reader.count("minContains") {
            rules.minContains = minContains
            rules.minContainsIsExplicit = true
        }
        rules.maxContains = try reader.count("maxContains")
        if rules.contains == nil {
            // Without `contains`, minContains and maxContains are ignored.
            rules.minContainsIsExplicit = false
            rules.maxContains = nil
        }
        let isEmpty =
            rules.minItems == nil && rules.maxItems == nil && !rules.uniqueItems && rules.prefixItems.isEmpty
            && rules.items == nil && rules.contains == nil
        return isEmpty ? nil : rules
    }

    private mutating func objectRules(
        _ object: [String: JSONValue], reader: inout KeywordReader, at location: String
    ) throws(SchemaError) -> ObjectRules? {
        var rules = ObjectRules()
        rules.minProperties = try reader.count("minProperties")
        rules.maxProperties = try reader.count("maxProperties")
        rules.required = try reader.stringArray("required") ?? []
        if let dependencies = try reader.object("dependentRequired") {
            for (property, names) in dependencies.sorted(by: { $0.key < $1.key }) {
                let path = location + "/dependentRequired/" + JSONPointer.escape(property)
                guard let required = KeywordReader.strings(names) else {
                    throw SchemaError(
                        kind: .invalidKeywordValue, schemaPath: path, reason: "must be an array of strings")
                }
                rules.dependentRequired.append(.init(property: property, required: required))
            }
        }
        rules.properties = try compileSchemaMap(object, "properties", at: location)
        if let patterns = try reader.object("patternProperties") {
            for source in patterns.keys.sorted() {
                let path = location + "/patternProperties/" + JSONPointer.escape(source)
                guard let pattern = Pattern(source) else {
                    throw SchemaError(
                        kind: .invalidPattern, schemaPath: path,
                        reason: "\"\(source)\" is not a valid regular expression")
                }
                rules.patternProperties.append(.init(pattern: pattern, schema: try compile(patterns[source]!, at: path)))
            }
        }
        rules.additionalProperties = try compileSchema(object, "additionalProperties", at: location)
        rules.propertyNames = try compileSchema(object, "propertyNames", at: location)
        for (property, schema) in try compileSchemaMap(object, "dependentSchemas", at: location)
            .sorted(by: { $0.key < $1.key })
        {
            rules.dependentSchemas.append(.init(property: property, schema: schema))
        }
        rules.propertyTable = PropertyTable(rules.properties, required: rules.required)
        rules.requiredElsewhere = rules.required.filter { rules.properties[$0] == nil }
        let isEmpty =
            rules.minProperties == nil && rules.maxProperties == nil && rules.required.isEmpty
            && rules.dependentRequired.isEmpty && !rules.appliesToMembers && rules.propertyNames == nil
            && rules.dependentSchemas.isEmpty
        return isEmpty ? nil : rules
    }

    private mutating func compileSchema(
        _ object: [String: JSONValue], _ keyword: String, at location: String
    ) throws(SchemaError) -> NodeID? {
        guard let child = object[keyword] else { return nil }
        return try compile(child, at: location + "/" + keyword)
    }

    private mutating func compileSchemaArray(
        _ object: [String: JSONValue], _ keyword: String, at location: String
    ) throws(SchemaError) -> [NodeID] {
        guard let value = object[keyword] else { return [] }
        guard case .array(let children) = value, !children.isEmpty else {
            throw invalid(location, keyword, "must be a non-empty array of schemas")
        }
        var result: [NodeID] = []
        for (index, child) in children.enumerated() {
            result.append(try compile(child, at: "\(location)/\(keyword)/\(index)"))
        }
        return result
    }

    private mutating func compileSchemaMap(
        _ object: [String: JSONValue], _ keyword: String, at location: String
    ) throws(SchemaError) -> [String: NodeID] {
        guard let value = object[keyword] else { return [:] }
        guard case .object(let children) = value else {
            throw invalid(location, keyword, "must be an object whose values are schemas")
        }
        var result: [String: NodeID] = [:]
        for (name, child) in children.sorted(by: { $0.key < $1.key }) {
            result[name] = try compile(child, at: location + "/" + keyword + "/" + JSONPointer.escape(name))
        }
        return result
    }

    // MARK: - References

    /// Resolves a `$ref`-style value against `base` to a location in this document and compiles it there.
    private mutating func compileReference(
        _ text: String, keyword: String, from location: String, base: URIReference
    ) throws(SchemaError) -> (node: NodeID, location: String, anchor: String?) {
        let uri = URIReference(parsing: text).resolved(against: base)
        let resourceURI = uri.withoutFragment
        guard let resource = resourceByURI[resourceURI] else {
            throw SchemaError(
                kind: .unresolvableReference, schemaPath: location + "/" + keyword,
                reason: "\"\(text)\" refers to \(resourceURI), which is not part of this schema "
                    + "(remote references are not supported)")
        }
        let root = resources[resource].location
        guard let fragment = JSONPointer.percentDecoded(uri.fragment ?? "") else {
            throw SchemaError(
                kind: .unresolvableReference, schemaPath: location + "/" + keyword,
                reason: "\"\(text)\" has a malformed percent-encoded fragment")
        }
        let target: String
        var anchor: String?
        if fragment.isEmpty {
            target = root
        } else if let tokens = JSONPointer.tokens(fragment) {
            target = root + tokens.map { "/" + JSONPointer.escape($0) }.joined()
        } else {
            guard let found = anchors[resourceURI + "#" + fragment] else {
                throw SchemaError(
                    kind: .unresolvableReference, schemaPath: location + "/" + keyword,
                    reason: "\"\(text)\": no $anchor or $dynamicAnchor named \"\(fragment)\" in \(resourceURI)")
            }
            target = found
            anchor = fragment
        }
        guard let targetValue = try? value(at: target) else {
            throw SchemaError(
                kind: .unresolvableReference, schemaPath: location + "/" + keyword,
                reason: "\"\(text)\" points to \(target.isEmpty ? "the root" : target), which does not exist")
        }
        return (try compile(targetValue, at: target), target, anchor)
    }

    private mutating func compileDynamicReference(
        _ text: String, from location: String, base: URIReference
    ) throws(SchemaError) -> DynamicReference {
        let resolved = try compileReference(text, keyword: "$dynamicRef", from: location, base: base)
        var reference = DynamicReference(target: resolved.node)
        if let anchor = resolved.anchor, case .string(anchor)? = try value(at: resolved.location)["$dynamicAnchor"] {
            reference.anchor = anchor
        }
        return reference
    }

    /// The base URI and resource at a location; a reference may land inside an unknown keyword the scan did
    /// not enter, and then the nearest scanned ancestor's scope applies.
    private func scope(at location: String) -> Scope {
        var candidate = Substring(location)
        while true {
            if let scope = scopes[String(candidate)] { return scope }
            guard let slash = candidate.lastIndex(of: "/") else { return scopes[""]! }
            candidate = candidate[..<slash]
        }
    }

    private func value(at location: String) throws(SchemaError) -> JSONValue {
        var current = document
        for token in JSONPointer.tokens(location) ?? [] {
            if case .object(let members) = current, let member = members[token] {
                current = member
            } else if case .array(let elements) = current, token.allSatisfy(\.isASCII), let index = Int(token),
                token.first != "+", elements.indices.contains(index)
            {
                current = elements[index]
            } else {
                throw SchemaError(kind: .unresolvableReference, schemaPath: location, reason: "no such location")
            }
        }
        return current
    }

    // MARK: - Whole-table checks

    /// Fails when in-place applicators (`$ref`, `allOf`, …) lead from a subschema back to itself: evaluating
    /// it would recurse forever without consuming any of the instance.
    private static func rejectInPlaceCycles(_ nodes: [SchemaRules]) throws(SchemaError) {
        enum Mark { case unvisited, active, done }
        var marks = [Mark](repeating: .unvisited, count: nodes.count)
        for start in nodes.indices where marks[start] == .unvisited {
            // Iterative depth-first search: (node, next edge index).
            var stack: [(NodeID, [NodeID], Int)] = [(start, nodes[start].inPlaceApplicators, 0)]
            marks[start] = .active
            while let (node, edges, next) = stack.last {
                if next == edges.count {
                    marks[node] = .done
                    stack.removeLast()
                    continue
                }
                stack[stack.count - 1].2 += 1
                let target = edges[next]
                switch marks[target] {
                case .active:
                    throw SchemaError(
                        kind: .referenceCycle, schemaPath: nodes[node].location,
                        reason: "references loop back to \(nodes[target].location.isEmpty ? "the root" : nodes[target].location) "
                            + "without descending into the instance, so validation would never end")
                case .unvisited:
                    marks[target] = .active
                    stack.append((target, nodes[target].inPlaceApplicators, 0))
                case .done:
                    break
                }
            }
        }
    }

    private func invalid(_ location: String, _ keyword: String, _ reason: String) -> SchemaError {
        SchemaError(kind: .invalidKeywordValue, schemaPath: location + "/" + keyword, reason: reason)
    }
}

/// Reads and type-checks the assertion keywords of one schema object, naming the keyword on failure.
struct KeywordReader {
    let object: [String: JSONValue]
    let location: String

    private func fail(_ keyword: String, _ reason: String) -> SchemaError {
        SchemaError(kind: .invalidKeywordValue, schemaPath: location + "/" + keyword, reason: reason)
    }

    func string(_ keyword: String) throws(SchemaError) -> String? {
        guard let value = object[keyword] else { return nil }
        guard case .string(let text) = value else { throw fail(keyword, "must be a string, got \(value.typeName)") }
        return text
    }

    func bool(_ keyword: String) throws(SchemaError) -> Bool? {
        guard let value = object[keyword] else { return nil }
        guard case .bool(let flag) = value else { throw fail(keyword, "must be a boolean, got \(value.typeName)") }
        return flag
    }

    func array(_ keyword: String) throws(SchemaError) -> [JSONValue]? {
        guard let value = object[keyword] else { return nil }
        guard case .array(let elements) = value else { throw fail(keyword, "must be an array, got \(value.typeName)") }
        return elements
    }

    func object(_ keyword: String) throws(SchemaError) -> [String: JSONValue]? {
        guard let value = object[keyword] else { return nil }
        guard case .object(let members) = value else {
            throw fail(keyword, "must be an object, got \(value.typeName)")
        }
        return members
    }

    /// A non-negative integer keyword (`minLength`, `maxItems`, …); `2.0` counts as an integer.
    func count(_ keyword: String) throws(SchemaError) -> Int? {
        guard let value = object[keyword] else { return nil }
        switch value {
        case .int(let i) where i >= 0: return Int(i)
        case .double(let d) where d >= 0 && d.rounded() == d:
            return d >= Double(Int.max) ? Int.max : Int(d)
        default: throw fail(keyword, "must be a non-negative integer, got \(describeValue(value))")
        }
    }

    func number(_ keyword: String) throws(SchemaError) -> NumberLimit? {
        guard let value = object[keyword] else { return nil }
        switch value {
        case .int, .double: return NumberLimit(value)
        default: throw fail(keyword, "must be a number, got \(value.typeName)")
        }
    }

    static func strings(_ value: JSONValue) -> [String]? {
        guard case .array(let elements) = value else { return nil }
        var result: [String] = []
        for element in elements {
            guard case .string(let text) = element else { return nil }
            result.append(text)
        }
        return result
    }

    func stringArray(_ keyword: String) throws(SchemaError) -> [String]? {
        guard let value = object[keyword] else { return nil }
        guard let result = Self.strings(value) else { throw fail(keyword, "must be an array of strings") }
        guard Set(result).count == result.count else { throw fail(keyword, "must not list a name twice") }
        return result
    }

    func types() throws(SchemaError) -> JSONTypeSet? {
        guard let value = object["type"] else { return nil }
        let names: [String]
        switch value {
        case .string(let name): names = [name]
        case .array:
            guard let list = Self.strings(value) else { throw fail("type", "must be a type name or an array of them") }
            names = list
        default: throw fail("type", "must be a type name or an array of them, got \(value.typeName)")
        }
        var set: JSONTypeSet = []
        for name in names {
            guard let type = JSONTypeSet(name: name) else {
                throw fail(
                    "type", "\"\(name)\" is not a type; use null, boolean, object, array, number, string or integer")
            }
            set.insert(type)
        }
        return set
    }

    func numberRules() throws(SchemaError) -> NumberRules? {
        var rules = NumberRules()
        rules.minimum = try number("minimum")
        rules.maximum = try number("maximum")
        rules.exclusiveMinimum = try number("exclusiveMinimum")
        rules.exclusiveMaximum = try number("exclusiveMaximum")
        rules.multipleOf = try number("multipleOf")
        if let multipleOf = rules.multipleOf, !(multipleOf.double > 0) {
            throw fail("multipleOf", "must be greater than 0, got \(multipleOf.text)")
        }
        let isEmpty =
            rules.minimum == nil && rules.maximum == nil && rules.exclusiveMinimum == nil
            && rules.exclusiveMaximum == nil && rules.multipleOf == nil
        return isEmpty ? nil : rules
    }

    func stringRules() throws(SchemaError) -> StringRules? {
        var rules = StringRules()
        rules.minLength = try count("minLength")
        rules.maxLength = try count("maxLength")
        if let source = try string("pattern") {
            guard let pattern = Pattern(source) else {
                throw SchemaError(
                    kind: .invalidPattern, schemaPath: location + "/pattern",
                    reason: "\"\(source)\" is not a valid regular expression")
            }
            rules.pattern = pattern
        }
        return rules.minLength == nil && rules.maxLength == nil && rules.pattern == nil ? nil : rules
    }
}
