/// Ids by key, looked up from the bytes of a key without making a `String` of them: batch prediction
/// looks up two ids per line, and building and hashing two Strings per line cost more than the prediction.
/// Open addressing with linear probing over FNV-1a hashes; keys are kept end to end in one byte array.
///
/// When every key is a decimal number written the one way (no sign, no leading zero; ids in most rating files are),
/// a key is looked up by its value in a dense array instead: parsing a few digits costs less than hashing and
/// probing (`mfrec-bench predict`).
struct KeyTable: Sendable {
    private var bytes: [UInt8] = []
    private var starts: [Int] = []
    private var slots: [Int32]  // index into `starts`, or -1
    private let mask: Int
    /// value ↦ id when every key is a canonical decimal of at most 9 digits and the values are not too sparse.
    private var direct: [Int32]? = nil

    /// A table of `keys`, key r ↦ id r.
    init(_ keys: [String]) {
        var capacity = 16
        while capacity < keys.count * 2 { capacity <<= 1 }
        mask = capacity - 1
        slots = [Int32](repeating: -1, count: capacity)
        starts.reserveCapacity(keys.count + 1)
        for (id, key) in keys.enumerated() {
            starts.append(bytes.count)
            bytes.append(contentsOf: key.utf8)
            var slot = Self.hash(key.utf8) & mask
            while slots[slot] >= 0 { slot = (slot + 1) & mask }
            slots[slot] = Int32(id)
        }
        starts.append(bytes.count)
        var values: [Int] = []
        values.reserveCapacity(keys.count)
        for key in keys {
            guard let value = Self.canonicalDecimal(key.utf8) else { return }
            values.append(value)
        }
        let largest = values.max() ?? 0
        guard largest <= 4 * keys.count + 1_024 else { return }
        var table = [Int32](repeating: -1, count: largest + 1)
        for (id, value) in values.enumerated() { table[value] = Int32(id) }
        direct = table
    }

    /// The value of a key that is a decimal number written without sign or leading zero, of 1–9 digits; nil
    /// otherwise (such a key cannot be in a table whose keys all are: it differs from each as a string).
    @inline(__always) static func canonicalDecimal<C: Collection>(_ key: C) -> Int? where C.Element == UInt8 {
        guard !key.isEmpty, key.count <= 9, key.first != UInt8(ascii: "0") || key.count == 1 else { return nil }
        var value = 0
        for b in key {
            let digit = Int(b) &- 48
            guard digit >= 0 && digit <= 9 else { return nil }
            value = value * 10 + digit
        }
        return value
    }

    @inline(__always) static func hash<S: Sequence>(_ key: S) -> Int where S.Element == UInt8 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in key { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return Int(truncatingIfNeeded: h ^ (h >> 32))
    }

    /// The id of the key with these bytes, or -1.
    func id<C: Collection>(of key: C) -> Int32 where C.Element == UInt8 {
        if let direct {
            guard let value = Self.canonicalDecimal(key), value < direct.count else { return -1 }
            return direct[value]
        }
        var slot = Self.hash(key) & mask
        while true {
            let id = slots[slot]
            if id < 0 { return -1 }
            let start = starts[Int(id)], end = starts[Int(id) + 1]
            if end - start == key.count && bytes[start..<end].elementsEqual(key) { return id }
            slot = (slot + 1) & mask
        }
    }
}
