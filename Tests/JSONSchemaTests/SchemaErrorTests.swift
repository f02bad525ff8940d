import JSONSchema
import Testing
import ToolProtocol

/// Schemas that must not compile, and what the error says about them.
@Suite struct SchemaErrorTests {
    func compileError(_ schema: JSONValue) -> SchemaError? {
        do {
            _ = try CompiledSchema(schema)
            return nil
        } catch {
            return error
        }
    }

    @Test func wrongKeywordTypeNamesThePath() {
        let error = compileError(["properties": ["name": ["minLength": "x"]]])
        #expect(error?.kind == .invalidKeywordValue)
        #expect(error?.schemaPath == "/properties/name/minLength")
        #expect(error?.reason == "must be a non-negative integer, got \"x\"")
        #expect(error?.description == "invalid schema at /properties/name/minLength: must be a non-negative integer, got \"x\"")
    }

    @Test func malformedKeywordValuesAreRejected() {
        let cases: [(JSONValue, String)] = [
            (["type": "strin"], "/type"),
            (["type": 3], "/type"),
            (["required": "name"], "/required"),
            (["required": ["a", "a"]], "/required"),
            (["maximum": "10"], "/maximum"),
            (["multipleOf": 0], "/multipleOf"),
            (["minItems": -1], "/minItems"),
            (["maxLength": 1.5], "/maxLength"),
            (["uniqueItems": "yes"], "/uniqueItems"),
            (["enum": "a"], "/enum"),
            (["allOf": []], "/allOf"),
            (["anyOf": [1]], "/anyOf/0"),
            (["items": "string"], "/items"),
            (["properties": ["a": 1]], "/properties/a"),
            (["properties": []], "/properties"),
            (["dependentRequired": ["a": "b"]], "/dependentRequired/a"),
            (["$ref": 5], "/$ref"),
            (["$anchor": "1bad"], "/$anchor"),
            (["$defs": ["unused": ["minimum": true]]], "/$defs/unused/minimum"),
            ("object", ""),
        ]
        for (schema, path) in cases {
            let error = compileError(schema)
            #expect(error?.kind == .invalidKeywordValue, "\(schema)")
            #expect(error?.schemaPath == path, "\(schema)")
        }
    }

    @Test func invalidRegularExpressionsAreRejectedAtCompileTime() {
        let pattern = compileError(["pattern": "^(unclosed"])
        #expect(pattern?.kind == .invalidPattern)
        #expect(pattern?.schemaPath == "/pattern")
        let key = compileError(["patternProperties": ["[a-": true]])
        #expect(key?.kind == .invalidPattern)
        #expect(key?.schemaPath == "/patternProperties/[a-")
    }

    @Test func unresolvableReferencesAreRejected() {
        let pointer = compileError(["properties": ["a": ["$ref": "#/$defs/missing"]]])
        #expect(pointer?.kind == .unresolvableReference)
        #expect(pointer?.schemaPath == "/properties/a/$ref")
        let anchor = compileError(["$ref": "#nowhere"])
        #expect(anchor?.kind == .unresolvableReference)
        let remote = compileError(["$ref": "https://example.com/schema.json"])
        #expect(remote?.kind == .unresolvableReference)
        #expect(remote?.reason.contains("remote references are not supported") == true)
        #expect(compileError(["$ref": "https://json-schema.org/draft/2020-12/schema"])?.kind == .unresolvableReference)
    }

    @Test func referenceCyclesThatConsumeNothingAreRejected() {
        let error = compileError(["$defs": ["a": ["$ref": "#/$defs/b"], "b": ["allOf": [["$ref": "#/$defs/a"]]]], "$ref": "#/$defs/a"])
        #expect(error?.kind == .referenceCycle)
        // Recursion that descends into the instance is fine.
        #expect(compileError(["properties": ["next": ["$ref": "#"]]]) == nil)
    }

    @Test func referencesResolveAgainstEmbeddedResources() throws {
        let schema = try CompiledSchema([
            "$id": "https://example.com/root.json",
            "$defs": [
                "inner": [
                    "$id": "inner.json", "$anchor": "name", "type": "string",
                    "$defs": ["tilde~slash/%": ["type": "integer"]],
                ]
            ],
            "properties": [
                "byId": ["$ref": "inner.json"],
                "byAnchor": ["$ref": "https://example.com/inner.json#name"],
                "byPointer": ["$ref": "inner.json#/$defs/tilde~0slash~1%25"],
            ],
        ])
        #expect(schema.isValid(["byId": "a", "byAnchor": "b", "byPointer": 3]))
        #expect(!schema.isValid(["byPointer": "3"]))
        #expect(!schema.isValid(["byAnchor": 1]))
    }

    @Test func unknownKeywordsAndFormatAreAnnotationsOnly() throws {
        let schema = try CompiledSchema(["format": "email", "x-ui": ["widget": "text"], "title": "Address"])
        #expect(schema.isValid("not an email"))
    }
}
