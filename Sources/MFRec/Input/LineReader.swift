import Foundation

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
    func forEachLine(_ body: (UnsafeRawBufferPointer, Int) throws -> Bool) throws {
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

    private func trimmed(from: Int, to: Int) -> UnsafeRawBufferPointer {
        var from = from
        var to = to
        if to > from && buffer[to - 1] == 0x0D { to -= 1 }
        if isFirstLine {
            isFirstLine = false
            if to - from >= 3 && buffer[from] == 0xEF && buffer[from + 1] == 0xBB && buffer[from + 2] == 0xBF {
                from += 3
            }
        }
        return UnsafeRawBufferPointer(rebasing: buffer[from..<to])
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
