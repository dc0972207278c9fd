import Foundation

/// The `ranking_models` table (one ranking model per snapshot) and `live_ranking_items` (its item rows
/// changed by incremental updates since the live snapshot).
extension Store {
    /// A stored ranking model: its shape, the JSON of what validation chose, and its encoding.
    public struct RankingRecord: Sendable, Equatable {
        /// The snapshot it belongs to.
        public var snapshotID: Int
        /// k of the model.
        public var factors: Int
        /// Items with a vector.
        public var itemCount: Int
        /// What validation chose, as JSON.
        public var choice: String
        /// The encoded model.
        public var model: [UInt8]

        /// A record to store with `setRankingModel`.
        /// - Parameters:
        ///   - snapshotID: the snapshot it belongs to.
        ///   - factors: k.
        ///   - itemCount: items with a row.
        ///   - choice: what validation chose (JSON).
        ///   - model: the encoded model.
        public init(snapshotID: Int, factors: Int, itemCount: Int, choice: String, model: [UInt8]) {
            self.snapshotID = snapshotID
            self.factors = factors
            self.itemCount = itemCount
            self.choice = choice
            self.model = model
        }
    }

    /// Stores the ranking model of a snapshot (replacing one stored before).
    /// - Parameter record: the model.
    /// - Throws: `StoreError.sqlite` when SQLite fails.
    public func setRankingModel(_ record: RankingRecord) throws {
        try db.execute(
            """
            INSERT OR REPLACE INTO ranking_models (snapshot_id, factors, item_count, choice, model, checksum)
            VALUES (?, ?, ?, ?, ?, ?)
            """,
            [
                .integer(Int64(record.snapshotID)), .integer(Int64(record.factors)), .integer(Int64(record.itemCount)),
                .text(record.choice), .blob(record.model), .integer(Store.checksum(record.model)),
            ])
    }

    /// Gives snapshot `to` the ranking model of snapshot `from` (nothing when `from` has none).
    /// - Parameters:
    ///   - from: the snapshot that has it.
    ///   - to: the snapshot that gets it.
    /// - Throws: `StoreError.sqlite` when SQLite fails.
    public func copyRankingModel(from: Int, to: Int) throws {
        try db.execute(
            """
            INSERT OR REPLACE INTO ranking_models (snapshot_id, factors, item_count, choice, model, checksum)
            SELECT ?, factors, item_count, choice, model, checksum FROM ranking_models WHERE snapshot_id = ?
            """, [.integer(Int64(to)), .integer(Int64(from))])
    }

    /// The shape and choice of a snapshot's ranking model, without its vectors (nil when it has none).
    /// - Parameter snapshotID: the snapshot.
    /// - Throws: `StoreError.sqlite` when SQLite fails.
    /// - Returns: k, items and the choice (JSON), or nil.
    public func rankingModelInfo(snapshotID: Int) throws -> (factors: Int, itemCount: Int, choice: String)? {
        let stmt = try db.prepare("SELECT factors, item_count, choice FROM ranking_models WHERE snapshot_id = ?")
        try stmt.bind([.integer(Int64(snapshotID))])
        guard try stmt.step() else { return nil }
        return (Int(stmt.int64(0)), Int(stmt.int64(1)), stmt.string(2) ?? "{}")
    }

    /// A snapshot's ranking model, its checksum verified; nil when it has none.
    /// - Parameter snapshotID: the snapshot.
    /// - Returns: the record, or nil.
    /// - Throws: `StoreError.corrupt` when the checksum does not match; `StoreError.sqlite` when SQLite fails.
    public func rankingModel(snapshotID: Int) throws -> RankingRecord? {
        let stmt = try db.prepare(
            "SELECT factors, item_count, choice, model, checksum FROM ranking_models WHERE snapshot_id = ?")
        try stmt.bind([.integer(Int64(snapshotID))])
        guard try stmt.step() else { return nil }
        let record = RankingRecord(
            snapshotID: snapshotID, factors: Int(stmt.int64(0)), itemCount: Int(stmt.int64(1)),
            choice: stmt.string(2) ?? "{}", model: stmt.blob(3))
        guard Store.checksum(record.model) == stmt.int64(4) else {
            throw StoreError.corrupt(
                what: "\(path): the ranking model of snapshot \(snapshotID)",
                reason: "it fails its checksum; run `mfrec train` to fit it again")
        }
        return record
    }

    /// A ranking-model item row changed by an incremental update.
    public struct RankingRow: Sendable, Equatable {
        /// The item's dense id.
        public var id: Int
        /// Its rating count as the model counts it.
        public var ratings: Int
        /// Its popularity prior.
        public var popularity: Float
        /// Its vector (k floats).
        public var vector: [Float]

        /// A row to store with `upsertLiveRankingRow`.
        /// - Parameters:
        ///   - id: the item's dense id.
        ///   - ratings: its rating count.
        ///   - popularity: its popularity prior.
        ///   - vector: its vector.
        public init(id: Int, ratings: Int, popularity: Float, vector: [Float]) {
            self.id = id
            self.ratings = ratings
            self.popularity = popularity
            self.vector = vector
        }
    }

    /// `liveRankingRows`' query: every row, or (`after`) those of generations after a bound parameter, through the
    /// generation index (see `liveRowsSQL`).
    static func liveRankingRowsSQL(after: Bool) -> String {
        "SELECT item_id, ratings, popularity, vector FROM live_ranking_items"
            + (after ? " INDEXED BY live_ranking_items_by_generation WHERE generation > ?" : "") + " ORDER BY item_id"
    }

    /// The ranking-model item rows changed since the live snapshot, by id: all of them, or those written
    /// by a generation after `after`.
    /// - Parameter after: only rows of later generations; all when nil.
    /// - Returns: the rows, by id.
    /// - Throws: `StoreError.sqlite` when SQLite fails.
    public func liveRankingRows(after: Int64? = nil) throws -> [RankingRow] {
        try withStatement(Store.liveRankingRowsSQL(after: after != nil)) { stmt in
            if let after { try stmt.bind(after, at: 1) }
            var out: [RankingRow] = []
            while try stmt.step() {
                out.append(
                    RankingRow(
                        id: stmt.int(0), ratings: stmt.int(1), popularity: Float(stmt.double(2)),
                        vector: Store.floats(stmt.blob(3))))
            }
            return out
        }
    }

    /// Stores a changed ranking-model item row (replacing an earlier one), stamped with the generation the
    /// update commits as (see `upsertLiveRow`).
    /// - Parameter row: the row.
    /// - Throws: `StoreError.sqlite` when SQLite fails.
    public func upsertLiveRankingRow(_ row: RankingRow) throws {
        let sql = """
            INSERT INTO live_ranking_items (item_id, ratings, popularity, vector, generation)
            VALUES (?, ?, ?, ?, (SELECT generation + 1 FROM live_model WHERE id = 1))
            ON CONFLICT(item_id) DO UPDATE SET ratings = excluded.ratings, popularity = excluded.popularity,
            vector = excluded.vector, generation = excluded.generation
            """
        try withStatement(sql) { stmt in
            try stmt.bind(Int64(row.id), at: 1)
            try stmt.bind(Int64(row.ratings), at: 2)
            try stmt.bind(Double(row.popularity), at: 3)
            try stmt.bindBlob(Store.bytes(row.vector), at: 4)
            try stmt.step()
        }
    }
}
