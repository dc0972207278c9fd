/// How the item matrix file stores the copy of its rows that top-n scans read: 32-bit floats (the rows
/// themselves, no copy), IEEE half floats, or signed bytes with one scale per row. A reduced copy halves or
/// quarters the bytes a scan reads; the scan keeps a few times n candidates from it and re-scores them exactly
/// from the f32 rows, so the scores it reports are the f32 ones and its lists differ from the f32 lists only
/// where rounding pushed a true top-n item out of the candidates.
public enum ItemPrecision: String, Sendable, Codable, CaseIterable {
    /// The f32 rows, scanned directly (the default: lists exactly as the model scores them).
    case f32
    /// A copy of the rows in IEEE half floats (11 significant bits).
    case f16
    /// A copy of the rows in signed bytes, each row scaled by its largest magnitude / 127.
    case i8

    /// The code stored in the file header.
    public var code: UInt32 {
        switch self {
        case .f32: 0
        case .f16: 1
        case .i8: 2
        }
    }

    /// The precision of a stored code, nil for an unknown one.
    /// - Parameter code: the header's code.
    public init?(code: UInt32) {
        guard let p = Self.allCases.first(where: { $0.code == code }) else { return nil }
        self = p
    }

    /// Bytes per stored value of the scan copy (0: no copy).
    package var bytesPerValue: Int {
        switch self {
        case .f32: 0
        case .f16: 2
        case .i8: 1
        }
    }

    /// Candidates kept from the reduced scan for a top-n, to be re-scored exactly.
    static func candidates(for n: Int) -> Int { n + max(n, 32) }

    /// One row (`stride` floats, zero-padded) in this precision: its bytes and its scale (i8; 1 otherwise).
    func encode(_ row: ArraySlice<Float>, stride: Int) -> (bytes: [UInt8], scale: Float) {
        var bytes = [UInt8](repeating: 0, count: stride * bytesPerValue)
        switch self {
        case .f32:
            return ([], 1)
        case .f16:
            for (f, x) in row.enumerated() where f < stride {
                let bits = Float16(x).bitPattern
                bytes[2 * f] = UInt8(truncatingIfNeeded: bits)
                bytes[2 * f + 1] = UInt8(truncatingIfNeeded: bits >> 8)
            }
            return (bytes, 1)
        case .i8:
            let (values, scale) = Self.quantize(row)
            for (f, v) in values.enumerated() where f < stride { bytes[f] = UInt8(bitPattern: v) }
            return (bytes, scale)
        }
    }

    /// Values in signed bytes, scaled by their largest finite magnitude / 127 (scale 0, all bytes 0, when that
    /// is 0; a value that is not finite becomes 0): how i8 rows and the queries scanned against them are stored.
    /// - Parameter values: the values (a row, or a query).
    /// - Returns: the bytes and the scale they are multiplied by.
    package static func quantize(_ values: some Collection<Float>) -> (bytes: [Int8], scale: Float) {
        let largest = values.reduce(Float(0)) { max($0, $1.isFinite ? abs($1) : 0) }
        guard largest > 0 else { return ([Int8](repeating: 0, count: values.count), 0) }
        let scale = largest / 127
        return (values.map { $0.isFinite ? Int8(max(-127, min(127, ($0 / scale).rounded()))) : 0 }, scale)
    }
}
