import Foundation

/// Buffered text output through an `OutputFile` (gzip-compressed for `.gz`), committed by `finish`,
/// so an interrupted run leaves no half-written file under the final name. Errors are `MFRecError`s.
final class LineWriter {
    private let file: OutputFile
    private var buffer: [UInt8] = []
    private var gz: GzipFileWriter?
    private var written: Int64 = 0

    /// Opens `path` (see `OutputFile`); gzip-compressed when `gzip` is true or, by default, when the path
    /// ends in `.gz`.
    init(path: String, gzip: Bool? = nil) throws {
        file = try OutputFile(path: path)
        buffer.reserveCapacity(1 << 20)
        if gzip ?? path.hasSuffix(".gz") {
            // zlib writes a duplicate of the descriptor and closes it when the stream closes.
            guard let stream = GzipFileWriter(descriptor: file.fileDescriptor) else {
                throw MFRecError.cannotWrite(path: path, reason: "cannot start gzip")
            }
            gz = stream
        }
    }

    @inline(__always) func append(_ byte: UInt8) { buffer.append(byte) }
    func append(_ text: String) { buffer.append(contentsOf: text.utf8) }
    /// Appends bytes as they are.
    @inline(__always) func append(bytes: [UInt8]) { buffer.append(contentsOf: bytes) }

    /// Appends an id as a CSV field to `out`: as it is, or quoted (RFC 4180) when it holds a comma, quote or
    /// line break.
    static func appendCSVField(_ bytes: ByteView, to out: inout [UInt8]) {
        let special = bytes.contains { $0 == UInt8(ascii: ",") || $0 == UInt8(ascii: "\"") || $0 == 0x0a || $0 == 0x0d }
        guard special else {
            bytes.append(to: &out)
            return
        }
        out.append(UInt8(ascii: "\""))
        for byte in bytes {
            if byte == UInt8(ascii: "\"") { out.append(byte) }
            out.append(byte)
        }
        out.append(UInt8(ascii: "\""))
    }

    /// `appendCSVField` for a `String` (its UTF-8 bytes).
    static func appendCSVField(_ text: String, to out: inout [UInt8]) {
        ByteView.with(text) { appendCSVField($0, to: &out) }
    }

    /// Appends a finite number with 4 decimals to `out`, as `String(format: "%.4f")` would, without its cost.
    /// value × 10⁴ is exact in a double (24 + 14 bits), so rounding it half to even is what printf does with
    /// the exact binary value (3.28125 gives 3.2812, not 3.2813).
    static func appendFixed4(_ value: Float, to out: inout [UInt8]) {
        guard value.isFinite else {
            out.append(contentsOf: "nan".utf8)
            return
        }
        let scaled = (Double(value) * 10_000).rounded(.toNearestOrEven)
        if scaled.sign == .minus { out.append(UInt8(ascii: "-")) }  // printf keeps the sign of -0.0000
        let magnitude = Int(abs(scaled))
        let whole = magnitude / 10_000
        appendDecimal(whole, to: &out)
        out.append(UInt8(ascii: "."))
        let fraction = magnitude % 10_000
        out.append(UInt8(48 + fraction / 1_000))
        out.append(UInt8(48 + fraction / 100 % 10))
        out.append(UInt8(48 + fraction / 10 % 10))
        out.append(UInt8(48 + fraction % 10))
    }

    /// Appends an integer in decimal to `out` (as `String(value)` writes it), without building a `String`.
    /// - Parameters:
    ///   - value: the integer.
    ///   - out: the bytes appended to.
    static func appendDecimal(_ value: Int, to out: inout [UInt8]) {
        if value < 0 { out.append(UInt8(ascii: "-")) }
        let v = value.magnitude
        var divisor: UInt = 1
        while divisor <= v / 10 { divisor *= 10 }
        repeat {
            out.append(UInt8(48 + v / divisor % 10))
            divisor /= 10
        } while divisor > 0
    }

    /// Appends an integer in decimal (see `appendDecimal`).
    @inline(__always) func append(_ value: Int) { Self.appendDecimal(value, to: &buffer) }

    func flushIfNeeded() throws { if buffer.count >= 1 << 20 { try flush() } }

    private func flush() throws {
        if let gz {
            guard gz.write(buffer) else {
                throw MFRecError.cannotWrite(path: file.path, reason: "cannot write (disk full?)")
            }
        } else {
            try file.write(buffer)
        }
        written += Int64(buffer.count)
        buffer.removeAll(keepingCapacity: true)
    }

    /// Flushes and commits the file; returns the bytes of text written.
    func finish() throws -> Int64 {
        try flush()
        if let gz {
            self.gz = nil
            guard gz.close() else {
                throw MFRecError.cannotWrite(path: file.path, reason: "cannot finish (disk full?)")
            }
        }
        try file.commit()
        return written
    }
}

/// Quotes a CSV field when it needs it (RFC 4180): as it is, or in double quotes (quotes inside doubled) when it
/// holds a comma, a quote or a line break.
/// - Parameter text: the field.
/// - Returns: the field as CSV writes it.
public func csvField(_ text: String) -> String {
    // One rule for every CSV writer: `LineWriter.appendCSVField` (it also quotes a lone carriage return, which a
    // test on `Character`s missed: "\r\n" is one character).
    var out: [UInt8] = []
    LineWriter.appendCSVField(text, to: &out)
    return String(decoding: out, as: UTF8.self)
}
