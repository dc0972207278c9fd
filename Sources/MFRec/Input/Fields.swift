import Foundation

/// Byte-level helpers for parsing delimited lines without building strings.
enum Fields {
    /// Splits `line` on a one- or two-byte delimiter into `out` (reused to avoid allocation).
    static func split(_ line: ByteView, delimiter: [UInt8], into out: inout [Range<Int>]) {
        line.split(delimiter: delimiter, into: &out)
    }

    /// Splits a CSV line (RFC 4180 quoting: `"a, b"`, doubled quotes inside) into fields.
    /// - Returns: the fields, or nil when a quoted field is not closed.
    static func splitCSV(_ line: ByteView) -> [[UInt8]]? {
        var fields: [[UInt8]] = []
        var field: [UInt8] = []
        var inQuotes = false
        var i = 0
        while i < line.count {
            let c = line[i]
            if inQuotes {
                if c == UInt8(ascii: "\"") {
                    if i + 1 < line.count && line[i + 1] == UInt8(ascii: "\"") {
                        field.append(c)
                        i += 1
                    } else {
                        inQuotes = false
                    }
                } else {
                    field.append(c)
                }
            } else if c == UInt8(ascii: "\"") && field.isEmpty {
                inQuotes = true
            } else if c == UInt8(ascii: ",") {
                fields.append(field)
                field.removeAll(keepingCapacity: true)
            } else {
                field.append(c)
            }
            i += 1
        }
        if inQuotes { return nil }
        fields.append(field)
        return fields
    }

    /// Whether a field is blank: empty, or only spaces, tabs and carriage returns.
    static func isBlank(_ bytes: ByteView) -> Bool {
        bytes.allSatisfy { $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }
    }

    /// The first control byte (below 0x20, or 0x7F) in an id, if any.
    static func controlByte(_ bytes: ByteView) -> UInt8? {
        bytes.first { $0 < 0x20 || $0 == 0x7F }
    }

    /// Trims ASCII spaces around a field.
    static func trim(_ bytes: ByteView) -> ByteView {
        var lo = 0, hi = bytes.count
        while lo < hi && (bytes[lo] == 0x20 || bytes[lo] == 0x09) { lo += 1 }
        while hi > lo && (bytes[hi - 1] == 0x20 || bytes[hi - 1] == 0x09) { hi -= 1 }
        return bytes.view(lo..<hi)
    }

    /// Parses a finite decimal number. Fast path for `[-]digits[.digits]`, `strtod` otherwise.
    static func parseDouble(_ bytes: ByteView) -> Double? {
        let n = bytes.count
        guard n > 0 else { return nil }
        var i = 0
        var negative = false
        if bytes[0] == UInt8(ascii: "-") {
            negative = true
            i = 1
        } else if bytes[0] == UInt8(ascii: "+") {
            i = 1
        }
        var whole: UInt64 = 0
        var digits = 0
        while i < n, bytes[i] &- 48 < 10, digits < 15 {
            whole = whole * 10 + UInt64(bytes[i] &- 48)
            i += 1
            digits += 1
        }
        var fraction: UInt64 = 0
        var scale: Double = 1
        var fractionDigits = 0
        if i < n && bytes[i] == UInt8(ascii: ".") {
            i += 1
            while i < n, bytes[i] &- 48 < 10, fractionDigits < 9 {
                fraction = fraction * 10 + UInt64(bytes[i] &- 48)
                scale *= 10
                i += 1
                fractionDigits += 1
            }
        }
        if i == n && digits + fractionDigits > 0 {
            let value = Double(whole) + Double(fraction) / scale
            return negative ? -value : value
        }
        return slowParseDouble(bytes)
    }

    private static func slowParseDouble(_ bytes: ByteView) -> Double? {
        // `Double(_: String)` is strtod in the C locale that must consume the whole text.
        guard bytes.count < 64, let value = Double(String(decoding: bytes, as: UTF8.self)), value.isFinite else {
            return nil
        }
        return value
    }

    /// Parses a decimal integer that fits in Int64.
    static func parseInt(_ bytes: ByteView) -> Int64? {
        let n = bytes.count
        guard n > 0 else { return nil }
        var i = 0
        var negative = false
        if bytes[0] == UInt8(ascii: "-") {
            negative = true
            i = 1
        }
        guard i < n, n - i <= 18 else { return nil }
        var value: Int64 = 0
        while i < n {
            let d = bytes[i] &- 48
            guard d < 10 else { return nil }
            value = value * 10 + Int64(d)
            i += 1
        }
        return negative ? -value : value
    }

    /// A short, printable rendering of a field for error messages.
    static func show(_ bytes: ByteView) -> String {
        let text = String(decoding: bytes.prefix(40), as: UTF8.self)
        return "\"" + text + (bytes.count > 40 ? "…" : "") + "\""
    }

    /// Decodes text that is UTF-8 when valid, Latin-1 otherwise (the MovieLens item files are Latin-1).
    static func decodeUTF8OrLatin1(_ bytes: some Collection<UInt8>) -> String {
        if let text = String(validating: bytes, as: UTF8.self) { return text }
        return String(String.UnicodeScalarView(bytes.map { Unicode.Scalar($0) }))
    }
}
