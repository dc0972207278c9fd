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

    static let magicBytes: [UInt8] = Array("MFRECIM1".utf8)
    static let version: UInt32 = 2
    static let headerSize = 64

    /// Floats per row for k factors.
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

    /// The generation in the mapped header now (in-place updates by a writer change it under a reader:
    /// `ItemMatrix.writing` while rows are being rewritten, the new generation after), read with acquire
    /// ordering so that a reader can check it before and after a scan (a sequence lock).
    public var mappedGeneration: UInt64 { UInt64(littleEndian: mfrec_load_u64_acquire(base + 32)) }

    /// The header generation while a writer rewrites rows in place.
    public static let writing = UInt64.max

    var rows: UnsafePointer<Float> { (base + Self.headerSize).assumingMemoryBound(to: Float.self) }
    var biases: UnsafePointer<Float> {
        (base + Self.headerSize + itemCount * stride * 4).assumingMemoryBound(to: Float.self)
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
        guard let count = Int(exactly: UInt64(littleEndian: raw.load(fromByteOffset: 16, as: UInt64.self))) else {
            throw fail(.corrupt("item count out of range"))
        }
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
}
