import CZlib
import Foundation

/// A stream of bytes: a plain file, or a gzip file decompressed by zlib as it is read.
/// The whole file is never held in memory.
protocol ByteSource: AnyObject {
    /// Reads up to `buffer.count` bytes; returns 0 at the end.
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int
    /// Bytes consumed from the underlying file so far (for progress).
    var bytesConsumed: Int64 { get }
}

/// An input error that names the file (and, where it applies, the line and field).
public struct InputError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The input file's name.
    public let file: String
    /// The line, when the error is about one.
    public let line: Int?
    /// What is wrong (naming the field).
    public let reason: String

    /// An error about `file` (and `line`).
    public init(file: String, line: Int? = nil, reason: String) {
        self.file = file
        self.line = line
        self.reason = reason
    }

    /// "file:line: reason", as the command line prints it.
    public var description: String {
        if let line { return "\(file):\(line): \(reason)" }
        return "\(file): \(reason)"
    }
}

/// Opens `path` as a byte stream, decompressing it when it starts with the gzip magic bytes.
func openByteSource(path: String) throws -> ByteSource {
    let name = (path as NSString).lastPathComponent
    let fd = open(path, O_RDONLY)
    guard fd >= 0 else {
        throw InputError(file: name, reason: "cannot open \(path): \(String(cString: strerror(errno)))")
    }
    var magic = [UInt8](repeating: 0, count: 2)
    let got = pread(fd, &magic, 2, 0)
    if got == 2 && magic == [0x1f, 0x8b] {
        return try GzipSource(fd: fd, name: name)
    }
    return FileSource(fd: fd, name: name)
}

/// Total size of the file on disk (compressed size for gzip), for progress.
func fileSize(_ path: String) -> Int64 {
    var info = stat()
    return stat(path, &info) == 0 ? Int64(info.st_size) : 0
}

/// Invariant: owns `fd` until `deinit`.
final class FileSource: ByteSource {
    private let fd: Int32
    private let name: String
    private(set) var bytesConsumed: Int64 = 0

    init(fd: Int32, name: String) {
        self.fd = fd
        self.name = name
    }

    deinit { close(fd) }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        while true {
            let n = Foundation.read(fd, buffer.baseAddress, buffer.count)
            if n >= 0 {
                bytesConsumed += Int64(n)
                return n
            }
            if errno == EINTR { continue }
            throw InputError(file: name, reason: "read failed: \(String(cString: strerror(errno)))")
        }
    }
}

/// Invariant: owns the zlib `gzFile` (and through it the descriptor) until `deinit`.
final class GzipSource: ByteSource {
    private let file: gzFile
    private let name: String
    private let fd: Int32

    init(fd: Int32, name: String) throws {
        guard let file = gzdopen(fd, "rb") else {
            close(fd)
            throw InputError(file: name, reason: "cannot open gzip stream")
        }
        self.file = file
        self.name = name
        self.fd = fd
        gzbuffer(file, 256 * 1024)
    }

    deinit { gzclose(file) }

    var bytesConsumed: Int64 { Int64(gzoffset(file)) }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        let chunk = UInt32(min(buffer.count, Int(Int32.max)))
        let n = gzread(file, buffer.baseAddress, chunk)
        var code: Int32 = 0
        var message = gzerror(file, &code).map { String(cString: $0) } ?? ""
        if message.hasPrefix("<fd:"), let colon = message.range(of: ": ") {
            message = String(message[colon.upperBound...])
        }
        if n < 0 || (code != Z_OK && code != Z_STREAM_END) {
            // Z_BUF_ERROR at the end means the stream stopped before its trailer: a truncated file.
            let reason =
                code == Z_BUF_ERROR
                ? "truncated gzip stream (unexpected end of file)" : "corrupt gzip stream (\(message))"
            throw InputError(file: name, reason: reason)
        }
        return Int(n)
    }
}
