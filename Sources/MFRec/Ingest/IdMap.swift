/// Maps the ids of the input files (text keys) to dense 0-based indices in first-seen order.
///
/// Keys of up to 16 bytes — nearly all real ids — are packed into two machine words, so a lookup
/// hashes 17 bytes and allocates nothing; longer keys fall back to `String`.
struct IdMap {
    private struct Packed: Hashable {
        var a: UInt64
        var b: UInt64
        var count: UInt8
    }

    private var packed: [Packed: Int32] = [:]
    private var long: [String: Int32] = [:]
    private(set) var count: Int32 = 0

    init(keys: [String]) {
        packed.reserveCapacity(keys.count)
        for key in keys { _ = insertNew(key) }
    }

    private static func pack(_ bytes: ByteView) -> Packed? {
        guard bytes.count <= 16 else { return nil }
        var a: UInt64 = 0, b: UInt64 = 0
        for (i, byte) in bytes.enumerated() {
            if i < 8 { a |= UInt64(byte) << (8 * i) } else { b |= UInt64(byte) << (8 * (i - 8)) }
        }
        return Packed(a: a, b: b, count: UInt8(bytes.count))
    }

    /// The index of `bytes`, or nil when it is new.
    func index(of bytes: ByteView) -> Int32? {
        if let key = Self.pack(bytes) { return packed[key] }
        return long[String(decoding: bytes, as: UTF8.self)]
    }

    /// Adds a key known to be new; returns its index.
    mutating func insertNew(_ key: String) -> Int32 {
        let index = count
        let p = ByteView.with(key) { Self.pack($0) }
        if let p { packed[p] = index } else { long[key] = index }
        count += 1
        return index
    }
}
