/// `properties` as an open-addressing table keyed by the member name's UTF-8 bytes.
///
/// Each instance member is looked up once per validation, so the lookup is on the hot path: FNV-1a over
/// the bytes costs a fraction of `String`'s seeded SipHash, names are compared as bytes in one flat buffer
/// (no `String` is retained), and byte comparison is JSON's code-point equality (Swift `String ==` would
/// also match canonically equivalent names). The table also knows which names are `required`, so a pass
/// over the members can count them instead of looking each up.
struct PropertyTable: Sendable {
    /// Property names in sorted order.
    let names: [String]
    /// Per property, its compiled schema.
    let schemas: [NodeID]
    /// Per property, whether `required` lists it.
    let isRequired: [Bool]
    /// How many properties are required.
    let requiredCount: Int
    /// All names' UTF-8 bytes back to back; property `i` spans `starts[i]..<starts[i + 1]`.
    private let bytes: [UInt8]
    private let starts: [Int]
    /// Property index + 1 per slot; 0 is empty. Size is a power of two at least twice the property count.
    private let slots: [Int32]

    init(_ properties: [String: NodeID], required: [String]) {
        let requiredNames = Set(required)
        let sorted = properties.sorted { $0.key < $1.key }
        names = sorted.map(\.key)
        schemas = sorted.map(\.value)
        isRequired = names.map { requiredNames.contains($0) }
        requiredCount = isRequired.filter { $0 }.count
        var bytes: [UInt8] = []
        var starts: [Int] = [0]
        for name in names {
            bytes += name.utf8
            starts.append(bytes.count)
        }
        var size = 4
        while size < names.count * 2 { size *= 2 }
        var slots = [Int32](repeating: 0, count: size)
        for (index, name) in names.enumerated() {
            var slot = Int(Self.hash(Array(name.utf8)) & UInt64(size - 1))
            while slots[slot] != 0 { slot = (slot + 1) & (size - 1) }
            slots[slot] = Int32(index + 1)
        }
        self.bytes = bytes
        self.starts = starts
        self.slots = slots
    }

    /// The index of the property named `key`.
    func find(_ key: String) -> Int? {
        guard !names.isEmpty else { return nil }
        var key = key
        return key.withUTF8 { keyBytes in
            bytes.withUnsafeBufferPointer { allBytes in
                slots.withUnsafeBufferPointer { slots in
                    starts.withUnsafeBufferPointer { starts in
                        let mask = slots.count - 1
                        var slot = Int(Self.hash(keyBytes) & UInt64(mask))
                        while true {
                            let stored = Int(slots[slot])
                            guard stored != 0 else { return nil }
                            let start = starts[stored - 1]
                            let name = UnsafeBufferPointer(rebasing: allBytes[start..<starts[stored]])
                            if sameBytes(name, keyBytes) { return stored - 1 }
                            slot = (slot + 1) & mask
                        }
                    }
                }
            }
        }
    }

    private static func hash<Bytes: Sequence<UInt8>>(_ bytes: Bytes) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes {
            hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3
        }
        return hash ^ (hash >> 29)
    }
}
