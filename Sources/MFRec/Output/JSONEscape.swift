/// JSON string quoting shared by the writers that build JSON text by hand (the ratings export here, the
/// server's hot routes in MFRecServer): quotes, backslashes and control characters escaped, the rest of
/// the UTF-8 bytes as they are.
package enum JSONEscape {
    /// Appends `value` as a quoted JSON string.
    /// - Parameters:
    ///   - value: the text.
    ///   - bytes: where the quoted, escaped string goes.
    package static func append(_ value: String, to bytes: inout [UInt8]) {
        let backslash = UInt8(ascii: "\\")
        bytes.append(UInt8(ascii: "\""))
        for byte in value.utf8 {
            switch byte {
            case UInt8(ascii: "\""), backslash:
                bytes.append(backslash)
                bytes.append(byte)
            case 0x0a, 0x0d, 0x09:
                bytes.append(backslash)
                bytes.append(byte == 0x0a ? UInt8(ascii: "n") : byte == 0x0d ? UInt8(ascii: "r") : UInt8(ascii: "t"))
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                bytes.append(contentsOf: "\\u00".utf8)
                bytes.append(hex[Int(byte >> 4)])
                bytes.append(hex[Int(byte & 0xf)])
            default: bytes.append(byte)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }
}
