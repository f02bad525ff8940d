import Testing

@testable import ToolProtocol

/// The native JSON text parser and writer (Sources/ToolProtocol/JSONText.swift), through JSONCoding.
struct JSONTextTests {
    func parse(_ text: String) throws(JSONParseError) -> JSONValue { try JSONCoding.parse(Array(text.utf8)) }
    func text(_ value: JSONValue) -> String { JSONCoding.serializeString(value) }

    @Test func parsesEveryKindOfValue() throws {
        let v = try parse(#" { "a" : [1, -2, 3.5, -0.25e2, 1E3, true, false, null], "b": {"c": "d"}, "e": "" } "#)
        #expect(v["a"] == [1, -2, 3.5, -25, 1000, true, false, nil])
        #expect(v["b"]?["c"] == "d")
        #expect(v["e"] == "")
        #expect(try parse("7") == 7)
        #expect(try parse("\"x\"") == "x")
        #expect(try parse("[]") == [])
        #expect(try parse("{}") == .object([:]))
    }

    @Test func numbersKeepTheirIntegerFormWhenTheyHaveOne() throws {
        #expect(try parse("9223372036854775807") == .int(Int64.max))
        #expect(try parse("-9223372036854775808") == .int(Int64.min))
        // Beyond Int64: a double (numeric equality still holds).
        if case .double(let d) = try parse("9223372036854775808") { #expect(d == 9223372036854775808.0) } else {
            Issue.record("expected a double")
        }
        if case .double = try parse("1.0") {} else { Issue.record("1.0 is a double literal") }
        #expect(try parse("1.0") == 1)
        #expect(try parse("0") == 0)
        #expect(try parse("-0") == 0)
    }

    @Test func decodesEscapesAndSurrogatePairs() throws {
        #expect(try parse(#""a\"b\\c\/d\b\f\n\r\t""#) == .string("a\"b\\c/d\u{8}\u{c}\n\r\t"))
        #expect(try parse(#""\u00e9\u4e2d\ud83d\ude00""#) == .string("é中😀"))
        #expect(try parse(#""\u0000""#) == .string("\u{0}"))
        #expect(try parse("\"é中😀 raw\"") == .string("é中😀 raw"))
    }

    @Test func refusesWhatRFC8259Refuses() {
        let bad = [
            "", " ", "{", "[1,]", "{\"a\":1,}", "[1 2]", "{\"a\" 1}", "{a:1}", "'a'", "01", "1.", ".5", "1e", "+1",
            "-", "NaN", "Infinity", "tru", "nul", "\"abc", "\"a\tb\"", "\"\\x\"", "\"\\u12\"", "\"\\ud800\"",
            "\"\\udc00\"", "\"\\ud800\\u0041\"", "1 2", "[1]]", "// c\n1", "1e400", "[\"a\"]x",
        ]
        for text in bad {
            #expect(throws: JSONParseError.self, "\(text.debugDescription) must be refused") { try parse(text) }
        }
        #expect(throws: JSONParseError.invalidUTF8) { try JSONCoding.parse([0x22, 0xff, 0x22]) }
    }

    @Test func nestingIsBoundedNotAStackOverflow() throws {
        let deep = String(repeating: "[", count: 512) + String(repeating: "]", count: 512)
        #expect(throws: Never.self) { try parse(deep) }
        let tooDeep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        #expect(throws: JSONParseError.self) { try parse(tooDeep) }
        let objects = String(repeating: "{\"a\":", count: 600) + "1" + String(repeating: "}", count: 600)
        #expect(throws: JSONParseError.self) { try parse(objects) }
    }

    @Test func aRepeatedKeyKeepsItsLastValue() throws {
        #expect(try parse(#"{"a": 1, "a": 2}"#) == ["a": 2])
    }

    @Test func writesCompactSortedAndEscaped() {
        #expect(text(["b": 1, "a": [true, nil, "x"], "B": 2.5]) == #"{"B":2.5,"a":[true,null,"x"],"b":1}"#)
        #expect(text("q\"b\\/\n\t\u{1}é") == #""q\"b\\/\n\t\u0001é""#)
        #expect(text(.double(3)) == "3")
        #expect(text(.double(1e300)) == "1e+300")
        #expect(text(.double(.nan)) == "null")
        #expect(text(.int(-7)) == "-7")
    }

    @Test func roundTripsThroughText() throws {
        let values: [JSONValue] = [
            ["s": "é中😀\u{0}\u{1f}\"\\", "n": [0, -1, 1.5, 1e-7, .int(Int64.max), .int(Int64.min)], "o": ["": nil, "k": [[]]]],
            "", 0, [],
        ]
        for value in values {
            #expect(try JSONCoding.parse(JSONCoding.serialize(value)) == value)
        }
    }

    @Test func agreesWithFoundationOnCodableValues() throws {
        struct Sample: Codable, Equatable {
            var name: String
            var count: Int
            var ratio: Double
            var tags: [String]
            var nested: [String: Int]?
        }
        let sample = Sample(name: "a\"b", count: 3, ratio: 0.5, tags: ["x", "é"], nested: ["k": 1])
        let json = try JSONCoding.toJSON(sample)
        #expect(json["name"] == "a\"b" && json["count"] == 3 && json["ratio"] == 0.5)
        #expect(try JSONCoding.fromJSON(Sample.self, json) == sample)
    }
}
