import ToolProtocol

/// What the in-place applicators of a subschema evaluated at one instance location, for
/// `unevaluatedProperties` and `unevaluatedItems`. Only gathered when some enclosing subschema has one of
/// those keywords; otherwise it stays empty and costs nothing.
struct Annotations {
    var allProperties = false
    var properties: Set<String> = []
    var allItems = false
    /// Items `0..<itemPrefix` were evaluated (by `prefixItems`).
    var itemPrefix = 0
    /// Items matched by `contains`.
    var itemIndices: Set<Int> = []

    mutating func merge(_ other: Annotations) {
        allProperties = allProperties || other.allProperties
        if !allProperties && !other.properties.isEmpty { properties.formUnion(other.properties) }
        allItems = allItems || other.allItems
        itemPrefix = max(itemPrefix, other.itemPrefix)
        if !allItems && !other.itemIndices.isEmpty { itemIndices.formUnion(other.itemIndices) }
    }
}

/// A step of an instance or schema path.
enum PathToken {
    case key(String)
    case index(Int)

    var escaped: String {
        switch self {
        case .key(let key): return JSONPointer.escape(key)
        case .index(let index): return String(index)
        }
    }
}

/// One validation run over a compiled node table.
///
/// It runs in one of two modes. Checking (`reporting == false`) stops at the first failure and tracks no
/// paths: that is all `isValid` needs and what `validate` does first. Reporting re-runs a failed instance
/// through every keyword, keeping instance and schema paths as token stacks and rendering them only when
/// an error is recorded. Nested questions whose failures are expected (`anyOf` branches, `not`, `if`,
/// `contains`) are always asked in checking mode.
struct Evaluator {
    /// Deeper than this, evaluation stops with an error rather than risk the thread's stack.
    static let maxDepth = 200

    let nodes: UnsafeBufferPointer<SchemaRules>
    let dynamicAnchors: [[String: NodeID]]
    /// Only schemas with `$dynamicRef` need the dynamic scope.
    let tracksScope: Bool
    private var scope: [Int] = []
    private var depth = 0

    private(set) var reporting: Bool
    let maxErrors: Int
    private(set) var errors: [ValidationError] = []
    private var instancePath: [PathToken] = []
    private var schemaPath: [PathToken] = []
    /// The first pattern that gave up (its time limit or budget), where. Undecided means invalid,
    /// whatever the keyword around it (`not`, `if`, `oneOf`) would make of a failure; and later patterns
    /// are not tried (each give-up costs the whole time limit).
    private(set) var gaveUp: ValidationError?
    /// The matching time of this validation, shared by all its patterns (and both passes of `validate`).
    private let regexBudget: RegexBudget

    init(
        nodes: UnsafeBufferPointer<SchemaRules>, dynamicAnchors: [[String: NodeID]], tracksScope: Bool,
        reporting: Bool, maxErrors: Int, regexBudget: RegexBudget
    ) {
        self.regexBudget = regexBudget
        self.nodes = nodes
        self.dynamicAnchors = dynamicAnchors
        self.tracksScope = tracksScope
        self.reporting = reporting
        self.maxErrors = maxErrors
    }

    // MARK: - Nodes

    mutating func evaluate(_ id: NodeID, _ value: JSONValue, collect: Bool, _ annotations: inout Annotations) -> Bool {
        let node = nodes.baseAddress! + id
        if let flag = node.pointee.boolean {
            if !flag && reporting { report(nil, nil, "no value is allowed here") }
            return flag
        }
        if reporting && errors.count >= maxErrors { return false }
        depth += 1
        defer { depth -= 1 }
        guard depth <= Self.maxDepth else {
            if reporting { report(nil, nil, "nested too deeply to validate (over \(Self.maxDepth) subschemas)") }
            return false
        }
        let resource = node.pointee.resource
        let entersResource = tracksScope && resource >= 0 && scope.last != resource
        if entersResource { scope.append(resource) }
        defer { if entersResource { scope.removeLast() } }

        guard node.pointee.unevaluatedItems != nil || node.pointee.unevaluatedProperties != nil else {
            return evaluateKeywords(node, value, collect: collect, &annotations)
        }
        var local = Annotations()
        var valid = evaluateKeywords(node, value, collect: true, &local)
        if valid || reporting {
            valid = evaluateUnevaluated(node, value, &local) && valid
        }
        if collect { annotations.merge(local) }
        return valid
    }

    /// Everything but `unevaluated*`, which must see the annotations all of this produced.
    private mutating func evaluateKeywords(
        _ node: UnsafePointer<SchemaRules>, _ value: JSONValue, collect: Bool, _ annotations: inout Annotations
    ) -> Bool {
        var valid = true
        if let types = node.pointee.types, types.isDisjoint(with: JSONTypeSet(of: value)) {
            guard reporting else { return false }
            valid = false
            report("type", nil, "expected \(types.names), got \(value.typeName)")
        }
        if let expected = node.pointee.constValue, !jsonEqual(expected, value) {
            guard reporting else { return false }
            valid = false
            report("const", nil, "must be equal to \(describeValue(expected))")
        }
        if let allowed = node.pointee.enumValues, !allowed.contains(where: { jsonEqual($0, value) }) {
            guard reporting else { return false }
            valid = false
            report("enum", nil, "must be one of \(Self.describeList(allowed))")
        }
        if let target = node.pointee.ref {
            valid = apply(target, value, "$ref", collect: collect, &annotations) && valid
            if !valid && !reporting { return false }
        }
        if let reference = node.pointee.dynamicRef {
            valid = apply(resolve(reference), value, "$dynamicRef", collect: collect, &annotations) && valid
            if !valid && !reporting { return false }
        }
        switch value {
        case .int, .double:
            if let rules = node.pointee.number { valid = checkNumber(rules, value) && valid }
        case .string(let text):
            if let rules = node.pointee.string { valid = checkString(rules, text) && valid }
        case .array(let elements):
            if let rules = node.pointee.array {
                valid = evaluateArray(rules.value, elements, collect: collect, &annotations) && valid
            }
        case .object(let members):
            if let rules = node.pointee.object {
                valid = evaluateObject(rules.value, members, value, collect: collect, &annotations) && valid
            }
        case .null, .bool:
            break
        }
        if !valid && !reporting { return false }

        for (index, subschema) in node.pointee.allOf.enumerated() {
            valid = apply(subschema, value, "allOf", .index(index), collect: collect, &annotations) && valid
            if !valid && !reporting { return false }
        }
        if !node.pointee.anyOf.isEmpty {
            valid = evaluateAnyOf(node.pointee.anyOf, value, collect: collect, &annotations) && valid
            if !valid && !reporting { return false }
        }
        if !node.pointee.oneOf.isEmpty {
            valid = evaluateOneOf(node.pointee.oneOf, value, collect: collect, &annotations) && valid
            if !valid && !reporting { return false }
        }
        if let negated = node.pointee.not {
            var ignored = Annotations()
            if check(negated, value, collect: false, &ignored) {
                guard reporting else { return false }
                valid = false
                report("not", nil, "must not match the schema in \"not\"")
            }
        }
        if let conditional = node.pointee.conditional {
            var conditionAnnotations = Annotations()
            if check(conditional.condition, value, collect: collect, &conditionAnnotations) {
                if collect { annotations.merge(conditionAnnotations) }
                if let then = conditional.then {
                    valid = apply(then, value, "then", collect: collect, &annotations) && valid
                }
            } else if let otherwise = conditional.otherwise {
                valid = apply(otherwise, value, "else", collect: collect, &annotations) && valid
            }
        }
        return valid
    }

    private mutating func evaluateUnevaluated(
        _ node: UnsafePointer<SchemaRules>, _ value: JSONValue, _ annotations: inout Annotations
    ) -> Bool {
        var valid = true
        var ignored = Annotations()
        switch value {
        case .object(let members):
            guard let schema = node.pointee.unevaluatedProperties, !annotations.allProperties else { break }
            for key in memberKeys(members) where !annotations.properties.contains(key) {
                valid = applyToMember(schema, key, members[key]!, "unevaluatedProperties", nil) && valid
                if !valid && !reporting { return false }
            }
            annotations.allProperties = true
        case .array(let elements):
            guard let schema = node.pointee.unevaluatedItems, !annotations.allItems else { break }
            for index in elements.indices
            where index >= annotations.itemPrefix && !annotations.itemIndices.contains(index) {
                if reporting && nodes[schema].boolean == false {
                    valid = false
                    report("unevaluatedItems", nil, "item at index \(index) is not allowed")
                } else {
                    valid =
                        apply(schema, elements[index], "unevaluatedItems", instance: .index(index), collect: false, &ignored)
                        && valid
                }
                if !valid && !reporting { return false }
            }
            annotations.allItems = true
        default:
            break
        }
        return valid
    }

    /// The node a `$dynamicRef` lands on: the outermost resource in the dynamic scope that declares the
    /// anchor, or the static target.
    private func resolve(_ reference: DynamicReference) -> NodeID {
        guard let anchor = reference.anchor else { return reference.target }
        for resource in scope {
            if let target = dynamicAnchors[resource][anchor] { return target }
        }
        return reference.target
    }

    // MARK: - Applying subschemas

    /// Evaluates a subschema, extending the paths by the keyword (and `sub` below it) and the instance step.
    private mutating func apply(
        _ id: NodeID, _ value: JSONValue, _ keyword: String, _ sub: PathToken? = nil, instance: PathToken? = nil,
        collect: Bool, _ annotations: inout Annotations
    ) -> Bool {
        guard reporting else { return evaluate(id, value, collect: collect, &annotations) }
        schemaPath.append(.key(keyword))
        if let sub { schemaPath.append(sub) }
        if let instance { instancePath.append(instance) }
        let valid = evaluate(id, value, collect: collect, &annotations)
        if instance != nil { instancePath.removeLast() }
        if sub != nil { schemaPath.removeLast() }
        schemaPath.removeLast()
        return valid
    }

    /// Evaluates a subschema whose failure is an answer, not an error (`not`, `if`, `anyOf` branches).
    private mutating func check(_ id: NodeID, _ value: JSONValue, collect: Bool, _ annotations: inout Annotations)
        -> Bool
    {
        let wasReporting = reporting
        reporting = false
        defer { reporting = wasReporting }
        return evaluate(id, value, collect: collect, &annotations)
    }

    /// Applies a subschema to one member of an object; a `false` subschema reads as "not allowed".
    private mutating func applyToMember(
        _ id: NodeID, _ key: String, _ value: JSONValue, _ keyword: String, _ sub: PathToken?
    ) -> Bool {
        if reporting && nodes[id].boolean == false {
            report(keyword, sub, "property \"\(key)\" is not allowed")
            return false
        }
        var ignored = Annotations()
        return apply(id, value, keyword, sub, instance: .key(key), collect: false, &ignored)
    }

    // MARK: - Assertions by instance type

    private mutating func checkNumber(_ shared: Shared<NumberRules>, _ value: JSONValue) -> Bool {
        let rules = shared.value
        var valid = true
        if let limit = rules.minimum, limit.compare(value) < 0 {
            guard reporting else { return false }
            valid = false
            report("minimum", nil, "must be >= \(limit.text), got \(describeNumber(value))")
        }
        if let limit = rules.maximum, limit.compare(value) > 0 {
            guard reporting else { return false }
            valid = false
            report("maximum", nil, "must be <= \(limit.text), got \(describeNumber(value))")
        }
        if let limit = rules.exclusiveMinimum, limit.compare(value) <= 0 {
            guard reporting else { return false }
            valid = false
            report("exclusiveMinimum", nil, "must be > \(limit.text), got \(describeNumber(value))")
        }
        if let limit = rules.exclusiveMaximum, limit.compare(value) >= 0 {
            guard reporting else { return false }
            valid = false
            report("exclusiveMaximum", nil, "must be < \(limit.text), got \(describeNumber(value))")
        }
        if let divisor = rules.multipleOf, !divisor.divides(value) {
            guard reporting else { return false }
            valid = false
            report("multipleOf", nil, "must be a multiple of \(divisor.text), got \(describeNumber(value))")
        }
        return valid
    }

    private mutating func checkString(_ shared: Shared<StringRules>, _ text: String) -> Bool {
        var valid = true
        // Lengths count Unicode scalars; the UTF-8 byte count (at most 4 per scalar) usually settles it
        // without walking the string.
        let bytes = text.utf8.count
        if let minimum = shared.value.minLength, bytes < minimum.multipliedReportingOverflow(by: 4).partialValue {
            let length = text.unicodeScalars.count
            if length < minimum {
                guard reporting else { return false }
                valid = false
                report(
                    "minLength", nil,
                    "must be at least \(minimum) character\(minimum == 1 ? "" : "s") long, got \(length)")
            }
        }
        if let maximum = shared.value.maxLength, bytes > maximum {
            let length = text.unicodeScalars.count
            if length > maximum {
                guard reporting else { return false }
                valid = false
                report(
                    "maxLength", nil,
                    "must be at most \(maximum) character\(maximum == 1 ? "" : "s") long, got \(length)")
            }
        }
        if let pattern = shared.value.pattern {
            switch match(pattern, text, keyword: "pattern") {
            case .match:
                break
            case .noMatch:
                guard reporting else { return false }
                valid = false
                report("pattern", nil, "must match pattern \(pattern.source)")
            case .gaveUp:
                // Reported once, by `match`.
                guard reporting else { return false }
                valid = false
            }
        }
        return valid
    }

    private mutating func evaluateArray(
        _ rules: ArrayRules, _ elements: [JSONValue], collect: Bool, _ annotations: inout Annotations
    ) -> Bool {
        var valid = true
        if let minimum = rules.minItems, elements.count < minimum {
            guard reporting else { return false }
            valid = false
            report(
                "minItems", nil,
                "must have at least \(minimum) item\(minimum == 1 ? "" : "s"), got \(elements.count)")
        }
        if let maximum = rules.maxItems, elements.count > maximum {
            guard reporting else { return false }
            valid = false
            report(
                "maxItems", nil, "must have at most \(maximum) item\(maximum == 1 ? "" : "s"), got \(elements.count)")
        }
        if rules.uniqueItems, let (first, second) = Self.firstDuplicate(elements) {
            guard reporting else { return false }
            valid = false
            report("uniqueItems", nil, "items at index \(first) and \(second) are equal; items must be unique")
        }
        var ignored = Annotations()
        let prefixCount = min(rules.prefixItems.count, elements.count)
        for index in 0..<prefixCount {
            valid =
                apply(
                    rules.prefixItems[index], elements[index], "prefixItems", .index(index),
                    instance: .index(index), collect: false, &ignored) && valid
            if !valid && !reporting { return false }
        }
        if collect { annotations.itemPrefix = max(annotations.itemPrefix, prefixCount) }
        if let items = rules.items {
            if reporting && nodes[items].boolean == false && elements.count > prefixCount {
                valid = false
                report(
                    "items", nil,
                    "must have at most \(prefixCount) item\(prefixCount == 1 ? "" : "s"), got \(elements.count)")
            } else {
                for index in prefixCount..<max(prefixCount, elements.count) {
                    valid =
                        apply(items, elements[index], "items", instance: .index(index), collect: false, &ignored)
                        && valid
                    if !valid && !reporting { return false }
                }
            }
            if collect { annotations.allItems = true }
        }
        if let contains = rules.contains {
            var matches = 0
            for (index, element) in elements.enumerated() {
                guard check(contains, element, collect: false, &ignored) else { continue }
                matches += 1
                if collect {
                    annotations.itemIndices.insert(index)
                } else if rules.maxContains == nil && matches >= rules.minContains {
                    break
                }
            }
            if matches < rules.minContains {
                guard reporting else { return false }
                valid = false
                let minimum = rules.minContains
                report(
                    rules.minContainsIsExplicit ? "minContains" : "contains", nil,
                    "must contain at least \(minimum) item\(minimum == 1 ? "" : "s") matching the \"contains\" "
                        + "schema, got \(matches)")
            }
            if let maximum = rules.maxContains, matches > maximum {
                guard reporting else { return false }
                valid = false
                report(
                    "maxContains", nil,
                    "must contain at most \(maximum) item\(maximum == 1 ? "" : "s") matching the \"contains\" "
                        + "schema, got \(matches)")
            }
        }
        return valid
    }

    private mutating func evaluateObject(
        _ rules: ObjectRules, _ members: [String: JSONValue], _ value: JSONValue, collect: Bool,
        _ annotations: inout Annotations
    ) -> Bool {
        var valid = true
        if let minimum = rules.minProperties, members.count < minimum {
            guard reporting else { return false }
            valid = false
            report(
                "minProperties", nil,
                "must have at least \(minimum) propert\(minimum == 1 ? "y" : "ies"), got \(members.count)")
        }
        if let maximum = rules.maxProperties, members.count > maximum {
            guard reporting else { return false }
            valid = false
            report(
                "maxProperties", nil,
                "must have at most \(maximum) propert\(maximum == 1 ? "y" : "ies"), got \(members.count)")
        }
        // When checking, required names that are also `properties` are counted in the member pass below
        // rather than looked up one by one.
        let countsRequired = !reporting && rules.appliesToMembers
        for name in countsRequired ? rules.requiredElsewhere : rules.required where members[name] == nil {
            guard reporting else { return false }
            valid = false
            report("required", nil, "missing required property \"\(name)\"")
        }
        for dependency in rules.dependentRequired where members[dependency.property] != nil {
            for name in dependency.required where members[name] == nil {
                guard reporting else { return false }
                valid = false
                report(
                    "dependentRequired", .key(dependency.property),
                    "property \"\(name)\" is required when \"\(dependency.property)\" is present")
            }
        }
        if let names = rules.propertyNames {
            var ignored = Annotations()
            for key in memberKeys(members) {
                let firstError = errors.count
                valid = apply(names, .string(key), "propertyNames", collect: false, &ignored) && valid
                if !valid && !reporting { return false }
                for index in firstError..<errors.count {
                    errors[index].message = "property name \"\(key)\": " + errors[index].message
                }
            }
        }
        if rules.appliesToMembers {
            var requiredSeen = 0
            if reporting {
                for key in members.keys.sorted() {
                    valid =
                        evaluateMember(rules, key, members[key]!, collect: collect, &requiredSeen, &annotations) && valid
                }
            } else {
                for (key, member) in members {
                    guard evaluateMember(rules, key, member, collect: collect, &requiredSeen, &annotations) else {
                        return false
                    }
                }
                if requiredSeen < rules.propertyTable.requiredCount { return false }
            }
            if collect && rules.additionalProperties != nil { annotations.allProperties = true }
        }
        for dependency in rules.dependentSchemas where members[dependency.property] != nil {
            valid =
                apply(
                    dependency.schema, value, "dependentSchemas", .key(dependency.property), collect: collect,
                    &annotations) && valid
            if !valid && !reporting { return false }
        }
        return valid
    }

    /// `properties`, `patternProperties` and `additionalProperties` for one member.
    private mutating func evaluateMember(
        _ rules: ObjectRules, _ key: String, _ member: JSONValue, collect: Bool, _ requiredSeen: inout Int,
        _ annotations: inout Annotations
    ) -> Bool {
        var valid = true
        var evaluated = false
        if let index = rules.propertyTable.find(key) {
            evaluated = true
            if rules.propertyTable.isRequired[index] { requiredSeen += 1 }
            valid = applyToMember(rules.propertyTable.schemas[index], key, member, "properties", .key(key))
            if !valid && !reporting { return false }
        }
        for entry in rules.patternProperties {
            switch match(entry.pattern, key, keyword: "patternProperties") {
            case .noMatch:
                continue
            case .gaveUp:
                // Undecided whether the key's schema applies: refused, closed (reported once, by `match`).
                guard reporting else { return false }
                valid = false
                continue
            case .match:
                break
            }
            evaluated = true
            valid = applyToMember(entry.schema, key, member, "patternProperties", .key(entry.pattern.source)) && valid
            if !valid && !reporting { return false }
        }
        if !evaluated, let schema = rules.additionalProperties {
            valid = applyToMember(schema, key, member, "additionalProperties", nil) && valid
        } else if evaluated && collect {
            annotations.properties.insert(key)
        }
        return valid
    }

    /// The instance's member names: in dictionary order when only validity matters, sorted when reporting
    /// so the same instance always yields the same errors in the same order.
    private func memberKeys(_ members: [String: JSONValue]) -> [String] {
        reporting ? members.keys.sorted() : Array(members.keys)
    }

    // MARK: - anyOf / oneOf

    private mutating func evaluateAnyOf(
        _ branches: [NodeID], _ value: JSONValue, collect: Bool, _ annotations: inout Annotations
    ) -> Bool {
        var matched = false
        for branch in branches {
            var branchAnnotations = Annotations()
            guard check(branch, value, collect: collect, &branchAnnotations) else { continue }
            matched = true
            // Annotations from every passing branch count, so all of them must run when collecting.
            guard collect else { break }
            annotations.merge(branchAnnotations)
        }
        if !matched && reporting { reportNoBranchMatched("anyOf", branches, value) }
        return matched
    }

    private mutating func evaluateOneOf(
        _ branches: [NodeID], _ value: JSONValue, collect: Bool, _ annotations: inout Annotations
    ) -> Bool {
        var first: Int?
        var matchedAnnotations = Annotations()
        for (index, branch) in branches.enumerated() {
            var branchAnnotations = Annotations()
            guard check(branch, value, collect: collect, &branchAnnotations) else { continue }
            if let first {
                if reporting {
                    report(
                        "oneOf", nil,
                        "must match exactly one schema in \"oneOf\", but matches those at index \(first) and \(index)")
                }
                return false
            }
            first = index
            matchedAnnotations = branchAnnotations
        }
        guard first != nil else {
            if reporting { reportNoBranchMatched("oneOf", branches, value) }
            return false
        }
        if collect { annotations.merge(matchedAnnotations) }
        return true
    }

    /// Summarises a failed `anyOf`/`oneOf`. When exactly one branch is plausible — the others reject the
    /// value outright by `type`, `const`, `enum` or a `const` discriminator property — its own errors are
    /// the useful ones; when every branch rejects outright, the accepted types or values are listed.
    private mutating func reportNoBranchMatched(_ keyword: String, _ branches: [NodeID], _ value: JSONValue) {
        let plausible = branches.indices.filter { !rejectsOutright(branches[$0], value) }
        if plausible.count == 1 {
            var ignored = Annotations()
            let index = plausible[0]
            _ = apply(branches[index], value, keyword, .index(index), collect: false, &ignored)
            return
        }
        if plausible.isEmpty {
            var types: JSONTypeSet = []
            var values: [JSONValue] = []
            var describable = true
            for branch in branches {
                let rules = nodes[branch]
                if let constant = rules.constValue {
                    values.append(constant)
                } else if let allowed = rules.enumValues {
                    values += allowed
                } else if let branchTypes = rules.types {
                    types.formUnion(branchTypes)
                } else {
                    describable = false
                }
            }
            if describable && values.isEmpty {
                report(keyword, nil, "expected \(types.names), got \(value.typeName)")
                return
            }
            if describable && types.isEmpty {
                report(keyword, nil, "must be one of \(Self.describeList(values))")
                return
            }
        }
        report(keyword, nil, "must match \(keyword == "anyOf" ? "at least" : "exactly") one of the \(branches.count) schemas in \"\(keyword)\"")
    }

    /// Whether a branch fails on the value's kind alone, following `$ref`s a few steps.
    private func rejectsOutright(_ id: NodeID, _ value: JSONValue) -> Bool {
        var id = id
        for _ in 0..<8 {
            let rules = nodes[id]
            if let flag = rules.boolean { return !flag }
            if let types = rules.types, types.isDisjoint(with: JSONTypeSet(of: value)) { return true }
            if let constant = rules.constValue, !jsonEqual(constant, value) { return true }
            if let allowed = rules.enumValues, !allowed.contains(where: { jsonEqual($0, value) }) { return true }
            if case .object(let members) = value, let object = rules.object {
                for (key, schema) in object.value.properties {
                    if let member = members[key], let constant = nodes[schema].constValue, !jsonEqual(constant, member) {
                        return true
                    }
                }
            }
            guard let next = rules.ref else { return false }
            id = next
        }
        return false
    }

    // MARK: - Reporting

    /// Matches a pattern, or gives up at once when one already did (see `gaveUp`). The first give-up is
    /// reported here, once.
    private mutating func match(_ pattern: Pattern, _ text: String, keyword: String) -> RegexMatch {
        guard gaveUp == nil else { return .gaveUp }
        let result = pattern.match(text, budget: regexBudget)
        if result == .gaveUp {
            var schema = ""
            for token in schemaPath { schema += "/" + token.escaped }
            var instance = ""
            for token in instancePath { instance += "/" + token.escaped }
            let error = ValidationError(
                instancePath: instance, schemaPath: schema + "/" + keyword, message: Pattern.gaveUpMessage(pattern))
            gaveUp = error
            if reporting && errors.count < maxErrors { errors.append(error) }
        }
        return result
    }

    private mutating func report(_ keyword: String?, _ sub: PathToken?, _ message: @autoclosure () -> String) {
        guard errors.count < maxErrors else { return }
        var schema = ""
        for token in schemaPath { schema += "/" + token.escaped }
        if let keyword { schema += "/" + JSONPointer.escape(keyword) }
        if let sub { schema += "/" + sub.escaped }
        var instance = ""
        for token in instancePath { instance += "/" + token.escaped }
        errors.append(ValidationError(instancePath: instance, schemaPath: schema, message: message()))
    }

    /// `["a","b"]`, shortened for long lists.
    static func describeList(_ values: [JSONValue]) -> String {
        let shown = values.prefix(20).map(describeValue).joined(separator: ",")
        return values.count > 20 ? "[\(shown),…] (\(values.count) values)" : "[\(shown)]"
    }

    /// Indices of the first two equal elements, by JSON equality.
    static func firstDuplicate(_ elements: [JSONValue]) -> (Int, Int)? {
        if elements.count < 16 {
            for i in elements.indices {
                for j in (i + 1)..<elements.count where jsonEqual(elements[i], elements[j]) { return (i, j) }
            }
            return nil
        }
        var seen: [JSONKey: Int] = [:]
        seen.reserveCapacity(elements.count)
        for (index, element) in elements.enumerated() {
            if let earlier = seen.updateValue(index, forKey: JSONKey(value: element)) { return (earlier, index) }
        }
        return nil
    }
}
