import Foundation
import JSONSchema
import Testing
import ToolProtocol

/// The policy's documentation stays true: the README's annotated copy of the shipped default is the
/// default, and the policy file schema in protocol/ accepts what the daemon accepts.
@Suite struct PolicyDocsTests {
    static func shippedDefault() throws -> JSONValue {
        try JSONCoding.parse(Array(runProgram(Binaries.toold, ["--print-default-policy"]).stdoutBytes))
    }

    @Test func readmeShowsTheShippedDefaultPolicy() throws {
        let readme = try String(contentsOf: Binaries.repoRoot.appendingPathComponent("README.md"), encoding: .utf8)
        let block = try #require(readme.components(separatedBy: "```jsonc\n").dropFirst().first?.components(separatedBy: "\n```").first)
        // The README copy carries `//` comment lines for people; without them it is the JSON the daemon ships.
        let json = block.split(separator: "\n").filter { !$0.trimmingCharacters(in: .whitespaces).hasPrefix("//") }.joined(separator: "\n")
        #expect(try JSONCoding.parse(Array(json.utf8)) == (try Self.shippedDefault()))
    }

    @Test func policySchemaAcceptsTheDaemonsPoliciesAndRefusesBrokenOnes() throws {
        let schemaURL = Binaries.repoRoot.appendingPathComponent("protocol/schema/policy.json")
        let schema = try CompiledSchema(JSONCoding.parse(Array(Data(contentsOf: schemaURL))))
        #expect(schema.validate(try Self.shippedDefault()).isEmpty)
        for accepted in [PolicyTests.matrixPolicy, #"{"principals": {"*": {"allow": ["exec"]}}}"#] {
            #expect(schema.validate(try JSONCoding.parse(Array(accepted.utf8))).isEmpty, "\(accepted)")
        }
        // What the daemon refuses at load (see brokenPolicyOnReloadKeepsThePreviousOne): an unknown mode,
        // an unknown category, an unknown rule.
        for refused in [
            #"{"principals": {"*": {"modes": ["warp"]}}}"#, #"{"principals": {"*": {"allow": ["category:nope"]}}}"#,
            #"{"principals": {"*": {"alow": ["exec"]}}}"#, #"{"principals": {"someone": {}}}"#,
        ] {
            #expect(!schema.validate(try JSONCoding.parse(Array(refused.utf8))).isEmpty, "\(refused)")
        }
    }
}
