import CSQLite
import CZlib
import Foundation

/// The mfrec database: users, items, ratings, snapshots and the live model in one SQLite file.
///
/// Opening migrates the schema to the version this binary knows (or refuses a newer one).
public final class Store {
    public let db: Database
    private var statements: [String: Statement] = [:]

    /// Runs `body` with a prepared statement kept for reuse (hot look-ups skip re-preparing), reset after.
    public func withStatement<R>(_ sql: String, _ body: (Statement) throws -> R) throws -> R {
        let stmt: Statement
        if let cached = statements[sql] { stmt = cached } else { stmt = try db.prepare(sql); statements[sql] = stmt }
        defer { stmt.reset() }
        return try body(stmt)
    }

    /// Opens the database at `path`, creating and migrating it as needed.
    /// - Parameter readOnly: open without writing; the schema must already be current.
    /// A database that cannot be written (a read-only file or file system) is opened read-only:
    /// reads work, and writes fail with a clear "read-only" error.
    public init(path: String, readOnly: Bool = false) throws {
        db = try Store.open(path, readOnly: readOnly)
    }

    private static func open(_ path: String, readOnly: Bool) throws -> Database {
        if !readOnly {
            do {
                let db = try Database(path: path, mode: .readWrite)
                try Migrator.embedded.migrate(db)
                return db
            } catch let error as DatabaseError
                        where [SQLITE_READONLY, SQLITE_CANTOPEN, SQLITE_PERM, SQLITE_AUTH].contains(error.code)
                            && FileManager.default.fileExists(atPath: path) {
                // Not writable: fall through to read-only.
            }
        }
        guard FileManager.default.fileExists(atPath: path) else {
            throw StoreError("no database at \(path); run `mfrec ingest FILE` first")
        }
        let db = try openReadOnly(path)
        let pending = try Migrator.embedded.pending(in: db)
        if !pending.isEmpty {
            throw StoreError("\(path) is read-only and has an older schema; open it once where it can be written to upgrade it")
        }
        return db
    }

    public var isReadOnly: Bool { db.isReadOnly }

    private static func openReadOnly(_ path: String) throws -> Database {
        do {
            let db = try Database(path: path, mode: .readOnly)
            _ = try db.scalarInt("SELECT count(*) FROM sqlite_master")  // WAL needs its -shm: fails on a read-only folder
            return db
        } catch {
            return try Database(path: path, mode: .immutable)
        }
    }

    public var path: String { db.path }

    public func transaction<R>(_ body: () throws -> R) throws -> R {
        if db.isReadOnly {
            throw StoreError("\(db.path) is read-only (the file or its folder cannot be written); nothing was changed")
        }
        return try db.transaction(body)
    }

    // MARK: Metadata

    public func metadata(_ key: String) throws -> String? {
        try db.scalarString("SELECT value FROM metadata WHERE key = ?", [.text(key)])
    }

    public func setMetadata(_ key: String, _ value: String) throws {
        try db.execute("INSERT INTO metadata (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                       [.text(key), .text(value)])
    }

    /// The rating scale: the smallest and largest rating ever ingested (or the scale given at ingest).
    public func ratingScale() throws -> ClosedRange<Double>? {
        guard let lo = try metadata("scale_min").flatMap(Double.init),
              let hi = try metadata("scale_max").flatMap(Double.init) else { return nil }
        return lo...hi
    }

    /// Takes `count` consecutive sequence numbers for rating writes and returns the first.
    public func reserveSequence(_ count: Int) throws -> Int64 {
        let next = try metadata("next_seq").flatMap(Int64.init) ?? 1
        try setMetadata("next_seq", String(next + Int64(count)))
        return next
    }

    // MARK: Counts

    /// Users (ids are dense from 0, so this is max(id) + 1: a rowid look-up, not a table scan).
    public func userCount() throws -> Int { try denseCount("users") }
    /// Items (max(id) + 1, as for users).
    public func itemCount() throws -> Int { try denseCount("items") }

    private func denseCount(_ table: String) throws -> Int {
        try withStatement("SELECT coalesce(max(id) + 1, 0) FROM \(table)") { stmt in try stmt.step() ? stmt.int(0) : 0 }
    }

    /// Stores a rating; a re-rating of the same (user, item) replaces value, timestamp and sequence number.
    public static let upsertRatingSQL = """
        INSERT INTO ratings (user_id, item_id, rating, ts, seq) VALUES (?, ?, ?, ?, ?)
        ON CONFLICT (user_id, item_id) DO UPDATE SET rating = excluded.rating, ts = excluded.ts, seq = excluded.seq
        """
    public func ratingCount() throws -> Int { Int(try db.scalarInt("SELECT count(*) FROM ratings") ?? 0) }
    public func meanRating() throws -> Double? { try db.scalarDouble("SELECT avg(rating) FROM ratings") }
    public func maxSequence() throws -> Int64 { try db.scalarInt("SELECT max(seq) FROM ratings") ?? 0 }

    // MARK: Users and items

    /// Every user key, in id order (index = dense id).
    public func userKeys() throws -> [String] { try keys("SELECT key FROM users ORDER BY id") }
    /// Every item key, in id order (index = dense id).
    public func itemKeys() throws -> [String] { try keys("SELECT key FROM items ORDER BY id") }

    private func keys(_ sql: String) throws -> [String] {
        let stmt = try db.prepare(sql)
        var out: [String] = []
        while try stmt.step() { out.append(stmt.string(0) ?? "") }
        return out
    }

    public func userID(forKey key: String) throws -> Int? {
        try withStatement("SELECT id FROM users WHERE key = ?") { stmt in
            try stmt.bind(key, at: 1)
            return try stmt.step() ? stmt.int(0) : nil
        }
    }

    public func itemID(forKey key: String) throws -> Int? {
        try withStatement("SELECT id FROM items WHERE key = ?") { stmt in
            try stmt.bind(key, at: 1)
            return try stmt.step() ? stmt.int(0) : nil
        }
    }

    public struct ItemInfo: Sendable, Equatable {
        public let id: Int
        public let key: String
        public let title: String?
        public let genres: String?
    }

    public func item(id: Int) throws -> ItemInfo? {
        try withStatement("SELECT id, key, title, genres FROM items WHERE id = ?") { stmt in
            try stmt.bind(Int64(id), at: 1)
            guard try stmt.step() else { return nil }
            return ItemInfo(id: stmt.int(0), key: stmt.string(1) ?? "", title: stmt.string(2), genres: stmt.string(3))
        }
    }

    /// Titles of all items, in id order (nil where none was ingested).
    public func itemTitles() throws -> [String?] {
        let stmt = try db.prepare("SELECT title FROM items ORDER BY id")
        var out: [String?] = []
        while try stmt.step() { out.append(stmt.string(0)) }
        return out
    }

    /// The ids of the items a user rated, ascending (a range scan of the primary key).
    public func ratedItems(ofUser user: Int) throws -> [Int32] {
        try withStatement("SELECT item_id FROM ratings WHERE user_id = ? ORDER BY item_id") { stmt in
            try stmt.bind(Int64(user), at: 1)
            var out: [Int32] = []
            while try stmt.step() { out.append(Int32(truncatingIfNeeded: stmt.int64(0))) }
            return out
        }
    }

    /// The items a user rated, with ratings, in item-id order.
    public func ratings(ofUser user: Int) throws -> [(item: Int, rating: Double)] {
        try withStatement("SELECT item_id, rating FROM ratings WHERE user_id = ? ORDER BY item_id") { stmt in
            try stmt.bind(Int64(user), at: 1)
            var out: [(Int, Double)] = []
            while try stmt.step() { out.append((stmt.int(0), stmt.double(1))) }
            return out
        }
    }

    // MARK: Bulk reads

    /// Streams every rating with `seq <= maxSeq` (all when nil) in primary-key order, without
    /// materializing anything: the caller keeps what it needs.
    public func forEachRating(maxSeq: Int64? = nil, _ body: (Int32, Int32, Float) throws -> Void) throws {
        let stmt = try db.prepare("SELECT user_id, item_id, rating FROM ratings" + (maxSeq == nil ? "" : " WHERE seq <= ?"))
        if let maxSeq { try stmt.bind(maxSeq, at: 1) }
        while try stmt.step() {
            try body(Int32(truncatingIfNeeded: stmt.int64(0)), Int32(truncatingIfNeeded: stmt.int64(1)), Float(stmt.double(2)))
        }
    }

    // MARK: The co-occurrence embedding

    /// The stored co-occurrence embedding's parameters and bytes.
    public struct CooccurrenceRecord: Sendable, Equatable {
        public var version: Int64
        public var factors: Int
        public var itemCount: Int
        public var exponent: Double
        public var vectors: [UInt8]

        public init(version: Int64 = 0, factors: Int, itemCount: Int, exponent: Double, vectors: [UInt8]) {
            self.version = version; self.factors = factors; self.itemCount = itemCount; self.exponent = exponent; self.vectors = vectors
        }
    }

    /// Replaces the co-occurrence embedding (the version grows by one).
    public func setCooccurrence(_ record: CooccurrenceRecord) throws {
        try db.execute("""
            INSERT INTO cooccurrence (id, version, created_at, factors, item_count, exponent, vectors, checksum)
            VALUES (1, 1, strftime('%Y-%m-%dT%H:%M:%SZ', 'now'), ?, ?, ?, ?, ?)
            ON CONFLICT(id) DO UPDATE SET version = version + 1, created_at = excluded.created_at, factors = excluded.factors,
                item_count = excluded.item_count, exponent = excluded.exponent, vectors = excluded.vectors, checksum = excluded.checksum
            """, [.integer(Int64(record.factors)), .integer(Int64(record.itemCount)), .real(record.exponent),
                  .blob(record.vectors), .integer(Store.checksum(record.vectors))])
    }

    public func deleteCooccurrence() throws {
        try db.execute("DELETE FROM cooccurrence")
    }

    /// The version of the stored co-occurrence embedding (nil when there is none): cheap, for cache checks.
    public func cooccurrenceVersion() throws -> Int64? {
        try withStatement("SELECT version FROM cooccurrence WHERE id = 1") { stmt in try stmt.step() ? stmt.int64(0) : nil }
    }

    /// The stored co-occurrence embedding's shape, without its vectors (nil when there is none).
    public func cooccurrenceShape() throws -> (factors: Int, itemCount: Int, exponent: Double, createdAt: String)? {
        let stmt = try db.prepare("SELECT factors, item_count, exponent, created_at FROM cooccurrence WHERE id = 1")
        guard try stmt.step() else { return nil }
        return (Int(stmt.int64(0)), Int(stmt.int64(1)), stmt.double(2), stmt.string(3) ?? "")
    }

    /// The stored co-occurrence embedding, its checksum verified; nil when there is none.
    public func cooccurrence() throws -> CooccurrenceRecord? {
        let stmt = try db.prepare("SELECT version, factors, item_count, exponent, vectors, checksum FROM cooccurrence WHERE id = 1")
        guard try stmt.step() else { return nil }
        let record = CooccurrenceRecord(version: stmt.int64(0), factors: Int(stmt.int64(1)), itemCount: Int(stmt.int64(2)),
                                        exponent: stmt.double(3), vectors: stmt.blob(4))
        guard Store.checksum(record.vectors) == stmt.int64(5) else {
            throw StoreError("\(path): the co-occurrence embedding fails its checksum; run `mfrec train` to fit it again")
        }
        return record
    }

    // MARK: Snapshots and the live model

    /// Stores a snapshot and returns its id. The model blob is checksummed (CRC-32) as stored.
    public func insertSnapshot(_ record: SnapshotRecord) throws -> Int {
        let stmt = try db.prepare("""
            INSERT INTO snapshots (created_at, parent_id, kind, note, factors, user_count, item_count,
                hyperparameters, metrics, history, split, watermark, global_mean, model, model_bytes, checksum)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """)
        try stmt.bind([
            .text(record.createdAt), record.parentID.map { .integer(Int64($0)) } ?? .null, .text(record.kind),
            record.note.map { .text($0) } ?? .null, .integer(Int64(record.factors)), .integer(Int64(record.userCount)),
            .integer(Int64(record.itemCount)), .text(record.hyperparameters), .text(record.metrics),
            .text(record.history), .text(record.split), .integer(record.watermark), .real(record.globalMean),
            .blob(record.model), .integer(Int64(record.modelBytes)), .integer(Store.checksum(record.model)),
        ])
        while try stmt.step() {}
        return Int(sqlite3_last_insert_rowid(db.handle))
    }

    public static func checksum(_ bytes: [UInt8]) -> Int64 {
        bytes.withUnsafeBufferPointer { Int64(crc32(0, $0.baseAddress, uInt($0.count))) }
    }

    /// A snapshot's metadata (without the model blob).
    public func snapshots() throws -> [SnapshotRecord] {
        try selectSnapshots(where: "1", [], withModel: false)
    }

    /// One snapshot with its model; the blob's checksum is verified.
    public func snapshot(id: Int) throws -> SnapshotRecord? {
        guard let record = try selectSnapshots(where: "id = ?", [.integer(Int64(id))], withModel: true).first else { return nil }
        return record
    }

    private func selectSnapshots(where condition: String, _ values: [DatabaseValue], withModel: Bool) throws -> [SnapshotRecord] {
        let stmt = try db.prepare("""
            SELECT id, created_at, parent_id, kind, note, factors, user_count, item_count, hyperparameters, metrics,
                   history, split, watermark, global_mean, \(withModel ? "model" : "NULL"), model_bytes, checksum, length(model)
            FROM snapshots WHERE \(condition) ORDER BY id
            """)
        try stmt.bind(values)
        var out: [SnapshotRecord] = []
        while try stmt.step() {
            var record = SnapshotRecord(
                createdAt: stmt.string(1) ?? "", parentID: stmt.isNull(2) ? nil : stmt.int(2), kind: stmt.string(3) ?? "",
                note: stmt.string(4), factors: stmt.int(5), userCount: stmt.int(6), itemCount: stmt.int(7),
                hyperparameters: stmt.string(8) ?? "{}", metrics: stmt.string(9) ?? "{}", history: stmt.string(10) ?? "[]",
                split: stmt.string(11) ?? "{}", watermark: stmt.int64(12), globalMean: stmt.double(13),
                model: withModel ? stmt.blob(14) : [], modelBytes: stmt.int(15))
            record.id = stmt.int(0)
            record.storedBytes = stmt.int(17)
            if withModel {
                let stored = stmt.int64(16)
                if Store.checksum(record.model) != stored {
                    throw StoreError("snapshot \(record.id!) is corrupt: its model blob does not match its checksum")
                }
            }
            out.append(record)
        }
        return out
    }

    public struct LiveModel: Sendable, Equatable {
        public let snapshotID: Int?
        /// Changes whenever the live model changes (training, rollback, incremental update).
        public let generation: Int64
        /// True when the live model has changes no snapshot holds.
        public let dirty: Bool
        /// Ratings applied incrementally since the snapshot.
        public let updates: Int
        /// The largest ratings.seq the live model has seen.
        public let watermark: Int64
    }

    public func liveModel() throws -> LiveModel {
        try withStatement("SELECT snapshot_id, generation, dirty, updates, watermark FROM live_model WHERE id = 1") { stmt in
            guard try stmt.step() else { return LiveModel(snapshotID: nil, generation: 0, dirty: false, updates: 0, watermark: 0) }
            return LiveModel(snapshotID: stmt.isNull(0) ? nil : stmt.int(0), generation: stmt.int64(1), dirty: stmt.int(2) != 0,
                             updates: stmt.int(3), watermark: stmt.int64(4))
        }
    }

    /// The live model's generation alone: a cheap check for readers that cache the model.
    public func liveGeneration() throws -> Int64 {
        try withStatement("SELECT generation FROM live_model WHERE id = 1") { stmt in try stmt.step() ? stmt.int64(0) : 0 }
    }

    /// Makes snapshot `id` the live model: drops the overlay, bumps the generation. Returns the new generation.
    @discardableResult
    public func setLiveSnapshot(_ id: Int, watermark: Int64) throws -> Int64 {
        try db.execute("DELETE FROM live_users")
        try db.execute("DELETE FROM live_items")
        try db.execute("UPDATE live_model SET snapshot_id = ?, generation = generation + 1, dirty = 0, updates = 0, watermark = ? WHERE id = 1",
                       [.integer(Int64(id)), .integer(watermark)])
        return try liveModel().generation
    }

    /// Records incremental updates: `count` more ratings applied, up to `watermark`. Returns the new generation.
    @discardableResult
    public func markLiveUpdated(count: Int, watermark: Int64) throws -> Int64 {
        try db.execute("UPDATE live_model SET generation = generation + 1, dirty = 1, updates = updates + ?, watermark = max(watermark, ?) WHERE id = 1",
                       [.integer(Int64(count)), .integer(watermark)])
        return try liveModel().generation
    }

    /// One changed row of the live model.
    public struct LiveRow: Sendable, Equatable {
        public var id: Int
        public var bias: Float
        public var vector: [Float]
        public init(id: Int, bias: Float, vector: [Float]) { self.id = id; self.bias = bias; self.vector = vector }
    }

    public func liveRows(users: Bool) throws -> [LiveRow] {
        let stmt = try db.prepare(users ? "SELECT user_id, bias, vector FROM live_users ORDER BY user_id"
                                        : "SELECT item_id, bias, vector FROM live_items ORDER BY item_id")
        var out: [LiveRow] = []
        while try stmt.step() {
            let vector = stmt.withBlob(2) { raw in (0..<raw.count / 4).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self))) } }
            out.append(LiveRow(id: stmt.int(0), bias: Float(stmt.double(1)), vector: vector))
        }
        return out
    }

    public func upsertLiveRow(_ row: LiveRow, user: Bool) throws {
        let sql = user ? "INSERT INTO live_users (user_id, bias, vector) VALUES (?, ?, ?) ON CONFLICT(user_id) DO UPDATE SET bias = excluded.bias, vector = excluded.vector"
                       : "INSERT INTO live_items (item_id, bias, vector) VALUES (?, ?, ?) ON CONFLICT(item_id) DO UPDATE SET bias = excluded.bias, vector = excluded.vector"
        try withStatement(sql) { stmt in
            try stmt.bind(Int64(row.id), at: 1)
            try stmt.bind(Double(row.bias), at: 2)
            var bytes = [UInt8]()
            bytes.reserveCapacity(row.vector.count * 4)
            for v in row.vector { withUnsafeBytes(of: v.bitPattern.littleEndian) { bytes.append(contentsOf: $0) } }
            try stmt.bindBlob(bytes, at: 3)
            try stmt.step()
        }
    }

    /// Deletes a snapshot; refuses the live one.
    public func deleteSnapshot(_ id: Int) throws {
        if try liveModel().snapshotID == id {
            throw StoreError("snapshot \(id) is the live model and cannot be deleted; roll back to another snapshot first")
        }
        guard try db.scalarInt("SELECT count(*) FROM snapshots WHERE id = ?", [.integer(Int64(id))]) ?? 0 > 0 else {
            throw StoreError("there is no snapshot \(id)")
        }
        try db.execute("DELETE FROM snapshots WHERE id = ?", [.integer(Int64(id))])
    }
}

/// One row of the `snapshots` table.
public struct SnapshotRecord: Sendable {
    public var id: Int?
    public var createdAt: String
    public var parentID: Int?
    public var kind: String
    public var note: String?
    public var factors: Int
    public var userCount: Int
    public var itemCount: Int
    public var hyperparameters: String
    public var metrics: String
    public var history: String
    public var split: String
    public var watermark: Int64
    public var globalMean: Double
    public var model: [UInt8]
    public var modelBytes: Int
    public var storedBytes: Int = 0

    public init(createdAt: String, parentID: Int?, kind: String, note: String?, factors: Int, userCount: Int, itemCount: Int,
                hyperparameters: String, metrics: String, history: String, split: String, watermark: Int64,
                globalMean: Double, model: [UInt8], modelBytes: Int) {
        self.createdAt = createdAt; self.parentID = parentID; self.kind = kind; self.note = note
        self.factors = factors; self.userCount = userCount; self.itemCount = itemCount
        self.hyperparameters = hyperparameters; self.metrics = metrics; self.history = history; self.split = split
        self.watermark = watermark; self.globalMean = globalMean; self.model = model; self.modelBytes = modelBytes
    }
}

// MARK: Time order

extension Store {
    /// Each user's earliest rating time among ratings with `seq <= maxSeq` (users without timestamps are left
    /// out), in user order: one pass over the primary key.
    public func firstRatingTimes(maxSeq: Int64) throws -> [(user: Int32, time: Int64)] {
        let stmt = try db.prepare("SELECT user_id, min(ts) FROM ratings WHERE seq <= ? AND ts IS NOT NULL GROUP BY user_id")
        try stmt.bind(maxSeq, at: 1)
        var out: [(user: Int32, time: Int64)] = []
        while try stmt.step() { out.append((Int32(truncatingIfNeeded: stmt.int64(0)), stmt.int64(1))) }
        return out
    }

    /// A user's ratings with `seq <= maxSeq` in time order (ties by item id).
    public func ratingsInTimeOrder(ofUser user: Int32, maxSeq: Int64) throws -> [(item: Int32, rating: Float)] {
        try withStatement("SELECT item_id, rating FROM ratings WHERE user_id = ? AND seq <= ? ORDER BY ts, item_id") { stmt in
            try stmt.bind([.integer(Int64(user)), .integer(maxSeq)])
            var out: [(item: Int32, rating: Float)] = []
            while try stmt.step() { out.append((Int32(truncatingIfNeeded: stmt.int64(0)), Float(stmt.double(1)))) }
            return out
        }
    }
}
