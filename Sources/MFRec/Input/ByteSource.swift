import CZlib
import Foundation

// The one unsafe file of the input layer: bytes come in from a file or a gzip stream into the line
// buffer, and the parsers see them only as `ByteView`s, checked views that never outlive the call that
// handed them out. Nothing else in `Input/` or `Ingest/` forms a pointer.

/// A read-only view of bytes owned elsewhere (the line buffer, an array, a string's UTF-8), valid only
/// during the call that handed it out (`LineReader.forEachLine`, `ByteView.with`). Subscripts check their
/// bounds; `view(_:)` gives a sub-view indexed from 0.
///
/// Invariant: `bytes` is valid for reading while the view is used; a view is never stored past the
/// callback that received it (it is not `Sendable`, and every API takes it as a parameter only).
struct ByteView: RandomAccessCollection {
    private let bytes: UnsafeRawBufferPointer

    fileprivate init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    /// Calls `body` with a view of `array`.
    static func with<R>(_ array: [UInt8], _ body: (ByteView) throws -> R) rethrows -> R {
        try array.withUnsafeBytes { try body(ByteView($0)) }
    }

    /// Calls `body` with a view of `string`'s UTF-8.
    static func with<R>(_ string: String, _ body: (ByteView) throws -> R) rethrows -> R {
        var text = string
        return try text.withUTF8 { try body(ByteView(UnsafeRawBufferPointer($0))) }
    }

    /// 0.
    var startIndex: Int { 0 }
    /// The byte count.
    var endIndex: Int { bytes.count }

    /// The byte at `index`.
    subscript(index: Int) -> UInt8 {
        precondition(index >= 0 && index < bytes.count, "ByteView: index \(index) outside 0..<\(bytes.count)")
        return bytes[index]
    }

    /// Iterates the bytes without a check per byte (the iterator stops at the end of the view).
    func makeIterator() -> UnsafeRawBufferPointer.Iterator { bytes.makeIterator() }

    /// Appends the bytes to `array` in one copy (`Array.append(contentsOf:)` of a view would copy them one at a
    /// time through the iterator).
    func append(to array: inout [UInt8]) { array.append(contentsOf: bytes) }

    /// Calls `body` with the bytes as one buffer, so that `String(decoding:as:)` and other users of
    /// contiguous storage read them in one pass.
    func withContiguousStorageIfAvailable<R>(_ body: (UnsafeBufferPointer<UInt8>) throws -> R) rethrows -> R? {
        try bytes.withMemoryRebound(to: UInt8.self) { try body($0) }
    }

    /// The bytes of `range` as a view of their own, indexed from 0.
    func view(_ range: Range<Int>) -> ByteView {
        precondition(range.lowerBound >= 0 && range.upperBound <= bytes.count, "ByteView: range outside the view")
        return ByteView(UnsafeRawBufferPointer(rebasing: bytes[range]))
    }

    /// Splits the view on a one- or two-byte delimiter into `out` (reused to avoid allocation): the
    /// ranges of the fields, in order. The parsers' hot loop, so it reads the bytes without a check per
    /// byte: every index it reads is below `bytes.count` by its loop condition.
    func split(delimiter: [UInt8], into out: inout [Range<Int>]) {
        precondition(delimiter.count == 1 || delimiter.count == 2)
        out.removeAll(keepingCapacity: true)
        let count = bytes.count
        var fieldStart = 0
        var i = 0
        if delimiter.count == 1 {
            let d = delimiter[0]
            while i < count {
                if bytes[i] == d {
                    out.append(fieldStart..<i)
                    fieldStart = i + 1
                }
                i += 1
            }
        } else {
            let d0 = delimiter[0], d1 = delimiter[1]
            while i < count {
                if bytes[i] == d0 && i + 1 < count && bytes[i + 1] == d1 {
                    out.append(fieldStart..<i)
                    i += 2
                    fieldStart = i
                } else {
                    i += 1
                }
            }
        }
        out.append(fieldStart..<count)
    }

    /// The first index at or after `start` holding `byte` (memchr), or nil.
    func firstIndex(of byte: UInt8, from start: Int) -> Int? {
        precondition(start >= 0 && start <= bytes.count)
        guard start < bytes.count, let base = bytes.baseAddress,
            let hit = memchr(base + start, Int32(byte), bytes.count - start)
        else { return nil }
        return base.distance(to: UnsafeRawPointer(hit))
    }
}

/// A stream of bytes: a plain file, or a gzip file decompressed by zlib as it is read.
/// The whole file is never held in memory.
protocol ByteSource: AnyObject {
    /// Reads up to `buffer.count` bytes; returns 0 at the end.
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int
    /// Bytes consumed from the underlying file so far (for progress).
    var bytesConsumed: Int64 { get }
}

/// Opens `path` as a byte stream, decompressing it when it starts with the gzip magic bytes.
func openByteSource(path: String) throws -> ByteSource {
    let name = (path as NSString).lastPathComponent
    let fd = open(path, O_RDONLY)
    guard fd >= 0 else {
        throw MFRecError.input(file: name, reason: "cannot open \(path): \(String(cString: strerror(errno)))")
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
            throw MFRecError.input(file: name, reason: "read failed: \(String(cString: strerror(errno)))")
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
            throw MFRecError.input(file: name, reason: "cannot open gzip stream")
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
            throw MFRecError.input(file: name, reason: reason)
        }
        return Int(n)
    }
}

/// Splits a byte stream into lines without copying them: each line is handed to the caller as a view
/// into an internal buffer, valid only during the call.
///
/// Accepts `\n` and `\r\n` endings, a UTF-8 byte-order mark at the start, and a last line without
/// a newline. Lines longer than the buffer grow it.
final class LineReader {
    private let source: ByteSource
    private var buffer: UnsafeMutableRawBufferPointer
    private var start = 0  // first unread byte
    private var end = 0  // one past the last valid byte
    private var atEOF = false
    private var isFirstLine = true
    private(set) var lineNumber = 0

    init(source: ByteSource, capacity: Int = 1 << 20) {
        self.source = source
        self.buffer = .allocate(byteCount: capacity, alignment: 16)
    }

    deinit { buffer.deallocate() }

    var bytesConsumed: Int64 { source.bytesConsumed }

    /// Calls `body` with each line (without its line ending) and its 1-based number.
    /// `body` returns false to stop early.
    func forEachLine(_ body: (ByteView, Int) throws -> Bool) throws {
        while true {
            // Find the next newline in the valid bytes.
            if let base = buffer.baseAddress, end > start,
                let hit = memchr(base + start, 0x0A, end - start)
            {
                let stop = UnsafeRawPointer(base).distance(to: UnsafeRawPointer(hit))
                lineNumber += 1
                if try !body(trimmed(from: start, to: stop), lineNumber) { return }
                start = stop + 1
                continue
            }
            if atEOF {
                if end > start {
                    lineNumber += 1
                    _ = try body(trimmed(from: start, to: end), lineNumber)
                }
                start = end
                return
            }
            try refill()
        }
    }

    private func trimmed(from: Int, to: Int) -> ByteView {
        var from = from
        var to = to
        if to > from && buffer[to - 1] == 0x0D { to -= 1 }
        if isFirstLine {
            isFirstLine = false
            if to - from >= 3 && buffer[from] == 0xEF && buffer[from + 1] == 0xBB && buffer[from + 2] == 0xBF {
                from += 3
            }
        }
        return ByteView(UnsafeRawBufferPointer(rebasing: buffer[from..<to]))
    }

    private func refill() throws {
        // Move the partial line to the front; grow when it fills the whole buffer.
        let pending = end - start
        if pending > 0 && start > 0 {
            buffer.baseAddress!.copyMemory(from: buffer.baseAddress! + start, byteCount: pending)
        }
        start = 0
        end = pending
        if end == buffer.count {
            let bigger = UnsafeMutableRawBufferPointer.allocate(byteCount: buffer.count * 2, alignment: 16)
            bigger.baseAddress!.copyMemory(from: buffer.baseAddress!, byteCount: end)
            buffer.deallocate()
            buffer = bigger
        }
        let n = try source.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[end...]))
        if n == 0 { atEOF = true } else { end += n }
    }
}
