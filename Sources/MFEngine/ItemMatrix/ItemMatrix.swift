import CKernels
import Dispatch
import Foundation

// The item matrix file type, one of the few unsafe files (ARCHITECTURE.md): its format, `open` (mmap and
// validation), `write` (a temp file renamed into place), `updateInPlace` (pread/pwrite of rows) and the
// checksum. Readers outside this file see the mapping only as `FloatRows` (`rows`, `biases`), which check
// every range they are asked for.

/// The live models' item sides as a file beside the database, memory-mapped read-only: the rating model's
/// item vectors and biases, and the ranking model's item vectors and popularity prior when it has one.
///
/// Layout (little-endian): a 128-byte header — magic `MFRECIM1`, format version, header size, item
/// count, k, row stride (floats), model generation, snapshot id, checksum, then the ranking section's item
/// count, k and row stride (all 0 without a ranking model), then the scan copy's precision (0 f32, 1 f16,
/// 2 i8) — then one row per item of `stride` floats
/// (q_i, zero-padded to a multiple of 16, so rows are 64-byte aligned and SIMD loops have no tail), then
/// the item biases (one float per item, padded to 64 bytes); then the ranking section laid out the same
/// way: its item rows, then its popularity prior in place of the biases. With a reduced precision
/// (`ItemPrecision`), a scan copy of each section's rows follows: `stride` half floats or signed bytes per
/// row, padded to 64 bytes, and for bytes one float scale per row (padded to 64 bytes) after them; scans
/// read the copy and re-score their candidates from the f32 rows. Keeping the biases out of the
/// rows keeps a scan's bytes at exactly k floats per item when k is a multiple of 16. Both models live in
/// one file so that one generation stamp (the sequence lock of in-place updates) covers both.
///
/// The checksum is a wrapping sum of per-item hashes (row and bias, in each section) plus a hash of the
/// header, so an item rewritten in place can update it without rereading the file. The file is derived and
/// disposable: SQLite holds the truth, and any mismatch means "rebuild".
public final class ItemMatrix: @unchecked Sendable {
    // Invariant: `base` maps `length` bytes of a file validated by `open`, read-only, until deinit.
    // Nothing writes through this mapping, so concurrent readers are safe.
    private let base: UnsafeRawPointer
    private let length: Int
    /// Items (rows).
    public let itemCount: Int
    /// k.
    public let factors: Int
    /// Floats per row (k padded to a multiple of 16).
    public let stride: Int
    /// The live-model generation the file was opened at.
    public let generation: UInt64
    /// The snapshot the file was written for.
    public let snapshotID: UInt64
    /// The ranking section's shape: items, k and floats per row (all 0 when the file has none).
    public let ranking: Shape
    /// The precision of the scan copy (`.f32`: none, scans read the rows).
    public let precision: ItemPrecision

    /// The shape of one section: items, k, and floats per row (k padded to a multiple of 16).
    public struct Shape: Sendable, Equatable {
        /// Items (rows).
        public var itemCount: Int
        /// k.
        public var factors: Int
        /// Floats per row.
        public var stride: Int { ItemMatrix.stride(for: factors) }
        /// No section.
        public static let none = Shape(itemCount: 0, factors: 0)

        /// A section of `itemCount` rows of k = `factors`.
        /// - Parameters:
        ///   - itemCount: items.
        ///   - factors: k.
        public init(itemCount: Int, factors: Int) {
            self.itemCount = itemCount
            self.factors = factors
        }

        /// Bytes of the section: the rows, then one float per item padded to 64 bytes.
        var bytes: Int { itemCount * stride * 4 + (itemCount * 4 + 63) / 64 * 64 }
    }

    static let magicBytes: [UInt8] = Array("MFRECIM1".utf8)
    static let version: UInt32 = 4
    static let headerSize = 128
    /// Where the checksum is in the header.
    static let checksumOffset = 48
    /// What the ranking section's item r is hashed as (the rating section's items are 0, 1, …; the header −1).
    static func rankingHashIndex(_ r: Int) -> Int { -(1 << 62) + r }
    /// What the scan copies' rows are hashed as.
    static func reducedHashIndex(_ r: Int) -> Int { -(1 << 61) + r }
    static func rankingReducedHashIndex(_ r: Int) -> Int { Int.min + r }

    /// Floats per row for k factors.
    /// - Parameter factors: k.
    /// - Returns: k rounded up to a multiple of 16.
    public static func stride(for factors: Int) -> Int { (factors + 15) / 16 * 16 }

    /// Bytes of a file holding `count` items of `stride` floats, a ranking section of `ranking`'s shape, and
    /// scan copies of both in `precision`.
    static func fileLength(count: Int, stride: Int, ranking: Shape, precision: ItemPrecision = .f32) -> Int {
        reducedOffset(count: count, stride: stride, ranking: ranking)
            + reducedBytes(count: count, stride: stride, precision)
            + reducedBytes(count: ranking.itemCount, stride: ranking.stride, precision)
    }

    /// Where the scan copies start: after both sections.
    static func reducedOffset(count: Int, stride: Int, ranking: Shape) -> Int {
        rankingOffset(count: count, stride: stride) + ranking.bytes
    }

    /// Where the two sections' scan copies start: the rating section's, then the ranking section's.
    static func reducedOffsets(count: Int, stride: Int, ranking: Shape, precision: ItemPrecision) -> (
        rating: Int, ranking: Int
    ) {
        let first = reducedOffset(count: count, stride: stride, ranking: ranking)
        return (first, first + reducedBytes(count: count, stride: stride, precision))
    }

    /// Bytes of one section's scan copy: its rows padded to 64 bytes, then for i8 one scale per row padded to 64.
    static func reducedBytes(count: Int, stride: Int, _ precision: ItemPrecision) -> Int {
        reducedScalesOffset(count: count, stride: stride, precision)
            + (precision == .i8 ? (count * 4 + 63) / 64 * 64 : 0)
    }

    /// Where a section's scan-copy scales are, from the start of its copy.
    static func reducedScalesOffset(count: Int, stride: Int, _ precision: ItemPrecision) -> Int {
        (count * stride * precision.bytesPerValue + 63) / 64 * 64
    }

    /// Where the ranking section starts: after the header and the rating section.
    static func rankingOffset(count: Int, stride: Int) -> Int {
        headerSize + Shape(itemCount: count, factors: stride).bytes
    }

    deinit { munmap(UnsafeMutableRawPointer(mutating: base), length) }

    private init(
        base: UnsafeRawPointer, length: Int, itemCount: Int, factors: Int, stride: Int, generation: UInt64,
        snapshotID: UInt64, ranking: Shape, precision: ItemPrecision
    ) {
        self.base = base
        self.length = length
        self.itemCount = itemCount
        self.factors = factors
        self.stride = stride
        self.generation = generation
        self.snapshotID = snapshotID
        self.ranking = ranking
        self.precision = precision
    }

    /// The generation in the mapped header now (in-place updates by a writer change it under a reader:
    /// `ItemMatrix.writing` while rows are being rewritten, the new generation after), read with acquire
    /// ordering so that a reader can check it before and after a scan (a sequence lock).
    public var mappedGeneration: UInt64 { UInt64(littleEndian: mfrec_load_u64_acquire(base + 32)) }

    /// The header generation while a writer rewrites rows in place.
    public static let writing = UInt64.max

    /// The rows (`itemCount` × `stride` floats), viewed in the mapping for the life of this handle.
    var rows: FloatRows { FloatRows(base: base + Self.headerSize, count: itemCount * stride) }
    /// The biases (`itemCount` floats), viewed in the mapping for the life of this handle.
    var biases: FloatRows { FloatRows(base: base + Self.headerSize + itemCount * stride * 4, count: itemCount) }
    /// The ranking model's rows (`ranking.itemCount` × `ranking.stride` floats).
    var rankingRows: FloatRows {
        FloatRows(
            base: base + Self.rankingOffset(count: itemCount, stride: stride), count: ranking.itemCount * ranking.stride
        )
    }
    /// The ranking model's popularity prior (`ranking.itemCount` floats).
    var popularity: FloatRows {
        FloatRows(
            base: base + Self.rankingOffset(count: itemCount, stride: stride) + ranking.itemCount * ranking.stride * 4,
            count: ranking.itemCount)
    }

    /// The rating section's scan copy (nil at f32).
    var scanRows: ReducedRows? {
        reduced(
            at: Self.reducedOffsets(count: itemCount, stride: stride, ranking: ranking, precision: precision).rating,
            count: itemCount, stride: stride)
    }
    /// The ranking section's scan copy (nil at f32 or without a ranking section).
    var rankingScanRows: ReducedRows? {
        let offset = Self.reducedOffsets(count: itemCount, stride: stride, ranking: ranking, precision: precision)
            .ranking
        return ranking.itemCount == 0 ? nil : reduced(at: offset, count: ranking.itemCount, stride: ranking.stride)
    }

    private func reduced(at offset: Int, count: Int, stride: Int) -> ReducedRows? {
        guard precision != .f32 else { return nil }
        return ReducedRows(
            rows: base + offset,
            scales: base + offset + Self.reducedScalesOffset(count: count, stride: stride, precision),
            precision: precision, rowCount: count, stride: stride)
    }

    // MARK: Opening

    /// Maps `path` read-only and validates it against what the live model says it should be.
    /// - Throws: `EngineError.itemMatrixStale`, `.itemMatrixMissing` or `.itemMatrixCorrupt` when the file must be
    ///   rebuilt, `.itemMatrixIO` when it cannot be read.
    /// - Parameters:
    ///   - path: the file.
    ///   - generation: the live model's generation.
    ///   - snapshotID: the live snapshot.
    ///   - factors: k.
    ///   - itemCount: items.
    ///   - ranking: the live ranking model's shape (`.none` without one).
    ///   - precision: the scan copy's precision the live model asks for.
    ///   - verifyChecksum: whether to hash every row.
    /// - Returns: the mapped matrix.
    public static func open(
        path: String, generation: UInt64, snapshotID: UInt64, factors: Int, itemCount: Int,
        ranking: Shape = .none, precision: ItemPrecision = .f32, verifyChecksum: Bool = true
    ) throws -> ItemMatrix {
        let fd = Foundation.open(path, O_RDONLY)
        guard fd >= 0 else {
            if errno == ENOENT { throw EngineError.itemMatrixMissing }
            throw EngineError.itemMatrixIO("cannot open \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw EngineError.itemMatrixIO("cannot stat \(path)") }
        let length = Int(info.st_size)
        guard length >= headerSize else { throw EngineError.itemMatrixCorrupt("file is shorter than its header") }
        guard let mapped = mmap(nil, length, PROT_READ, MAP_SHARED, fd, 0), mapped != MAP_FAILED else {
            throw EngineError.itemMatrixIO("cannot map \(path): \(String(cString: strerror(errno)))")
        }
        let raw = UnsafeRawBufferPointer(start: mapped, count: length)
        func fail(_ error: EngineError) -> EngineError {
            munmap(mapped, length)
            return error
        }
        guard Array(raw[0..<8]) == magicBytes else {
            throw fail(.itemMatrixCorrupt("not an mfrec item matrix (bad magic)"))
        }
        let version = UInt32(littleEndian: raw.load(fromByteOffset: 8, as: UInt32.self))
        let storedHeaderSize = UInt32(littleEndian: raw.load(fromByteOffset: 12, as: UInt32.self))
        guard let count = Int(exactly: UInt64(littleEndian: raw.load(fromByteOffset: 16, as: UInt64.self))) else {
            throw fail(.itemMatrixCorrupt("item count out of range"))
        }
        let k = Int(UInt32(littleEndian: raw.load(fromByteOffset: 24, as: UInt32.self)))
        let stride = Int(UInt32(littleEndian: raw.load(fromByteOffset: 28, as: UInt32.self)))
        let gen = UInt64(littleEndian: raw.load(fromByteOffset: 32, as: UInt64.self))
        let snap = UInt64(littleEndian: raw.load(fromByteOffset: 40, as: UInt64.self))
        let stored = UInt64(littleEndian: raw.load(fromByteOffset: checksumOffset, as: UInt64.self))
        guard version == Self.version, storedHeaderSize == headerSize, length >= headerSize else {
            throw fail(.itemMatrixCorrupt("unsupported format version \(version)"))
        }
        guard let rankingCount = Int(exactly: UInt64(littleEndian: raw.load(fromByteOffset: 56, as: UInt64.self)))
        else {
            throw fail(.itemMatrixCorrupt("ranking item count out of range"))
        }
        let rankingK = Int(UInt32(littleEndian: raw.load(fromByteOffset: 64, as: UInt32.self)))
        let rankingStride = Int(UInt32(littleEndian: raw.load(fromByteOffset: 68, as: UInt32.self)))
        let shape = Shape(itemCount: rankingCount, factors: rankingK)
        let storedPrecision = ItemPrecision(code: UInt32(littleEndian: raw.load(fromByteOffset: 72, as: UInt32.self)))
        guard gen == generation, snap == snapshotID, k == factors, count == itemCount, stride == Self.stride(for: k),
            shape == ranking, rankingStride == shape.stride, storedPrecision == precision
        else {
            throw fail(.itemMatrixStale)
        }
        // The counts are the caller's (checked equal above), so these products do not overflow.
        guard length == fileLength(count: count, stride: stride, ranking: shape, precision: precision) else {
            throw fail(.itemMatrixCorrupt("file size does not match its header"))
        }
        if verifyChecksum {
            var sum = headerHash(Array(raw[0..<headerSize]))
            func section(at offset: Int, count: Int, stride: Int, hashIndex: (Int) -> Int) {
                let rowBytes = stride * 4
                let biasBase = offset + count * rowBytes
                for r in 0..<count {
                    let bias = Float(
                        bitPattern: UInt32(
                            littleEndian: raw.loadUnaligned(fromByteOffset: biasBase + 4 * r, as: UInt32.self)))
                    sum &+= itemHash(
                        UnsafeRawBufferPointer(rebasing: raw[offset + r * rowBytes..<offset + (r + 1) * rowBytes]),
                        bias: bias, item: hashIndex(r))
                }
            }
            section(at: headerSize, count: count, stride: stride) { $0 }
            section(
                at: rankingOffset(count: count, stride: stride), count: shape.itemCount, stride: shape.stride,
                hashIndex: rankingHashIndex)
            func copy(at offset: Int, count: Int, stride: Int, hashIndex: (Int) -> Int) {
                let rowBytes = stride * precision.bytesPerValue
                let scales = offset + reducedScalesOffset(count: count, stride: stride, precision)
                for r in 0..<count {
                    let scale =
                        precision == .i8
                        ? Float(
                            bitPattern: UInt32(
                                littleEndian: raw.loadUnaligned(fromByteOffset: scales + 4 * r, as: UInt32.self)))
                        : 1
                    sum &+= itemHash(
                        UnsafeRawBufferPointer(rebasing: raw[offset + r * rowBytes..<offset + (r + 1) * rowBytes]),
                        bias: scale, item: hashIndex(r))
                }
            }
            if precision != .f32 {
                let at = reducedOffsets(count: count, stride: stride, ranking: shape, precision: precision)
                copy(at: at.rating, count: count, stride: stride, hashIndex: reducedHashIndex)
                copy(
                    at: at.ranking, count: shape.itemCount, stride: shape.stride, hashIndex: rankingReducedHashIndex)
            }
            guard sum == stored else { throw fail(.itemMatrixCorrupt("checksum mismatch")) }
        }
        madvise(mapped, length, MADV_WILLNEED)
        return ItemMatrix(
            base: UnsafeRawPointer(mapped), length: length, itemCount: count, factors: k, stride: stride,
            generation: gen, snapshotID: snap, ranking: shape, precision: precision)
    }

    /// The hash of a header with its checksum field taken as 0.
    static func headerHash(_ header: [UInt8]) -> UInt64 {
        var header = header
        header.withUnsafeMutableBytes { $0.storeBytes(of: UInt64(0), toByteOffset: checksumOffset, as: UInt64.self) }
        return header.withUnsafeBytes { itemHash($0, bias: 0, item: -1) }
    }
}

extension ItemMatrix {
    // MARK: Writing

    /// Runs `body` holding an exclusive lock on the item matrix at `path` (`flock` on `PATH.lock`), so
    /// writers in several processes never interleave their row writes or renames. Where the lock file
    /// cannot be made (a read-only folder), `body` runs unlocked: nothing else can write there either.
    /// - Parameters:
    ///   - path: the item matrix file.
    ///   - body: the writes.
    /// - Returns: what `body` returns.
    /// - Throws: what `body` throws.
    public static func exclusively<R>(path: String, _ body: () throws -> R) rethrows -> R {
        let fd = Foundation.open(path + ".lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return try body() }
        defer { close(fd) }
        while flock(fd, LOCK_EX) != 0 && errno == EINTR {}
        defer { flock(fd, LOCK_UN) }
        return try body()
    }

    /// `exclusively(path:_:)`, waiting at most `seconds` for the lock.
    /// - Parameters:
    ///   - path: the item matrix file.
    ///   - seconds: the longest wait for another holder to let go.
    ///   - body: the work.
    /// - Returns: what `body` returns, or nil (and `body` did not run) when the wait ran out.
    /// - Throws: what `body` throws.
    public static func exclusively<R>(path: String, waitingAtMost seconds: Double, _ body: () throws -> R) rethrows
        -> R?
    {
        let fd = Foundation.open(path + ".lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return try body() }
        defer { close(fd) }
        let deadline = DispatchTime.now().uptimeNanoseconds + UInt64(max(0, seconds) * 1e9)
        var pause: UInt32 = 50
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            guard errno == EINTR || errno == EWOULDBLOCK else { return try body() }
            if errno == EWOULDBLOCK {
                guard DispatchTime.now().uptimeNanoseconds < deadline else { return nil }
                usleep(pause)
                pause = min(pause * 2, 5_000)
            }
        }
        defer { flock(fd, LOCK_UN) }
        return try body()
    }

    /// Writes the item matrix of `model` (and of `ranking`, when given) to `path` atomically: a temp file in the
    /// same folder, fsynced, then renamed over `path`. A crash leaves either the old file or the new one, never a
    /// half-written one.
    /// - Parameters:
    ///   - model: the rating model whose item side is written.
    ///   - ranking: the ranking model whose item vectors and popularity prior are written, if any.
    ///   - precision: the scan copy's precision (`.f32`: none).
    ///   - generation: the live generation it stands for.
    ///   - snapshotID: the live snapshot.
    ///   - path: the file.
    /// - Throws: `EngineError.itemMatrixIO` when it cannot be written (the old file stays).
    public static func write(
        model: FactorModel, ranking: RankingModel? = nil, precision: ItemPrecision = .f32, generation: UInt64,
        snapshotID: UInt64, to path: String
    ) throws {
        let stride = stride(for: model.factors)
        let temp = path + ".tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = Foundation.open(temp, O_WRONLY | O_CREAT | O_EXCL, 0o644)
        guard fd >= 0 else {
            throw EngineError.itemMatrixIO("cannot create \(temp): \(String(cString: strerror(errno)))")
        }
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
                    throw EngineError.itemMatrixIO("cannot write \(temp): \(String(cString: strerror(errno)))")
                }
                offset += n
            }
        }
        // One section: `count` rows of `factors` floats (row i at `vectors[i * from ..< i * from + factors]`)
        // zero-padded to `stride`, then one float per item (`bias(i)`) padded to 64 bytes.
        func section(
            count: Int, factors: Int, stride: Int, vectors: [Float], from: Int, bias: (Int) -> Float,
            hashIndex: (Int) -> Int
        ) throws {
            let rowBytes = stride * 4
            var buffer = [Float](repeating: 0, count: stride * 4096)
            var i = 0
            while i < count {
                let n = min(4096, count - i)
                for r in 0..<n {
                    let item = i + r
                    for f in 0..<stride { buffer[r * stride + f] = 0 }
                    for f in 0..<factors { buffer[r * stride + f] = vectors[item * from + f] }
                }
                try buffer.withUnsafeBytes { raw in
                    for r in 0..<n {
                        checksum &+= itemHash(
                            UnsafeRawBufferPointer(rebasing: raw[r * rowBytes..<(r + 1) * rowBytes]),
                            bias: bias(i + r), item: hashIndex(i + r))
                    }
                    try emit(UnsafeRawBufferPointer(rebasing: raw[0..<n * rowBytes]))
                }
                i += n
            }
            var biases = (0..<count).map(bias)
            biases += [Float](repeating: 0, count: (count * 4 + 63) / 64 * 16 - count)
            try biases.withUnsafeBytes { try emit($0) }
        }
        try header.withUnsafeBytes { try emit($0) }  // placeholder, rewritten at the end
        try section(
            count: model.itemCount, factors: model.factors, stride: stride, vectors: model.itemFactors,
            from: model.stride, bias: { model.useBias ? model.itemBias[$0] : 0 }, hashIndex: { $0 })
        let shape = ranking.map { Shape(itemCount: $0.itemCount, factors: $0.factors) } ?? .none
        if let ranking {
            try section(
                count: shape.itemCount, factors: shape.factors, stride: shape.stride, vectors: ranking.itemVectors,
                from: ranking.factors, bias: { ranking.popularity[$0] }, hashIndex: rankingHashIndex)
        }
        // A section's scan copy: each row encoded in `precision`, then (i8) the rows' scales.
        func copy(count: Int, factors: Int, stride: Int, vectors: [Float], from: Int, hashIndex: (Int) -> Int) throws {
            var scales: [Float] = []
            var written = 0
            var buffer: [UInt8] = []
            for item in 0..<count {
                let (bytes, scale) = precision.encode(
                    vectors[item * from..<item * from + factors], stride: stride)
                checksum &+= bytes.withUnsafeBytes { itemHash($0, bias: scale, item: hashIndex(item)) }
                buffer += bytes
                scales.append(scale)
                if buffer.count >= 1 << 20 || item == count - 1 {
                    try buffer.withUnsafeBytes { try emit($0) }
                    written += buffer.count
                    buffer.removeAll(keepingCapacity: true)
                }
            }
            let padding = [UInt8](repeating: 0, count: (written + 63) / 64 * 64 - written)
            try padding.withUnsafeBytes { try emit($0) }
            if precision == .i8 {
                scales += [Float](repeating: 0, count: (count * 4 + 63) / 64 * 16 - count)
                try scales.withUnsafeBytes { try emit($0) }
            }
        }
        if precision != .f32 {
            try copy(
                count: model.itemCount, factors: model.factors, stride: stride, vectors: model.itemFactors,
                from: model.stride, hashIndex: reducedHashIndex)
            if let ranking {
                try copy(
                    count: shape.itemCount, factors: shape.factors, stride: shape.stride, vectors: ranking.itemVectors,
                    from: ranking.factors, hashIndex: rankingReducedHashIndex)
            }
        }
        fillHeader(
            &header, itemCount: model.itemCount, factors: model.factors, stride: stride, ranking: shape,
            precision: precision, generation: generation, snapshotID: snapshotID, rowChecksum: checksum)
        guard header.withUnsafeBytes({ pwrite(fd, $0.baseAddress, headerSize, 0) }) == headerSize else {
            throw EngineError.itemMatrixIO("cannot write \(temp): \(String(cString: strerror(errno)))")
        }
        guard fsync(fd) == 0 else {
            throw EngineError.itemMatrixIO("cannot sync \(temp): \(String(cString: strerror(errno)))")
        }
        guard rename(temp, path) == 0 else {
            throw EngineError.itemMatrixIO("cannot rename \(temp) to \(path): \(String(cString: strerror(errno)))")
        }
        ok = true
    }

    static func fillHeader(
        _ header: inout [UInt8], itemCount: Int, factors: Int, stride: Int, ranking: Shape, precision: ItemPrecision,
        generation: UInt64, snapshotID: UInt64, rowChecksum: UInt64
    ) {
        header.withUnsafeMutableBytes { h in
            for i in 0..<headerSize { h[i] = 0 }
            for (i, b) in magicBytes.enumerated() { h[i] = b }
            h.storeBytes(of: version.littleEndian, toByteOffset: 8, as: UInt32.self)
            h.storeBytes(of: UInt32(headerSize).littleEndian, toByteOffset: 12, as: UInt32.self)
            h.storeBytes(of: UInt64(itemCount).littleEndian, toByteOffset: 16, as: UInt64.self)
            h.storeBytes(of: UInt32(factors).littleEndian, toByteOffset: 24, as: UInt32.self)
            h.storeBytes(of: UInt32(stride).littleEndian, toByteOffset: 28, as: UInt32.self)
            h.storeBytes(of: generation.littleEndian, toByteOffset: 32, as: UInt64.self)
            h.storeBytes(of: snapshotID.littleEndian, toByteOffset: 40, as: UInt64.self)
            h.storeBytes(of: UInt64(ranking.itemCount).littleEndian, toByteOffset: 56, as: UInt64.self)
            h.storeBytes(of: UInt32(ranking.factors).littleEndian, toByteOffset: 64, as: UInt32.self)
            h.storeBytes(of: UInt32(ranking.stride).littleEndian, toByteOffset: 68, as: UInt32.self)
            h.storeBytes(of: precision.code.littleEndian, toByteOffset: 72, as: UInt32.self)
        }
        let total = rowChecksum &+ headerHash(header)
        header.withUnsafeMutableBytes {
            $0.storeBytes(of: total.littleEndian, toByteOffset: checksumOffset, as: UInt64.self)
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

    /// Rewrites some items' rows and biases (and ranking rows and popularity priors) in place and stamps the
    /// header with `generation`, adjusting the checksum by the changed items' hashes. Readers that hold a
    /// mapping see the new rows at once; one reading an item while it is rewritten may see, for that item and
    /// that query, part of its old vector and part of its new one (each float is either old or new), never
    /// anything else.
    /// - Returns: false (and changes nothing) when the file is not the one expected: the caller
    ///   rewrites it whole instead.
    /// - Parameters:
    ///   - path: the file.
    ///   - expectedGeneration: the generation the file must hold.
    ///   - snapshotID: the snapshot it must hold.
    ///   - factors: k.
    ///   - itemCount: items.
    ///   - items: the rows to rewrite: item, vector, bias.
    ///   - ranking: the ranking section's shape the file must hold (`.none` without one).
    ///   - rankingItems: the ranking rows to rewrite: item, vector, popularity prior.
    ///   - precision: the scan copy's precision the file must hold (its copies of the rows are rewritten too).
    ///   - generation: the generation stamped afterwards.
    public static func updateInPlace(
        path: String, expectedGeneration: UInt64, snapshotID: UInt64, factors: Int, itemCount: Int,
        items: [(item: Int, vector: [Float], bias: Float)], ranking: Shape = .none,
        rankingItems: [(item: Int, vector: [Float], popularity: Float)] = [], precision: ItemPrecision = .f32,
        generation: UInt64
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
            field(12, UInt32.self) == UInt32(headerSize),
            field(16, UInt64.self) == UInt64(itemCount), Int(field(24, UInt32.self)) == factors,
            Int(field(28, UInt32.self)) == stride,
            field(32, UInt64.self) == expectedGeneration, field(40, UInt64.self) == snapshotID,
            field(56, UInt64.self) == UInt64(ranking.itemCount), Int(field(64, UInt32.self)) == ranking.factors,
            Int(field(68, UInt32.self)) == ranking.stride, field(72, UInt32.self) == precision.code,
            items.allSatisfy({ $0.item >= 0 && $0.item < itemCount && $0.vector.count == factors }),
            rankingItems.allSatisfy({
                $0.item >= 0 && $0.item < ranking.itemCount && $0.vector.count == ranking.factors
            })
        else { return false }
        var info = stat()
        guard fstat(fd, &info) == 0,
            Int(info.st_size) == fileLength(count: itemCount, stride: stride, ranking: ranking, precision: precision)
        else {
            return false
        }
        var stored: UInt64 = field(checksumOffset, UInt64.self) &- headerHash(header)
        // Readers map this file: mark it as being written before any row changes (a reader that sees the
        // same generation before and after its scan saw no row change), and give the real one at the end.
        var marker = ItemMatrix.writing.littleEndian
        guard pwrite(fd, &marker, 8, 32) == 8 else { return false }
        // Rewrites rows of one section (rows of `stride` floats at `offset`, one float per item after them).
        func rewrite(
            _ entries: [(item: Int, vector: [Float], bias: Float)], at offset: Int, count: Int, factors: Int,
            stride: Int, hashIndex: (Int) -> Int
        ) -> Bool {
            let rowBytes = stride * 4
            let biasBase = offset + count * rowBytes
            var row = [Float](repeating: 0, count: stride)
            for entry in entries {
                let at = off_t(offset + entry.item * rowBytes)
                var oldBias: Float = 0
                guard row.withUnsafeMutableBytes({ pread(fd, $0.baseAddress, rowBytes, at) }) == rowBytes,
                    pread(fd, &oldBias, 4, off_t(biasBase + 4 * entry.item)) == 4
                else { return false }
                stored &-= row.withUnsafeBytes { itemHash($0, bias: oldBias, item: hashIndex(entry.item)) }
                for f in 0..<stride { row[f] = f < factors ? entry.vector[f] : 0 }
                var bias = entry.bias
                stored &+= row.withUnsafeBytes { itemHash($0, bias: bias, item: hashIndex(entry.item)) }
                guard row.withUnsafeBytes({ pwrite(fd, $0.baseAddress, rowBytes, at) }) == rowBytes,
                    pwrite(fd, &bias, 4, off_t(biasBase + 4 * entry.item)) == 4
                else { return false }
            }
            return true
        }
        guard
            rewrite(items, at: headerSize, count: itemCount, factors: factors, stride: stride, hashIndex: { $0 }),
            rewrite(
                rankingItems.map { ($0.item, $0.vector, $0.popularity) },
                at: rankingOffset(count: itemCount, stride: stride), count: ranking.itemCount,
                factors: ranking.factors, stride: ranking.stride, hashIndex: rankingHashIndex)
        else { return false }
        // Rewrites rows of one section's scan copy (at `offset`; scales after the rows for i8).
        func recode(
            _ entries: [(item: Int, vector: [Float])], at offset: Int, count: Int, stride: Int,
            hashIndex: (Int) -> Int
        ) -> Bool {
            let rowBytes = stride * precision.bytesPerValue
            let scales = offset + reducedScalesOffset(count: count, stride: stride, precision)
            var old = [UInt8](repeating: 0, count: rowBytes)
            for entry in entries {
                let at = off_t(offset + entry.item * rowBytes)
                var oldScale: Float = 1
                guard old.withUnsafeMutableBytes({ pread(fd, $0.baseAddress, rowBytes, at) }) == rowBytes,
                    precision != .i8 || pread(fd, &oldScale, 4, off_t(scales + 4 * entry.item)) == 4
                else { return false }
                stored &-= old.withUnsafeBytes { itemHash($0, bias: oldScale, item: hashIndex(entry.item)) }
                let (bytes, encodedScale) = precision.encode(entry.vector[...], stride: stride)
                var scale = encodedScale
                stored &+= bytes.withUnsafeBytes { itemHash($0, bias: scale, item: hashIndex(entry.item)) }
                guard bytes.withUnsafeBytes({ pwrite(fd, $0.baseAddress, rowBytes, at) }) == rowBytes,
                    precision != .i8 || pwrite(fd, &scale, 4, off_t(scales + 4 * entry.item)) == 4
                else { return false }
            }
            return true
        }
        if precision != .f32 {
            let at = reducedOffsets(count: itemCount, stride: stride, ranking: ranking, precision: precision)
            guard
                recode(
                    items.map { ($0.item, $0.vector) }, at: at.rating, count: itemCount, stride: stride,
                    hashIndex: reducedHashIndex),
                recode(
                    rankingItems.map { ($0.item, $0.vector) }, at: at.ranking, count: ranking.itemCount,
                    stride: ranking.stride, hashIndex: rankingReducedHashIndex)
            else { return false }
        }
        fillHeader(
            &header, itemCount: itemCount, factors: factors, stride: stride, ranking: ranking, precision: precision,
            generation: generation, snapshotID: snapshotID, rowChecksum: stored)
        return header.withUnsafeBytes { pwrite(fd, $0.baseAddress, headerSize, 0) } == headerSize
    }
}
