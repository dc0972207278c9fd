/// Ids by key, looked up from the bytes of a key without making a `String` of them: batch prediction
/// looks up two ids per line, and building and hashing two Strings per line cost more than the prediction.
/// Open addressing with linear probing over FNV-1a hashes; keys are kept end to end in one byte array.
struct KeyTable {
    private var bytes: [UInt8] = []
    private var starts: [Int] = []
    private var slots: [Int32]  // index into `starts`, or -1
    private let mask: Int

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
    }

    @inline(__always) static func hash<S: Sequence>(_ key: S) -> Int where S.Element == UInt8 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in key { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return Int(truncatingIfNeeded: h ^ (h >> 32))
    }

    /// The id of the key with these bytes, or -1.
    func id<C: Collection>(of key: C) -> Int32 where C.Element == UInt8 {
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
