import Foundation
import MFEngine

/// The training cache, `<database>.ratings`: every stored rating as three flat columns (user, item, rating) in
/// (user, item) order — what `train` would read from SQLite — so the next `train` reads the file instead of
/// stepping through the ratings table (on 25M ratings, a few tenths of a second instead of about 5 s).
///
/// A derived file, like the item matrix: the database stays the truth. The header names the state of the
/// ratings it holds (`Store.maxSequence()` and `Store.ratingsEpoch()`, plus the user and item counts); a file
/// whose stamp is not the database's is ignored and rewritten by the next `train`, and so is one whose size,
/// checksum or contents (ids in range, pairs strictly ascending, finite ratings) do not check. `ingest` writes
/// it when it stored the database's first ratings, from the rows it parsed; `forget` removes it, since it holds
/// the forgotten ratings.
///
/// Layout (little-endian, as the platforms mfrec runs on): magic `MFRTRAIN`, version (u32), 4 zero bytes, watermark, epoch, count, users,
/// items (i64 each), checksum (u64 over the payload); then count user ids (i32), count item ids (i32) and
/// count ratings (f32).
public enum TrainingCache {
    /// What a cache file holds: the ratings of a database at one state.
    public struct Stamp: Equatable, Sendable {
        /// `Store.maxSequence()` when the ratings were read.
        public var watermark: Int64
        /// `Store.ratingsEpoch()` then.
        public var epoch: Int64
        /// Users of the database then (every user id is below it).
        public var userCount: Int
        /// Items then.
        public var itemCount: Int
    }

    static let magic = Array("MFRTRAIN".utf8)
    static let version: UInt32 = 1
    static let headerBytes = 64

    /// The three columns of a cache file, mapped read-only.
    public struct Columns {
        /// User ids, in (user, item) order.
        public let users: UnsafeBufferPointer<Int32>
        /// Item ids.
        public let items: UnsafeBufferPointer<Int32>
        /// Ratings.
        public let ratings: UnsafeBufferPointer<Float>
    }

    /// Calls `body` with the ratings in `path` (mapped, valid only during the call) when the file holds exactly
    /// the state `stamp` and checks; returns nil without calling it otherwise (no file, another state, a damaged
    /// or truncated file).
    /// - Parameters:
    ///   - path: the cache file.
    ///   - stamp: the database's current state.
    ///   - body: what to do with the columns.
    /// - Returns: what `body` returns, or nil.
    /// - Throws: what `body` throws.
    public static func withRatings<R>(path: String, stamp: Stamp, _ body: (Columns) throws -> R) rethrows -> R? {
        // O_NONBLOCK: a FIFO at the path must not hold `train` until something writes to it (it is then refused
        // as not a regular file); for a regular file the flag changes nothing.
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG, info.st_size >= headerBytes else {
            return nil
        }
        let size = Int(info.st_size)
        guard let base = mmap(nil, size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0), base != MAP_FAILED else {
            return nil
        }
        defer { munmap(base, size) }
        let raw = UnsafeRawBufferPointer(start: base, count: size)
        let header = Array(raw[0..<headerBytes])
        func int64(_ offset: Int) -> Int64 { LittleEndian.integer(Int64.self, in: header, at: offset) ?? -1 }
        let count = int64(32)
        guard Array(header[0..<8]) == magic, LittleEndian.integer(UInt32.self, in: header, at: 8) == version,
            int64(16) == stamp.watermark, int64(24) == stamp.epoch,
            int64(40) == Int64(stamp.userCount), int64(48) == Int64(stamp.itemCount),
            count >= 0, count <= Int64(size - headerBytes) / 12, Int64(size) == Int64(headerBytes) + 12 * count
        else { return nil }
        let n = Int(count)
        // The header is 64 bytes and the columns 4-byte values: every column is aligned.
        let columns = Columns(
            users: UnsafeBufferPointer(start: (base + headerBytes).assumingMemoryBound(to: Int32.self), count: n),
            items: UnsafeBufferPointer(
                start: (base + headerBytes + 4 * n).assumingMemoryBound(to: Int32.self), count: n),
            ratings: UnsafeBufferPointer(
                start: (base + headerBytes + 8 * n).assumingMemoryBound(to: Float.self), count: n)
        )
        guard
            UInt64(bitPattern: int64(56))
                == checksum(
                    UnsafeRawBufferPointer(columns.users), UnsafeRawBufferPointer(columns.items),
                    UnsafeRawBufferPointer(columns.ratings)),
            holdsValidRatings(columns.users, columns.items, columns.ratings, stamp: stamp)
        else { return nil }
        return try body(columns)
    }

    /// Writes `ratings` (in strictly ascending (user, item) order, ids within the stamp's counts) as the cache
    /// of state `stamp`: to a temporary file in the same folder, then renamed over `path`, so a reader sees the
    /// old file or the new one, never a mix.
    /// - Parameters:
    ///   - ratings: every rating of that state.
    ///   - stamp: the state.
    ///   - path: the cache file.
    /// - Returns: whether it was written (false, and nothing left behind, when the folder is not writable or
    ///   the disk is full: the cache is an optimization; also when the ratings are not what a reader accepts).
    @discardableResult
    public static func write(_ ratings: RatingTriples, stamp: Stamp, to path: String) -> Bool {
        guard holdsValidRatings(ratings, stamp: stamp) else { return false }
        let temporary = path + ".tmp-\(getpid())-\(UUID().uuidString.prefix(8))"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return false }
        var header = magic
        LittleEndian.append(UInt64(version), to: &header)
        for value in [
            stamp.watermark, stamp.epoch, Int64(ratings.count), Int64(stamp.userCount), Int64(stamp.itemCount),
            Int64(bitPattern: checksum(ratings)),
        ] {
            LittleEndian.append(value, to: &header)
        }
        precondition(header.count == headerBytes)
        let written =
            header.withUnsafeBytes { writeFully(fd, $0) } && ratings.users.withUnsafeBytes { writeFully(fd, $0) }
            && ratings.items.withUnsafeBytes { writeFully(fd, $0) }
            && ratings.ratings.withUnsafeBytes { writeFully(fd, $0) }
        guard close(fd) == 0, written, rename(temporary, path) == 0 else {
            unlink(temporary)
            return false
        }
        return true
    }

    /// Removes the cache file (after `forget`: it holds the forgotten ratings).
    /// - Parameter path: the cache file.
    public static func remove(path: String) { unlink(path) }

    /// `holdsValidRatings` for ratings in arrays.
    static func holdsValidRatings(_ ratings: RatingTriples, stamp: Stamp) -> Bool {
        ratings.users.withUnsafeBufferPointer { u in
            ratings.items.withUnsafeBufferPointer { i in
                ratings.ratings.withUnsafeBufferPointer { holdsValidRatings(u, i, $0, stamp: stamp) }
            }
        }
    }

    /// Whether every id is within the stamp's counts, the pairs strictly ascend and the ratings are finite.
    static func holdsValidRatings(
        _ u: UnsafeBufferPointer<Int32>, _ i: UnsafeBufferPointer<Int32>, _ r: UnsafeBufferPointer<Float>,
        stamp: Stamp
    ) -> Bool {
        guard u.count == i.count, i.count == r.count else { return false }
        let userCount = Int64(stamp.userCount), itemCount = Int64(stamp.itemCount)
        var previous: Int64 = -1
        for j in 0..<u.count {
            let user = Int64(u[j]), item = Int64(i[j])
            guard user >= 0, user < userCount, item >= 0, item < itemCount, r[j].isFinite else { return false }
            let pair = user << 32 | item
            guard pair > previous else { return false }
            previous = pair
        }
        return true
    }

    /// The checksum of a cache's payload: the three columns' hashes, combined.
    static func checksum(_ ratings: RatingTriples) -> UInt64 {
        ratings.users.withUnsafeBytes { u in
            ratings.items.withUnsafeBytes { i in ratings.ratings.withUnsafeBytes { checksum(u, i, $0) } }
        }
    }

    /// The checksum of three columns' bytes.
    static func checksum(_ u: UnsafeRawBufferPointer, _ i: UnsafeRawBufferPointer, _ r: UnsafeRawBufferPointer)
        -> UInt64
    {
        let h = (checksum(u) &* 0x9E37_79B9_7F4A_7C15) ^ (checksum(i) &* 0xBF58_476D_1CE4_E5B9) ^ checksum(r)
        return h ^ (h >> 31)
    }

    /// A 64-bit hash of bytes: four independent multiply–xor lanes over 8-byte words, the tail bytewise.
    static func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        var a: UInt64 = 1, b: UInt64 = 2, c: UInt64 = 3, d: UInt64 = 4
        let words = bytes.count / 8
        var j = 0
        while j + 4 <= words {
            a = (a ^ bytes.loadUnaligned(fromByteOffset: j * 8, as: UInt64.self)) &* 0x9E37_79B9_7F4A_7C15
            b = (b ^ bytes.loadUnaligned(fromByteOffset: j * 8 + 8, as: UInt64.self)) &* 0xBF58_476D_1CE4_E5B9
            c = (c ^ bytes.loadUnaligned(fromByteOffset: j * 8 + 16, as: UInt64.self)) &* 0x94D0_49BB_1331_11EB
            d = (d ^ bytes.loadUnaligned(fromByteOffset: j * 8 + 24, as: UInt64.self)) &* 0xD6E8_FEB8_6659_FD93
            j += 4
        }
        var tail = UInt64(bytes.count)
        for k in (j * 8)..<bytes.count { tail = (tail ^ UInt64(bytes[k])) &* 0x100_0000_01B3 }
        var h = (a ^ tail) &* 0x9E37_79B9_7F4A_7C15 ^ (b &* 31) ^ (c &* 131) ^ (d &* 8191)
        h = (h ^ (h >> 29)) &* 0xBF58_476D_1CE4_E5B9
        return h ^ (h >> 32)
    }

    private static func writeFully(_ fd: Int32, _ buffer: UnsafeRawBufferPointer) -> Bool {
        var done = 0
        while done < buffer.count {
            let n = Foundation.write(fd, buffer.baseAddress! + done, min(buffer.count - done, 1 << 30))
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return false }
            done += n
        }
        return true
    }
}
