import Foundation
import JSONSchema
import Testing
import ToolProtocol

/// Runs the official JSON-Schema-Test-Suite (draft 2020-12, required keywords) against `CompiledSchema`.
///
/// The suite lives beside the repository in `shared/json-schema-test-suite` (CI checks it out there);
/// `JSON_SCHEMA_TEST_SUITE` overrides the location. `optional/` is not run.
@Suite struct ConformanceTests {
    /// Test files not run at all, with why.
    static let skippedFiles: [String: String] = [
        "refRemote.json": "every case needs documents fetched from localhost:1234; remote $ref is out of scope",
        "vocabulary.json": "needs custom meta-schemas fetched remotely; $vocabulary is not interpreted",
    ]

    /// Individual test groups ("file|group description") not run, with why.
    static let skippedGroups: [String: String] = [
        "defs.json|validate definition against metaschema": "$ref to the 2020-12 meta-schema, a remote document",
        "ref.json|remote ref, containing refs itself": "$ref to the 2020-12 meta-schema, a remote document",
        "dynamicRef.json|$ref to $dynamicRef finds detached $dynamicAnchor":
            "$ref to remote detached-dynamicref.json on localhost:1234",
        "dynamicRef.json|strict-tree schema, guards against misspelled properties":
            "$ref to remote tree.json on localhost:1234",
        "dynamicRef.json|tests for implementation dynamic anchor and reference link":
            "$ref to remote extendible-dynamic-ref.json on localhost:1234",
        "dynamicRef.json|$ref and $dynamicAnchor are independent of order - $defs first":
            "$ref to remote extendible-dynamic-ref.json on localhost:1234",
        "dynamicRef.json|$ref and $dynamicAnchor are independent of order - $ref first":
            "$ref to remote extendible-dynamic-ref.json on localhost:1234",
    ]

    struct FileResult {
        var file: String
        var passed = 0
        var failed = 0
        var skipped = 0
        var failures: [String] = []
    }

    static var suiteDirectory: URL {
        if let override = ProcessInfo.processInfo.environment["JSON_SCHEMA_TEST_SUITE"], !override.isEmpty {
            return URL(fileURLWithPath: override)
        }
        // <repo>/Tests/JSONSchemaTests/ConformanceTests.swift → <repo>/../shared/json-schema-test-suite
        let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        return repository.deletingLastPathComponent().appendingPathComponent("shared/json-schema-test-suite")
    }

    @Test func draft2020_12RequiredKeywordsPassTheOfficialSuite() throws {
        let directory = Self.suiteDirectory.appendingPathComponent("tests/draft2020-12")
        let files = try FileManager.default.contentsOfDirectory(atPath: directory.path)
            .filter { $0.hasSuffix(".json") }.sorted()
        #expect(files.count > 30, "JSON-Schema-Test-Suite not found at \(directory.path)")

        var results: [FileResult] = []
        var usedGroupSkips: Set<String> = []
        for file in files {
            var result = FileResult(file: file)
            let bytes = try [UInt8](Data(contentsOf: directory.appendingPathComponent(file)))
            guard case .array(let groups) = try JSONCoding.parse(bytes) else {
                Issue.record("\(file) is not an array of test groups")
                continue
            }
            for group in groups {
                let description = group["description"]?.stringValue ?? "?"
                let tests = group["tests"]?.arrayValue ?? []
                if Self.skippedFiles[file] != nil || Self.skippedGroups["\(file)|\(description)"] != nil {
                    usedGroupSkips.insert("\(file)|\(description)")
                    result.skipped += tests.count
                    continue
                }
                let schema: CompiledSchema
                do {
                    schema = try CompiledSchema(group["schema"] ?? .null)
                } catch {
                    result.failed += tests.count
                    result.failures.append("\(description): does not compile: \(error)")
                    continue
                }
                for test in tests {
                    let expected = test["valid"]?.boolValue ?? false
                    let data = test["data"] ?? .null
                    let valid = schema.isValid(data)
                    // The reporting path must agree with the checking path.
                    let errors = schema.validate(data)
                    if valid == expected && errors.isEmpty == expected {
                        result.passed += 1
                    } else {
                        result.failed += 1
                        let detail = test["description"]?.stringValue ?? "?"
                        result.failures.append(
                            "\(description) / \(detail): expected \(expected ? "valid" : "invalid"), "
                                + "isValid=\(valid), \(errors.count) errors")
                    }
                }
            }
            results.append(result)
        }

        print(Self.table(results))
        for result in results {
            for failure in result.failures { Issue.record("\(result.file): \(failure)") }
        }
        // A skip entry that no longer names a group (renamed upstream) must be noticed, not linger.
        for stale in Set(Self.skippedGroups.keys).subtracting(usedGroupSkips) {
            Issue.record("skip entry \"\(stale)\" matches no test group")
        }
        for stale in Self.skippedFiles.keys where !files.contains(stale) {
            Issue.record("skipped file \(stale) does not exist")
        }
    }

    static func table(_ results: [FileResult]) -> String {
        let width = max(28, results.map(\.file.count).max() ?? 0)
        func row(_ file: String, _ passed: String, _ failed: String, _ skipped: String) -> String {
            file.padding(toLength: width, withPad: " ", startingAt: 0) + "  "
                + [passed, failed, skipped].map { String(repeating: " ", count: max(0, 7 - $0.count)) + $0 }
                .joined(separator: " ")
        }
        var lines = [row("file", "passed", "failed", "skipped")]
        for result in results {
            lines.append(row(result.file, "\(result.passed)", "\(result.failed)", "\(result.skipped)"))
        }
        lines.append(
            row(
                "total", "\(results.map(\.passed).reduce(0, +))", "\(results.map(\.failed).reduce(0, +))",
                "\(results.map(\.skipped).reduce(0, +))"))
        return lines.joined(separator: "\n")
    }
}
