/// mfrec's one codec for stored numbers: little-endian integers and float32, byte by byte (no pointers,
/// every read bounds-checked). Models, ranking models, embeddings and `.npy` exports all go through it.
public enum LittleEndian {
    /// Appends `value`'s bytes, least significant first.
    /// - Parameters:
    ///   - value: the integer.
    ///   - out: the bytes appended to.
    public static func append<T: FixedWidthInteger>(_ value: T, to out: inout [UInt8]) {
        var v = value
        for _ in 0..<MemoryLayout<T>.size {
            out.append(UInt8(truncatingIfNeeded: v))
            v >>= 8
        }
    }

    /// Appends a float32 (its IEEE 754 bit pattern).
    /// - Parameters:
    ///   - value: the float.
    ///   - out: the bytes appended to.
    public static func append(_ value: Float, to out: inout [UInt8]) { append(value.bitPattern, to: &out) }

    /// Appends float32 values.
    /// - Parameters:
    ///   - floats: the values.
    ///   - out: the bytes appended to.
    public static func append<S: Sequence>(floats: S, to out: inout [UInt8]) where S.Element == Float {
        for v in floats { append(v.bitPattern, to: &out) }
    }

    /// The integer stored at `offset`, or nil when the bytes end before it does.
    /// - Parameters:
    ///   - type: the integer type.
    ///   - bytes: the bytes.
    ///   - offset: where the integer starts.
    /// - Returns: the integer, or nil.
    public static func integer<T: FixedWidthInteger>(_ type: T.Type, in bytes: [UInt8], at offset: Int) -> T? {
        let size = MemoryLayout<T>.size
        guard offset >= 0, offset <= bytes.count - size else { return nil }
        var v: T = 0
        for i in (0..<size).reversed() { v = v << 8 | T(truncatingIfNeeded: bytes[offset + i]) }
        return v
    }

    /// `count` float32 values from `offset`, or nil when the bytes end before they do.
    /// - Parameters:
    ///   - bytes: the bytes.
    ///   - offset: where the floats start.
    ///   - count: how many.
    /// - Returns: the floats, or nil.
    public static func floats(in bytes: [UInt8], at offset: Int, count: Int) -> [Float]? {
        guard count >= 0, offset >= 0, count <= (bytes.count - offset) / 4 else { return nil }
        var out = [Float](repeating: 0, count: count)
        var b = offset
        for i in 0..<count {
            out[i] = Float(
                bitPattern: UInt32(bytes[b]) | UInt32(bytes[b + 1]) << 8 | UInt32(bytes[b + 2]) << 16
                    | UInt32(bytes[b + 3]) << 24)
            b += 4
        }
        return out
    }
}
