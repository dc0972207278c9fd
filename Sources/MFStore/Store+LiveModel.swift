import Foundation

/// The live model: `live_model` (which snapshot, its generation) and the rows changed since (`live_users`, `live_items`).
extension Store {
    /// Which snapshot is live and what happened to it since.
    public struct LiveModel: Sendable, Equatable {
        /// The live snapshot (nil before the first `train`).
        public let snapshotID: Int?
        /// Changes whenever the live model changes (training, rollback, incremental update).
        public let generation: Int64
        /// True when the live model has changes no snapshot holds.
        public let dirty: Bool
        /// Ratings applied incrementally since the snapshot.
        public let updates: Int
        /// The largest ratings.seq the live model has seen.
        public let watermark: Int64
        /// The generation at which the overlay was last cleared (a snapshot made live): a reader that
        /// holds the same base and an older generation may patch its model with the rows changed since.
        public var baseGeneration: Int64 = 0
    }

    /// The live model's row.
    /// - Returns: the row (its snapshot id nil before the first `train`).
    /// - Throws: `StoreError.sqlite` when SQLite fails.
    public func liveModel() throws -> LiveModel {
        try withStatement(
            "SELECT snapshot_id, generation, dirty, updates, watermark, base_generation FROM live_model WHERE id = 1"
        ) { stmt in
            guard try stmt.step() else {
                return LiveModel(snapshotID: nil, generation: 0, dirty: false, updates: 0, watermark: 0)
            }
            return LiveModel(
                snapshotID: stmt.isNull(0) ? nil : stmt.int(0), generation: stmt.int64(1), dirty: stmt.int(2) != 0,
                updates: stmt.int(3), watermark: stmt.int64(4), baseGeneration: stmt.int64(5))
        }
    }

    /// The live model's generation alone: a cheap check for readers that cache the model.
    /// - Returns: the generation.
    /// - Throws: `StoreError.sqlite` when SQLite fails.
    public func liveGeneration() throws -> Int64 {
        try withStatement("SELECT generation FROM live_model WHERE id = 1") { stmt in
            try stmt.step() ? stmt.int64(0) : 0
        }
    }

    /// Makes snapshot `id` the live model: drops the overlay, bumps the generation.
    /// - Returns: the live model's row after the switch.
    /// - Parameters:
    ///   - id: the snapshot.
    ///   - watermark: the last rating sequence number the snapshot saw.
    /// - Throws: `StoreError.noSnapshot`; `StoreError.sqlite` when SQLite fails.
    @discardableResult
    public func setLiveSnapshot(_ id: Int, watermark: Int64) throws -> LiveModel {
        try transaction {
            try db.execute("DELETE FROM live_users")
            try db.execute("DELETE FROM live_items")
            try db.execute("DELETE FROM live_ranking_items")
            try db.execute(
                "UPDATE live_model SET snapshot_id = ?, generation = generation + 1, dirty = 0, updates = 0, "
                    + "watermark = ?, base_generation = generation + 1 WHERE id = 1",
                [.integer(Int64(id)), .integer(watermark)])
            return try liveModel()
        }
    }

    /// Records incremental updates: `count` more ratings applied, up to `watermark`.
    /// - Returns: the live model's row after the update.
    /// - Parameters:
    ///   - count: ratings applied.
    ///   - watermark: the last sequence number applied.
    /// - Throws: `StoreError.sqlite` when SQLite fails.
    @discardableResult
    public func markLiveUpdated(count: Int, watermark: Int64) throws -> LiveModel {
        try transaction {
            try db.execute(
                "UPDATE live_model SET generation = generation + 1, dirty = 1, updates = updates + ?, watermark = "
                    + "max(watermark, ?) WHERE id = 1",
                [.integer(Int64(count)), .integer(watermark)])
            return try liveModel()
        }
    }

    /// One changed row of the live model.
    public struct LiveRow: Sendable, Equatable {
        /// The user's or item's dense id.
        public var id: Int
        /// Its bias.
        public var bias: Float
        /// Its k-vector.
        public var vector: [Float]
        /// A changed row.
        /// - Parameters:
        ///   - id: the user's or item's dense id.
        ///   - bias: its bias.
        ///   - vector: its k factors.
        public init(id: Int, bias: Float, vector: [Float]) {
            self.id = id
            self.bias = bias
            self.vector = vector
        }
    }

    /// The changed user rows (`users`) or item rows, by id: all of them, or those written by a generation
    /// after `after`.
    /// - Parameters:
    ///   - users: true for user rows, false for item rows.
    ///   - after: only rows of later generations; all when nil.
    /// - Returns: the rows, by id.
    /// - Throws: `StoreError.sqlite` when SQLite fails.
    public func liveRows(users: Bool, after: Int64? = nil) throws -> [LiveRow] {
        // Prepared once per query shape and kept: a query engine runs it after every incremental update.
        return try withStatement(Store.liveRowsSQL(users: users, after: after != nil)) { stmt in
            if let after { try stmt.bind(after, at: 1) }
            var out: [LiveRow] = []
            while try stmt.step() {
                out.append(LiveRow(id: stmt.int(0), bias: Float(stmt.double(1)), vector: Store.floats(stmt.blob(2))))
            }
            return out
        }
    }

    /// `liveRows`' query: every row, or (`after`) those of generations after a bound parameter. The latter names
    /// the generation index: without statistics, SQLite preferred scanning the whole table in key order (to spare
    /// the sort) over searching the index, so every follow-up after one posted rating read every live row.
    static func liveRowsSQL(users: Bool, after: Bool) -> String {
        let table = users ? "live_users" : "live_items", key = users ? "user_id" : "item_id"
        return "SELECT \(key), bias, vector FROM \(table)"
            + (after ? " INDEXED BY \(table)_by_generation WHERE generation > ?" : "") + " ORDER BY \(key)"
    }

    /// Stores a changed user or item row (replacing an earlier one), stamped with the generation the
    /// update will commit as (the current one + 1: `markLiveUpdated` follows in the same transaction).
    /// - Parameters:
    ///   - row: the row.
    ///   - user: true for a user row, false for an item row.
    /// - Throws: `StoreError.sqlite` when SQLite fails.
    public func upsertLiveRow(_ row: LiveRow, user: Bool) throws {
        let table = user ? "live_users" : "live_items", key = user ? "user_id" : "item_id"
        let sql =
            "INSERT INTO \(table) (\(key), bias, vector, generation) VALUES (?, ?, ?, "
            + "(SELECT generation + 1 FROM live_model WHERE id = 1)) ON CONFLICT(\(key)) DO UPDATE SET "
            + "bias = excluded.bias, vector = excluded.vector, generation = excluded.generation"
        try withStatement(sql) { stmt in
            try stmt.bind(Int64(row.id), at: 1)
            try stmt.bind(Double(row.bias), at: 2)
            try stmt.bindBlob(Store.bytes(row.vector), at: 3)
            try stmt.step()
        }
    }

    /// A vector blob's floats (little-endian float32; a trailing partial float is ignored).
    static func floats(_ bytes: [UInt8]) -> [Float] {
        (0..<bytes.count / 4).map { f in
            Float(
                bitPattern: UInt32(bytes[4 * f]) | UInt32(bytes[4 * f + 1]) << 8
                    | UInt32(bytes[4 * f + 2]) << 16 | UInt32(bytes[4 * f + 3]) << 24)
        }
    }

    /// A vector as a blob: little-endian float32, byte by byte.
    static func bytes(_ vector: [Float]) -> [UInt8] {
        var bytes = [UInt8]()
        bytes.reserveCapacity(vector.count * 4)
        for v in vector {
            let bits = v.bitPattern
            bytes.append(contentsOf: [
                UInt8(bits & 0xff), UInt8(bits >> 8 & 0xff), UInt8(bits >> 16 & 0xff), UInt8(bits >> 24),
            ])
        }
        return bytes
    }
}
