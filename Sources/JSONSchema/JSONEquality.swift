#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import ToolProtocol

/// JSON equality as `const`, `enum` and `uniqueItems` define it: numbers by value (`1 == 1.0`), object
/// members regardless of order, and strings by code points.
///
/// `JSONValue`'s own `==` uses Swift `String` equality, which is Unicode canonical equivalence
/// (`"é"` precomposed equals `"e"` + combining accent); JSON Schema compares code point sequences, so
/// strings and member names are compared here by their UTF-8 bytes.
func jsonEqual(_ lhs: JSONValue, _ rhs: JSONValue) -> Bool {
    switch (lhs, rhs) {
    case (.string(let a), .string(let b)):
        return sameCodePoints(a, b)
    case (.array(let a), .array(let b)):
        return a.count == b.count && zip(a, b).allSatisfy(jsonEqual)
    case (.object(let a), .object(let b)):
        guard a.count == b.count else { return false }
        for (key, value) in a {
            // Dictionary lookup is by canonical equivalence too; insist on the identical key.
            guard let index = b.index(forKey: key), sameCodePoints(b.keys[index], key),
                jsonEqual(value, b.values[index])
            else { return false }
        }
        return true
    default:
        return lhs == rhs
    }
}

/// Whether two strings have the same code points, i.e. the same UTF-8 bytes.
func sameCodePoints(_ a: String, _ b: String) -> Bool {
    var a = a
    var b = b
    return a.withUTF8 { x in b.withUTF8 { y in sameBytes(x, y) } }
}

@inline(__always)
func sameBytes(_ x: UnsafeBufferPointer<UInt8>, _ y: UnsafeBufferPointer<UInt8>) -> Bool {
    guard x.count == y.count else { return false }
    guard let first = x.baseAddress, let second = y.baseAddress else { return true }
    return memcmp(first, second, x.count) == 0
}

/// A `JSONValue` hashed by `JSONValue`'s hash and compared with `jsonEqual`. Values equal by code points
/// are canonically equivalent too, so the hash stays consistent with this stricter equality.
struct JSONKey: Hashable {
    let value: JSONValue

    static func == (lhs: JSONKey, rhs: JSONKey) -> Bool { jsonEqual(lhs.value, rhs.value) }
    func hash(into hasher: inout Hasher) { value.hash(into: &hasher) }
}
