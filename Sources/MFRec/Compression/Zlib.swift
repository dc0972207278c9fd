import CZlib
import Foundation

// The one file that hands Swift memory to zlib for compression: snapshot blobs (deflate, inflate), gzip
// output files, and gzip streams built in memory. (Reading gzip input lives with the other input bytes, in
// `Input/ByteSource.swift`.) Every call passes an array's own storage with its own count.

/// zlib's one-shot and streaming compression over byte arrays.
package enum Zlib {
    /// `bytes` deflated at `level` (zlib format), or nil when zlib fails.
    static func deflate(_ bytes: [UInt8], level: Int32) -> [UInt8]? {
        var bound = compressBound(uLong(bytes.count))
        var out = [UInt8](repeating: 0, count: Int(bound))
        let rc = out.withUnsafeMutableBufferPointer { dst in
            bytes.withUnsafeBufferPointer { src in
                compress2(dst.baseAddress!, &bound, src.baseAddress, uLong(src.count), level)
            }
        }
        guard rc == Z_OK else { return nil }
        out.removeLast(out.count - Int(bound))
        return out
    }

    /// `bytes` (zlib format) inflated to exactly `size` bytes.
    /// - Returns: the bytes, or the zlib result code when they do not inflate to that size.
    static func inflate(_ bytes: ArraySlice<UInt8>, size: Int) -> Result<[UInt8], ZlibFailure> {
        precondition(size > 0)
        var out = [UInt8](repeating: 0, count: size)
        var length = uLong(size)
        let rc = out.withUnsafeMutableBufferPointer { dst in
            bytes.withUnsafeBufferPointer { src in
                uncompress(dst.baseAddress!, &length, src.baseAddress, uLong(src.count))
            }
        }
        guard rc == Z_OK, length == uLong(size) else { return .failure(ZlibFailure(code: rc)) }
        return .success(out)
    }

    /// A gzip stream of `bytes` (level 1); `bytes` unchanged when zlib fails.
    /// - Parameter bytes: the bytes to compress.
    /// - Returns: the gzip stream.
    package static func gzip(_ bytes: [UInt8]) -> [UInt8] {
        var stream = z_stream()
        guard
            deflateInit2_(
                &stream, 1, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
                == Z_OK
        else { return bytes }
        defer { deflateEnd(&stream) }
        var input = bytes
        var out = [UInt8](repeating: 0, count: Int(deflateBound(&stream, uLong(bytes.count))) + 64)
        let produced = input.withUnsafeMutableBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst -> Int in
                stream.next_in = src.baseAddress
                stream.avail_in = uInt(src.count)
                stream.next_out = dst.baseAddress
                stream.avail_out = uInt(dst.count)
                return CZlib.deflate(&stream, Z_FINISH) == Z_STREAM_END ? dst.count - Int(stream.avail_out) : -1
            }
        }
        return produced >= 0 ? Array(out.prefix(produced)) : bytes
    }
}

/// A zlib result code other than success.
struct ZlibFailure: Error {
    /// zlib's code (`Z_DATA_ERROR`, …).
    let code: Int32
}

/// A gzip stream written to a file descriptor (zlib's `gzFile`, level 1).
///
/// Invariant: owns `file` (and the duplicate descriptor zlib writes) until `close` or deinit.
final class GzipFileWriter {
    private var file: gzFile?

    /// Starts a stream on a duplicate of `descriptor` (closed by `close`); nil when zlib cannot start.
    init?(descriptor: Int32) {
        guard let stream = gzdopen(dup(descriptor), "wb1") else { return nil }
        file = stream
    }

    deinit { if let file { gzclose(file) } }

    /// Compresses and writes `bytes`; false on a write error.
    func write(_ bytes: [UInt8]) -> Bool {
        guard let file else { return false }
        return bytes.withUnsafeBytes { raw in
            raw.isEmpty || gzwrite(file, raw.baseAddress, UInt32(raw.count)) == Int32(raw.count)
        }
    }

    /// Finishes the stream and closes its descriptor; false when the last write fails.
    func close() -> Bool {
        guard let file else { return false }
        self.file = nil
        return gzclose(file) == Z_OK
    }
}
