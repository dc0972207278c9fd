import CKernels
import Dispatch
import Foundation

/// The live model's item vectors and biases as a file beside the database, memory-mapped read-only.
///
/// Layout (little-endian): a 64-byte header — magic `MFRECIM1`, format version, header size, item
/// count, k, row stride (floats), model generation, snapshot id, checksum — then one row per item of
/// `stride` floats (q_i, zero-padded to a multiple of 16, so rows are 64-byte aligned and SIMD loops
/// have no tail), then the item biases (one float per item, padded to 64 bytes). Keeping the biases
/// out of the rows keeps a scan's bytes at exactly k floats per item when k is a multiple of 16.
///
/// The checksum is a wrapping sum of per-item hashes (row and bias) plus a hash of the header, so an
/// item rewritten in place can update it without rereading the file. The file is derived and disposable: SQLite holds
/// the truth, and any mismatch means "rebuild".
public final class ItemMatrix: @unchecked Sendable {
    // Invariant: `base` maps `length` bytes of a file validated by `open`, read-only, until deinit.
    // Nothing writes through this mapping, so concurrent readers are safe.
    private let base: UnsafeRawPointer
    private let length: Int
    public let itemCount: Int
    public let factors: Int
    public let stride: Int
    public let generation: UInt64
    public let snapshotID: UInt64

    static let magicBytes: [UInt8] = Array("MFRECIM1".utf8)
    static let version: UInt32 = 2
    static let headerSize = 64

    public static func stride(for factors: Int) -> Int { (factors + 15) / 16 * 16 }

    /// Bytes of a file holding `count` items of `stride` floats.
    static func fileLength(count: Int, stride: Int) -> Int {
        headerSize + count * stride * 4 + (count * 4 + 63) / 64 * 64
    }

    deinit { munmap(UnsafeMutableRawPointer(mutating: base), length) }

    private init(
        base: UnsafeRawPointer, length: Int, itemCount: Int, factors: Int, stride: Int, generation: UInt64,
        snapshotID: UInt64
    ) {
        self.base = base
        self.length = length
        self.itemCount = itemCount
        self.factors = factors
        self.stride = stride
        self.generation = generation
        self.snapshotID = snapshotID
    }

    /// The generation in the mapped header now (in-place updates by a writer change it under a reader).
    public var mappedGeneration: UInt64 {
        UInt64(littleEndian: base.loadUnaligned(fromByteOffset: 32, as: UInt64.self))
    }

    var rows: UnsafePointer<Float> { (base + Self.headerSize).assumingMemoryBound(to: Float.self) }
    var biases: UnsafePointer<Float> {
        (base + Self.headerSize + itemCount * stride * 4).assumingMemoryBound(to: Float.self)
    }

    // MARK: Writing

    /// Writes the item matrix of `model` to `path` atomically: a temp file in the same folder, fsynced,
    /// then renamed over `path`. A crash leaves either the old file or the new one, never a half-written one.
    public static func write(model: FactorModel, generation: UInt64, snapshotID: UInt64, to path: String) throws {
        let stride = stride(for: model.factors)
        let rowBytes = stride * 4
        let temp = path + ".tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = Foundation.open(temp, O_WRONLY | O_CREAT | O_EXCL, 0o644)
        guard fd >= 0 else { throw ItemMatrixError.io("cannot create \(temp): \(String(cString: strerror(errno)))") }
        var ok = false
        defer {
            close(fd)
            if !ok { unlink(temp) }
        }
        var checksum: UInt64 = 0
        var header = [UInt8](repeating: 0, count: headerSize)
        func emit(_ bytes: UnsafeRawBufferPointer) throws {
            var offset = 0
            while offset < bytes.count {
                let n = Foundation.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw ItemMatrixError.io("cannot write \(temp): \(String(cString: strerror(errno)))")
                }
                offset += n
            }
        }
        try header.withUnsafeBytes { try emit($0) }  // placeholder, rewritten at the end
        var buffer = [Float](repeating: 0, count: stride * 4096)
        var i = 0
        while i < model.itemCount {
            let n = min(4096, model.itemCount - i)
            for r in 0..<n {
                let item = i + r
                for f in 0..<stride { buffer[r * stride + f] = 0 }
                for f in 0..<model.factors { buffer[r * stride + f] = model.itemFactors[item * model.stride + f] }
            }
            try buffer.withUnsafeBytes { raw in
                for r in 0..<n {
                    checksum &+= itemHash(
                        UnsafeRawBufferPointer(rebasing: raw[r * rowBytes..<(r + 1) * rowBytes]),
                        bias: model.useBias ? model.itemBias[i + r] : 0, item: i + r)
                }
                try emit(UnsafeRawBufferPointer(rebasing: raw[0..<n * rowBytes]))
            }
            i += n
        }
        var biases = model.useBias ? model.itemBias : [Float](repeating: 0, count: model.itemCount)
        biases += [Float](
            repeating: 0,
            count: (fileLength(count: model.itemCount, stride: stride) - headerSize - model.itemCount * rowBytes) / 4
                - model.itemCount)
        try biases.withUnsafeBytes { try emit($0) }
        fillHeader(
            &header, itemCount: model.itemCount, factors: model.factors, stride: stride,
            generation: generation, snapshotID: snapshotID, rowChecksum: checksum)
        guard header.withUnsafeBytes({ pwrite(fd, $0.baseAddress, headerSize, 0) }) == headerSize else {
            throw ItemMatrixError.io("cannot write \(temp): \(String(cString: strerror(errno)))")
        }
        guard fsync(fd) == 0 else {
            throw ItemMatrixError.io("cannot sync \(temp): \(String(cString: strerror(errno)))")
        }
        guard rename(temp, path) == 0 else {
            throw ItemMatrixError.io("cannot rename \(temp) to \(path): \(String(cString: strerror(errno)))")
        }
        ok = true
    }

    static func fillHeader(
        _ header: inout [UInt8], itemCount: Int, factors: Int, stride: Int, generation: UInt64,
        snapshotID: UInt64, rowChecksum: UInt64
    ) {
        header.withUnsafeMutableBytes { h in
            for (i, b) in magicBytes.enumerated() { h[i] = b }
            h.storeBytes(of: version.littleEndian, toByteOffset: 8, as: UInt32.self)
            h.storeBytes(of: UInt32(headerSize).littleEndian, toByteOffset: 12, as: UInt32.self)
            h.storeBytes(of: UInt64(itemCount).littleEndian, toByteOffset: 16, as: UInt64.self)
            h.storeBytes(of: UInt32(factors).littleEndian, toByteOffset: 24, as: UInt32.self)
            h.storeBytes(of: UInt32(stride).littleEndian, toByteOffset: 28, as: UInt32.self)
            h.storeBytes(of: generation.littleEndian, toByteOffset: 32, as: UInt64.self)
            h.storeBytes(of: snapshotID.littleEndian, toByteOffset: 40, as: UInt64.self)
            h.storeBytes(of: UInt64(0), toByteOffset: 48, as: UInt64.self)
            let total = rowChecksum &+ itemHash(UnsafeRawBufferPointer(rebasing: h[0..<48]), bias: 0, item: -1)
            h.storeBytes(of: total.littleEndian, toByteOffset: 48, as: UInt64.self)
        }
    }

    /// A 64-bit hash of one item's row and bias (or the header, item −1), mixing 8 bytes at a time.
    static func itemHash(_ bytes: UnsafeRawBufferPointer, bias: Float, item: Int) -> UInt64 {
        var h: UInt64 = 0x9E37_79B9_7F4A_7C15 &* UInt64(bitPattern: Int64(item) &+ 2) ^ UInt64(bias.bitPattern)
        var offset = 0
        while offset + 8 <= bytes.count {
            h = (h ^ bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self)) &* 0x100_0000_01B3
            h ^= h >> 29
            offset += 8
        }
        while offset < bytes.count {
            h = (h ^ UInt64(bytes[offset])) &* 0x100_0000_01B3
            offset += 1
        }
        h = (h ^ (h >> 31)) &* 0xBF58_476D_1CE4_E5B9
        return h ^ (h >> 33)
    }

    /// Rewrites some items' rows and biases in place and stamps the header with `generation`, adjusting
    /// the checksum by the changed items' hashes. Readers that hold a mapping see the new rows at once;
    /// one reading an item while it is rewritten may see, for that item and that query, part of its old
    /// vector and part of its new one (each float is either old or new), never anything else.
    /// - Returns: false (and changes nothing) when the file is not the one expected: the caller
    ///   rewrites it whole instead.
    public static func updateInPlace(
        path: String, expectedGeneration: UInt64, snapshotID: UInt64, factors: Int, itemCount: Int,
        items: [(item: Int, vector: [Float], bias: Float)], generation: UInt64
    ) -> Bool {
        let fd = Foundation.open(path, O_RDWR)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var header = [UInt8](repeating: 0, count: headerSize)
        guard header.withUnsafeMutableBytes({ pread(fd, $0.baseAddress, headerSize, 0) }) == headerSize else {
            return false
        }
        func field<T: FixedWidthInteger>(_ offset: Int, _: T.Type) -> T {
            header.withUnsafeBytes { T(littleEndian: $0.loadUnaligned(fromByteOffset: offset, as: T.self)) }
        }
        let stride = Self.stride(for: factors)
        guard Array(header[0..<8]) == magicBytes, field(8, UInt32.self) == version,
            Int(field(16, UInt64.self)) == itemCount, Int(field(24, UInt32.self)) == factors,
            Int(field(28, UInt32.self)) == stride,
            field(32, UInt64.self) == expectedGeneration, field(40, UInt64.self) == snapshotID,
            items.allSatisfy({ $0.item < itemCount && $0.vector.count == factors })
        else { return false }
        var info = stat()
        guard fstat(fd, &info) == 0, Int(info.st_size) == fileLength(count: itemCount, stride: stride) else {
            return false
        }
        let rowBytes = stride * 4
        let biasBase = headerSize + itemCount * rowBytes
        var stored: UInt64 = field(48, UInt64.self)
        var headerForHash = header
        headerForHash.withUnsafeMutableBytes { $0.storeBytes(of: UInt64(0), toByteOffset: 48, as: UInt64.self) }
        stored &-= headerForHash.withUnsafeBytes {
            itemHash(UnsafeRawBufferPointer(rebasing: $0[0..<48]), bias: 0, item: -1)
        }
        var row = [Float](repeating: 0, count: stride)
        for entry in items {
            let offset = off_t(headerSize + entry.item * rowBytes)
            var oldBias: Float = 0
            guard row.withUnsafeMutableBytes({ pread(fd, $0.baseAddress, rowBytes, offset) }) == rowBytes,
                pread(fd, &oldBias, 4, off_t(biasBase + 4 * entry.item)) == 4
            else { return false }
            stored &-= row.withUnsafeBytes { itemHash($0, bias: oldBias, item: entry.item) }
            for f in 0..<stride { row[f] = f < factors ? entry.vector[f] : 0 }
            var bias = entry.bias
            stored &+= row.withUnsafeBytes { itemHash($0, bias: bias, item: entry.item) }
            guard row.withUnsafeBytes({ pwrite(fd, $0.baseAddress, rowBytes, offset) }) == rowBytes,
                pwrite(fd, &bias, 4, off_t(biasBase + 4 * entry.item)) == 4
            else { return false }
        }
        fillHeader(
            &header, itemCount: itemCount, factors: factors, stride: stride, generation: generation,
            snapshotID: snapshotID, rowChecksum: stored)
        return header.withUnsafeBytes { pwrite(fd, $0.baseAddress, headerSize, 0) } == headerSize
    }

    // MARK: Opening

    /// Maps `path` read-only and validates it against what the live model says it should be.
    /// - Throws: `ItemMatrixError.stale` or `.corrupt` when the file must be rebuilt, `.io` when it cannot be read.
    public static func open(
        path: String, generation: UInt64, snapshotID: UInt64, factors: Int, itemCount: Int,
        verifyChecksum: Bool = true
    ) throws -> ItemMatrix {
        let fd = Foundation.open(path, O_RDONLY)
        guard fd >= 0 else {
            if errno == ENOENT { throw ItemMatrixError.missing }
            throw ItemMatrixError.io("cannot open \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw ItemMatrixError.io("cannot stat \(path)") }
        let length = Int(info.st_size)
        guard length >= headerSize else { throw ItemMatrixError.corrupt("file is shorter than its header") }
        guard let mapped = mmap(nil, length, PROT_READ, MAP_SHARED, fd, 0), mapped != MAP_FAILED else {
            throw ItemMatrixError.io("cannot map \(path): \(String(cString: strerror(errno)))")
        }
        let raw = UnsafeRawBufferPointer(start: mapped, count: length)
        func fail(_ error: ItemMatrixError) -> ItemMatrixError {
            munmap(mapped, length)
            return error
        }
        guard Array(raw[0..<8]) == magicBytes else { throw fail(.corrupt("not an mfrec item matrix (bad magic)")) }
        let version = UInt32(littleEndian: raw.load(fromByteOffset: 8, as: UInt32.self))
        let storedHeaderSize = UInt32(littleEndian: raw.load(fromByteOffset: 12, as: UInt32.self))
        let count = Int(UInt64(littleEndian: raw.load(fromByteOffset: 16, as: UInt64.self)))
        let k = Int(UInt32(littleEndian: raw.load(fromByteOffset: 24, as: UInt32.self)))
        let stride = Int(UInt32(littleEndian: raw.load(fromByteOffset: 28, as: UInt32.self)))
        let gen = UInt64(littleEndian: raw.load(fromByteOffset: 32, as: UInt64.self))
        let snap = UInt64(littleEndian: raw.load(fromByteOffset: 40, as: UInt64.self))
        let stored = UInt64(littleEndian: raw.load(fromByteOffset: 48, as: UInt64.self))
        guard version == Self.version, storedHeaderSize == headerSize else {
            throw fail(.corrupt("unsupported format version \(version)"))
        }
        guard gen == generation, snap == snapshotID, k == factors, count == itemCount, stride == Self.stride(for: k)
        else {
            throw fail(.stale)
        }
        guard count <= (length - headerSize) / max(stride * 4, 1), length == fileLength(count: count, stride: stride)
        else {
            throw fail(.corrupt("file size does not match its header"))
        }
        if verifyChecksum {
            var header = Array(raw[0..<headerSize])
            header.withUnsafeMutableBytes { $0.storeBytes(of: UInt64(0), toByteOffset: 48, as: UInt64.self) }
            var sum = header.withUnsafeBytes {
                itemHash(UnsafeRawBufferPointer(rebasing: $0[0..<48]), bias: 0, item: -1)
            }
            let rowBytes = stride * 4
            let biasBase = headerSize + count * rowBytes
            for r in 0..<count {
                let bias = Float(
                    bitPattern: UInt32(
                        littleEndian: raw.loadUnaligned(fromByteOffset: biasBase + 4 * r, as: UInt32.self)))
                sum &+= itemHash(
                    UnsafeRawBufferPointer(rebasing: raw[headerSize + r * rowBytes..<headerSize + (r + 1) * rowBytes]),
                    bias: bias, item: r)
            }
            guard sum == stored else { throw fail(.corrupt("checksum mismatch")) }
        }
        madvise(mapped, length, MADV_WILLNEED)
        return ItemMatrix(
            base: UnsafeRawPointer(mapped), length: length, itemCount: count, factors: k, stride: stride,
            generation: gen, snapshotID: snap)
    }

    // MARK: Reading

    /// Item i's vector (k values) and bias.
    public func item(_ i: Int) -> (vector: [Float], bias: Float) {
        precondition(i >= 0 && i < itemCount)
        let row = rows + i * stride
        return (Array(UnsafeBufferPointer(start: row, count: factors)), biases[i])
    }

    /// A query vector for a user: p_u zero-padded to `stride` floats.
    public func queryVector(_ user: some Collection<Float>) -> [Float] {
        precondition(user.count == factors)
        var q = [Float](repeating: 0, count: stride)
        for (f, v) in user.enumerated() { q[f] = v }
        return q
    }

    /// Whether the scan uses the AVX2+FMA kernels on this CPU.
    public static var vectorized: Bool { mfrec_kernels_vectorized() != 0 }

    /// The n best items for a query vector: one pass over the mapped rows, SIMD dot products fused with
    /// a bounded min-heap. `excluded` must be sorted ascending (the user's rated items).
    /// With `threads` > 1 each thread scans a slice with its own heap; the heaps are merged.
    /// - Complexity: O(items · (k + log n)).
    public func topN(query: [Float], n: Int, excluded: [Int32] = [], threads: Int = 1) -> [(item: Int32, score: Float)]
    {
        precondition(query.count == stride)
        let parts = max(1, min(threads, itemCount / 16_384))
        if parts == 1 { return scan(query: query, range: 0..<itemCount, n: n, excluded: excluded[...]).sorted() }
        let heaps = ThreadSlots<TopN>(count: parts)
        DispatchQueue.concurrentPerform(iterations: parts) { p in
            let lo = itemCount * p / parts, hi = itemCount * (p + 1) / parts
            let first = lowerBound(excluded, Int32(lo)), last = lowerBound(excluded, Int32(hi))
            heaps.set(p, scan(query: query, range: lo..<hi, n: n, excluded: excluded[first..<last]))
        }
        var merged = TopN(capacity: n)
        for p in 0..<parts { merged.merge(heaps.get(p)) }
        return merged.sorted()
    }

    /// Rows are scored a block at a time by the C kernel (AVX2+FMA when available) into a small buffer
    /// that stays in L1, then offered to the heap; most offers stop at the threshold comparison.
    static let block = 1024

    private func scan(query: [Float], range: Range<Int>, n: Int, excluded: ArraySlice<Int32>) -> TopN {
        var top = TopN(capacity: n)
        var skip = excluded.startIndex
        var scores = [Float](repeating: 0, count: Self.block)
        query.withUnsafeBufferPointer { q in
            scores.withUnsafeMutableBufferPointer { out in
                var start = range.lowerBound
                var threshold = top.threshold
                while start < range.upperBound {
                    let count = min(Self.block, range.upperBound - start)
                    mfrec_scores(q.baseAddress!, rows + start * stride, stride, count, biases + start, out.baseAddress!)
                    for r in 0..<count {
                        let i = Int32(start + r)
                        if skip < excluded.endIndex && excluded[skip] == i {
                            skip += 1
                            continue
                        }
                        if out[r] >= threshold {
                            top.offer(score: out[r], item: i)
                            threshold = top.threshold
                        }
                    }
                    start += count
                }
            }
        }
        return top
    }

    /// Top-n for several users in one pass over the rows: each row is loaded once and scored against
    /// every query (four at a time in registers), which turns a memory-bound scan into a compute-bound one.
    public func topNBatch(queries: [[Float]], n: Int, excluded: [[Int32]]) -> [[(item: Int32, score: Float)]] {
        let b = queries.count
        guard b > 0 else { return [] }
        let block = 256
        var heaps = (0..<b).map { _ in TopN(capacity: n) }
        var cursors = [Int](repeating: 0, count: b)
        let flat = queries.flatMap { $0 }
        var scores = [Float](repeating: 0, count: b * block)
        flat.withUnsafeBufferPointer { q in
            scores.withUnsafeMutableBufferPointer { out in
                var start = 0
                while start < itemCount {
                    let count = min(block, itemCount - start)
                    mfrec_scores_batch(
                        q.baseAddress!, b, rows + start * stride, stride, count, biases + start, out.baseAddress!)
                    for u in 0..<b {
                        let base = u * count
                        var threshold = heaps[u].threshold
                        for r in 0..<count {
                            let i = Int32(start + r)
                            if cursors[u] < excluded[u].count && excluded[u][cursors[u]] == i {
                                cursors[u] += 1
                                continue
                            }
                            if out[base + r] >= threshold {
                                heaps[u].offer(score: out[base + r], item: i)
                                threshold = heaps[u].threshold
                            }
                        }
                    }
                    start += count
                }
            }
        }
        return heaps.map { $0.sorted() }
    }

    /// The n items most similar to `item` by cosine of their vectors (the item itself excluded).
    public func similar(to item: Int, n: Int) -> [(item: Int32, score: Float)] {
        var query = [Float](repeating: 0, count: stride)
        let row = rows + item * stride
        var norm: Float = 0
        for f in 0..<factors {
            query[f] = row[f]
            norm += row[f] * row[f]
        }
        guard norm > 0 else { return [] }
        let inv = 1 / norm.squareRoot()
        for f in 0..<factors { query[f] *= inv }
        var top = TopN(capacity: n)
        let chunks = stride / 16
        query.withUnsafeBufferPointer { q in
            var r = rows
            for i in 0..<itemCount {
                defer { r += stride }
                if i == item { continue }
                let n2 = selfDot(r, chunks: chunks)
                guard n2 > 0 else { continue }
                top.offer(score: dot(q.baseAddress!, r, chunks: chunks) / n2.squareRoot(), item: Int32(i))
            }
        }
        return top.sorted()
    }
}

/// The first index of a sorted array whose element is ≥ value.
func lowerBound(_ sorted: [Int32], _ value: Int32) -> Int {
    var lo = 0, hi = sorted.count
    while lo < hi {
        let mid = (lo + hi) / 2
        if sorted[mid] < value { lo = mid + 1 } else { hi = mid }
    }
    return lo
}

@inline(__always)
func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, chunks: Int) -> Float {
    let ra = UnsafeRawPointer(a), rb = UnsafeRawPointer(b)
    var acc = SIMD16<Float>()
    for c in 0..<chunks {
        acc +=
            ra.loadUnaligned(fromByteOffset: c * 64, as: SIMD16<Float>.self)
            * rb.loadUnaligned(fromByteOffset: c * 64, as: SIMD16<Float>.self)
    }
    return acc.sum()
}

@inline(__always)
func selfDot(_ a: UnsafePointer<Float>, chunks: Int) -> Float { dot(a, a, chunks: chunks) }

public enum ItemMatrixError: Error, CustomStringConvertible, Sendable, Equatable {
    case missing
    case stale
    case corrupt(String)
    case io(String)

    public var description: String {
        switch self {
        case .missing: return "item matrix file is missing"
        case .stale: return "item matrix file belongs to another model version"
        case .corrupt(let why): return "item matrix file is corrupt: \(why)"
        case .io(let why): return why
        }
    }
}
