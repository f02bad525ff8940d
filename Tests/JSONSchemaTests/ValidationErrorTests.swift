import JSONSchema
import Testing
import ToolProtocol

/// What `validate` reports: where (instance and schema paths) and what to do about it (the message).
@Suite struct ValidationErrorTests {
    func errors(_ schema: JSONValue, _ instance: JSONValue) throws -> [ValidationError] {
        try CompiledSchema(schema).validate(instance)
    }

    @Test func belowMinimumNamesLimitAndValue() throws {
        let schema: JSONValue = ["properties": ["age": ["type": "integer", "minimum": 18]]]
        #expect(
            try errors(schema, ["age": 12]) == [
                ValidationError(instancePath: "/age", schemaPath: "/properties/age/minimum", message: "must be >= 18, got 12")
            ])
    }

    @Test func numericBoundsAndMultipleOf() throws {
        let schema: JSONValue = ["exclusiveMinimum": 0, "exclusiveMaximum": 1.5, "multipleOf": 0.5]
        #expect(try errors(schema, 1.5).map(\.message) == ["must be < 1.5, got 1.5"])
        #expect(try errors(schema, 0).map(\.message) == ["must be > 0, got 0"])
        #expect(try errors(schema, 0.7).map(\.message) == ["must be a multiple of 0.5, got 0.7"])
        #expect(try errors(["maximum": 10], 10.5).map(\.message) == ["must be <= 10, got 10.5"])
    }

    @Test func missingRequiredPropertiesAreEachReported() throws {
        let schema: JSONValue = ["type": "object", "required": ["name", "path"]]
        #expect(
            try errors(schema, [:]) == [
                ValidationError(instancePath: "", schemaPath: "/required", message: "missing required property \"name\""),
                ValidationError(instancePath: "", schemaPath: "/required", message: "missing required property \"path\""),
            ])
    }

    @Test func typeMismatchSaysExpectedAndActual() throws {
        #expect(try errors(["type": "integer"], "12").map(\.message) == ["expected integer, got string"])
        #expect(try errors(["type": ["string", "null"]], 1.5).map(\.message) == ["expected null or string, got number"])
        // An integral double is an integer.
        #expect(try errors(["type": "integer"], 3.0).isEmpty)
    }

    @Test func enumAndConstListTheAllowedValues() throws {
        #expect(try errors(["enum": ["a", "b"]], "c").map(\.message) == ["must be one of [\"a\",\"b\"]"])
        #expect(try errors(["const": ["k": 1]], ["k": 2]).map(\.message) == ["must be equal to {\"k\":1}"])
    }

    @Test func additionalPropertyIsNamedAtTheObject() throws {
        let schema: JSONValue = ["properties": ["a": true], "additionalProperties": false]
        #expect(
            try errors(schema, ["a": 1, "foo": 2]) == [
                ValidationError(
                    instancePath: "", schemaPath: "/additionalProperties", message: "property \"foo\" is not allowed")
            ])
        let unevaluated: JSONValue = ["allOf": [["properties": ["a": true]]], "unevaluatedProperties": false]
        #expect(try errors(unevaluated, ["a": 1, "b": 2]).map(\.message) == ["property \"b\" is not allowed"])
        #expect(try errors(unevaluated, ["a": 1]).isEmpty)
    }

    @Test func patternAndLengthsUseCodePoints() throws {
        #expect(
            try errors(["pattern": "^[a-z]+$"], "abc1") == [
                ValidationError(instancePath: "", schemaPath: "/pattern", message: "must match pattern ^[a-z]+$")
            ])
        // "é" + U+1F600 is two code points however many bytes or UTF-16 units.
        #expect(try errors(["maxLength": 2, "minLength": 2], "é😀").isEmpty)
        #expect(try errors(["minLength": 3], "é😀").map(\.message) == ["must be at least 3 characters long, got 2"])
        #expect(try errors(["maxLength": 1], "é😀").map(\.message) == ["must be at most 1 character long, got 2"])
    }

    @Test func patternsFollowECMAScriptNotICU() throws {
        let dollar = try CompiledSchema(["pattern": "^abc$"])
        #expect(dollar.isValid("abc"))
        #expect(!dollar.isValid("abc\n"), "$ must not match before a trailing newline")
        let digits = try CompiledSchema(["pattern": "^\\d+$"])
        #expect(digits.isValid("123"))
        #expect(!digits.isValid("١٢٣"), "\\d is ASCII-only in ECMA-262")
        // Unanchored: a match anywhere counts.
        #expect(try CompiledSchema(["pattern": "b+"]).isValid("abbbc"))
    }

    @Test func nestedPathsEscapeJSONPointerCharacters() throws {
        let schema: JSONValue = [
            "properties": ["a/b": ["items": ["properties": ["c~d": ["type": "string"]]]]]
        ]
        #expect(
            try errors(schema, ["a/b": [["c~d": "ok"], ["c~d": 5]]]) == [
                ValidationError(
                    instancePath: "/a~1b/1/c~0d", schemaPath: "/properties/a~1b/items/properties/c~0d/type",
                    message: "expected string, got integer")
            ])
    }

    @Test func referencesAppearInTheSchemaPath() throws {
        let schema: JSONValue = [
            "$defs": ["port": ["type": "integer", "maximum": 65535]],
            "properties": ["port": ["$ref": "#/$defs/port"]],
        ]
        #expect(
            try errors(schema, ["port": 70000]) == [
                ValidationError(
                    instancePath: "/port", schemaPath: "/properties/port/$ref/maximum", message: "must be <= 65535, got 70000")
            ])
    }

    @Test func allErrorsAreReportedUpToTheCap() throws {
        let schema = try CompiledSchema(["items": ["type": "string"]])
        let instance = JSONValue.array((0..<10).map { JSONValue.int($0) })
        #expect(schema.validate(instance).count == 10)
        #expect(schema.validate(instance, maxErrors: 3).count == 3)
        #expect(schema.validate(instance, maxErrors: 0).count == 1, "an invalid instance always gets a reason")
        #expect(schema.validate(instance).map(\.instancePath) == (0..<10).map { "/\($0)" })
    }

    @Test func arrayKeywordsReportCountsAndIndices() throws {
        #expect(try errors(["minItems": 2], [1]).map(\.message) == ["must have at least 2 items, got 1"])
        #expect(try errors(["maxItems": 1], [1, 2]).map(\.message) == ["must have at most 1 item, got 2"])
        #expect(
            try errors(["uniqueItems": true], [1, "x", 1.0]).map(\.message) == [
                "items at index 0 and 2 are equal; items must be unique"
            ])
        #expect(
            try errors(["prefixItems": [true, true], "items": false], [1, 2, 3]).map(\.message) == [
                "must have at most 2 items, got 3"
            ])
        #expect(
            try errors(["contains": ["type": "integer"], "minContains": 2], [1, "a"]) == [
                ValidationError(
                    instancePath: "", schemaPath: "/minContains",
                    message: "must contain at least 2 items matching the \"contains\" schema, got 1")
            ])
    }

    @Test func anyOfWithOnePlausibleBranchReportsThatBranch() throws {
        // A tagged union: the "kind" discriminator rules out every branch but one.
        let schema: JSONValue = [
            "anyOf": [
                ["properties": ["kind": ["const": "circle"], "radius": ["minimum": 0]], "required": ["radius"]],
                ["properties": ["kind": ["const": "square"], "side": ["minimum": 0]], "required": ["side"]],
            ]
        ]
        #expect(
            try errors(schema, ["kind": "square", "side": -1]) == [
                ValidationError(
                    instancePath: "/side", schemaPath: "/anyOf/1/properties/side/minimum", message: "must be >= 0, got -1")
            ])
    }

    @Test func anyOfAndOneOfSummariseInsteadOfDumpingBranches() throws {
        #expect(
            try errors(["anyOf": [["type": "integer"], ["type": "string"]]], true) == [
                ValidationError(instancePath: "", schemaPath: "/anyOf", message: "expected integer or string, got boolean")
            ])
        #expect(
            try errors(["oneOf": [["const": "a"], ["const": "b"]]], "c").map(\.message) == [
                "must be one of [\"a\",\"b\"]"
            ])
        #expect(
            try errors(["oneOf": [["minimum": 1], ["maximum": 10]]], 5).map(\.message) == [
                "must match exactly one schema in \"oneOf\", but matches those at index 0 and 1"
            ])
        #expect(
            try errors(["anyOf": [["minimum": 10], ["maxLength": 2, "type": "integer", "maximum": 1]]], 5)
                .map(\.message) == ["must match at least one of the 2 schemas in \"anyOf\""])
    }

    @Test func notIfThenElseAndDependencies() throws {
        #expect(try errors(["not": ["type": "null"]], nil).map(\.message) == ["must not match the schema in \"not\""])
        let conditional: JSONValue = [
            "if": ["properties": ["mode": ["const": "file"]]], "then": ["required": ["path"]], "else": ["required": ["url"]],
        ]
        #expect(
            try errors(conditional, ["mode": "file"]) == [
                ValidationError(instancePath: "", schemaPath: "/then/required", message: "missing required property \"path\"")
            ])
        #expect(try errors(conditional, ["mode": "net"]).map(\.schemaPath) == ["/else/required"])
        #expect(
            try errors(["dependentRequired": ["user": ["password"]]], ["user": "x"]) == [
                ValidationError(
                    instancePath: "", schemaPath: "/dependentRequired/user",
                    message: "property \"password\" is required when \"user\" is present")
            ])
    }

    @Test func propertyNamesErrorsNameTheOffendingKey() throws {
        #expect(
            try errors(["propertyNames": ["pattern": "^[a-z]+$"]], ["ok": 1, "Bad": 2]) == [
                ValidationError(
                    instancePath: "", schemaPath: "/propertyNames/pattern",
                    message: "property name \"Bad\": must match pattern ^[a-z]+$")
            ])
    }

    @Test func falseSchemaRejectsEverything() throws {
        #expect(try errors(false, 1).map(\.message) == ["no value is allowed here"])
        #expect(try errors(true, 1).isEmpty)
    }

    @Test func equalityIsJSONEquality() throws {
        #expect(try CompiledSchema(["const": ["a": [1, 2.0], "b": nil]]).isValid(["b": nil, "a": [1.0, 2]]))
        #expect(!(try CompiledSchema(["const": false]).isValid(0)))
        // Precomposed "é" and "e" + combining accent look alike but are different strings in JSON.
        #expect(!(try CompiledSchema(["const": "\u{E9}"]).isValid("e\u{301}")))
        #expect(try CompiledSchema(["uniqueItems": true]).isValid(["\u{E9}", "e\u{301}"]))
        let many = JSONValue.array((0..<40).map { .int($0) } + [.double(7.0)])
        #expect(try errors(["uniqueItems": true], many).map(\.message) == ["items at index 7 and 40 are equal; items must be unique"])
    }

    @Test func recursiveSchemasValidateNestedInstances() throws {
        let tree = try CompiledSchema([
            "$defs": ["node": ["type": "object", "properties": ["children": ["items": ["$ref": "#/$defs/node"]]],
                               "required": ["name"]]],
            "$ref": "#/$defs/node",
        ])
        #expect(tree.isValid(["name": "a", "children": [["name": "b", "children": []]]]))
        #expect(
            tree.validate(["name": "a", "children": [["children": []]]]).map(\.instancePath) == ["/children/0"])
    }

    @Test func absurdlyDeepInstancesFailInsteadOfOverflowingTheStack() throws {
        let schema = try CompiledSchema(["items": ["$ref": "#"]])
        var instance: JSONValue = []
        for _ in 0..<1000 { instance = [instance] }
        #expect(!schema.isValid(instance))
        #expect(schema.validate(instance).first?.message.contains("nested too deeply") == true)
    }
}
