/// # JSONSchema
///
/// A JSON Schema draft 2020-12 validator over `ToolProtocol.JSONValue`, written for checking tool
/// arguments: compile a schema once, validate many instances quickly, and get back every error with
/// an instance path, a schema path and a message a person or a model can act on.
///
/// Supported: every keyword of the core, applicator, unevaluated and validation vocabularies — `type`,
/// `enum`, `const`, the numeric, string, array and object assertions, `properties`, `patternProperties`,
/// `additionalProperties`, `propertyNames`, `prefixItems`, `items`, `contains` with `minContains` and
/// `maxContains`, `allOf`, `anyOf`, `oneOf`, `not`, `if`/`then`/`else`, `dependentRequired`,
/// `dependentSchemas`, `unevaluatedItems` and `unevaluatedProperties` (annotations are collected through
/// in-place applicators, `$ref` and passing `anyOf`/`oneOf`/`if` branches), boolean schemas, and
/// same-document references: `$ref` by JSON Pointer fragment (with `~0`, `~1` and percent-encoding) or
/// `$anchor`, resolved against the base URI set by the nearest `$id`; embedded resources by their `$id`;
/// `$defs`; `$dynamicRef`/`$dynamicAnchor` with the 2020-12 dynamic-scope rules.
///
/// Deliberately not supported:
/// - **Remote references.** A `$ref` to a document other than this schema and the resources embedded in
///   it (including the 2020-12 meta-schema itself) is a compile error, `SchemaError.Kind.unresolvableReference`;
///   nothing is ever fetched.
/// - **`format` assertion.** `format` is an annotation only, as the 2020-12 default says: `"format": "email"`
///   does not reject `"x"`. Likewise `contentMediaType`/`contentEncoding`/`contentSchema`.
/// - **`$schema` and `$vocabulary`** are not interpreted: every schema is read as draft 2020-12 with all
///   the vocabularies above (older drafts' `definitions`, `dependencies` and `additionalItems` are unknown
///   keywords, ignored like any other).
///
/// Patterns are ECMA-262 regular expressions run on ICU; see `Pattern` for the differences that are
/// bridged. String lengths count Unicode scalars (code points), as the specification requires.

import ToolProtocol

/// A schema compiled for repeated validation.
///
/// Compiling type-checks every keyword, compiles every regular expression and resolves every reference,
/// so a schema that compiles cannot fail at validation time, and validating does no parsing, no
/// regex compilation and no string building unless the instance is invalid. Immutable and safe to share
/// between threads.
public final class CompiledSchema: Sendable {
    private let nodes: [SchemaRules]
    private let root: NodeID
    private let dynamicAnchors: [[String: NodeID]]
    private let usesDynamicReferences: Bool

    /// Compiles `schema`; throws naming the schema path and the reason when the schema is not a valid
    /// draft 2020-12 schema, or uses a remote reference or another unsupported construct.
    public init(_ schema: JSONValue) throws(SchemaError) {
        var compiler = SchemaCompiler(document: schema)
        let compiled = try compiler.compileDocument()
        nodes = compiled.nodes
        root = compiled.root
        dynamicAnchors = compiled.dynamicAnchors
        usesDynamicReferences = compiled.nodes.contains { $0.dynamicRef?.anchor != nil }
    }

    /// Every way `instance` fails the schema, up to `maxErrors` (at least one is always reported for an
    /// invalid instance); empty when it is valid. Errors come in a stable order: schema keyword order,
    /// object members sorted by name.
    /// Patterns match within `budget` (one budget for both passes: a hostile value costs it once).
    public func validate(
        _ instance: JSONValue, maxErrors: Int = 100, budget: RegexBudget = RegexBudget()
    ) -> [ValidationError] {
        if isValid(instance, budget: budget) { return [] }
        return nodes.withUnsafeBufferPointer { buffer in
            var evaluator = Evaluator(
                nodes: buffer, dynamicAnchors: dynamicAnchors, tracksScope: usesDynamicReferences, reporting: true,
                maxErrors: max(1, maxErrors), regexBudget: budget)
            var annotations = Annotations()
            _ = evaluator.evaluate(root, instance, collect: false, &annotations)
            // A give-up under `not` (or a branch that was allowed to fail) left no error of its own.
            if let gaveUp = evaluator.gaveUp, !evaluator.errors.contains(gaveUp) { return evaluator.errors + [gaveUp] }
            if evaluator.errors.isEmpty {
                // Not expected: every failing keyword reports. Never answer "invalid" with no reason.
                return [ValidationError(instancePath: "", schemaPath: "", message: "does not match the schema")]
            }
            return evaluator.errors
        }
    }

    /// Whether `instance` satisfies the schema; stops at the first failure. A value a pattern could not
    /// decide within its time limit is not valid.
    public func isValid(_ instance: JSONValue) -> Bool { isValid(instance, budget: RegexBudget()) }

    func isValid(_ instance: JSONValue, budget: RegexBudget) -> Bool {
        nodes.withUnsafeBufferPointer { buffer in
            var evaluator = Evaluator(
                nodes: buffer, dynamicAnchors: dynamicAnchors, tracksScope: usesDynamicReferences, reporting: false,
                maxErrors: 0, regexBudget: budget)
            var annotations = Annotations()
            let valid = evaluator.evaluate(root, instance, collect: false, &annotations)
            return valid && evaluator.gaveUp == nil
        }
    }
}
