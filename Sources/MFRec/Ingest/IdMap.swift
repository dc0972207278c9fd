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

    private static func pack(_ bytes: UnsafeRawBufferPointer) -> Packed? {
        guard bytes.count <= 16 else { return nil }
        var words: (UInt64, UInt64) = (0, 0)
        withUnsafeMutableBytes(of: &words) { $0.copyMemory(from: bytes) }
        return Packed(a: words.0, b: words.1, count: UInt8(bytes.count))
    }

    /// The index of `bytes`, or nil when it is new.
    func index(of bytes: UnsafeRawBufferPointer) -> Int32? {
        if let key = Self.pack(bytes) { return packed[key] }
        return long[String(decoding: bytes, as: UTF8.self)]
    }

    /// Adds a key known to be new; returns its index.
    mutating func insertNew(_ key: String) -> Int32 {
        let index = count
        var utf8 = key
        let p = utf8.withUTF8 { Self.pack(UnsafeRawBufferPointer($0)) }
        if let p { packed[p] = index } else { long[key] = index }
        count += 1
        return index
    }
}
