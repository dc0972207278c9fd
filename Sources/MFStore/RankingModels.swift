import Foundation

/// The `ranking_models` table: one ranking model per snapshot.
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
        public init(snapshotID: Int, factors: Int, itemCount: Int, choice: String, model: [UInt8]) {
            self.snapshotID = snapshotID
            self.factors = factors
            self.itemCount = itemCount
            self.choice = choice
            self.model = model
        }
    }

    /// Stores the ranking model of a snapshot (replacing one stored before).
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
    public func copyRankingModel(from: Int, to: Int) throws {
        try db.execute(
            """
            INSERT OR REPLACE INTO ranking_models (snapshot_id, factors, item_count, choice, model, checksum)
            SELECT ?, factors, item_count, choice, model, checksum FROM ranking_models WHERE snapshot_id = ?
            """, [.integer(Int64(to)), .integer(Int64(from))])
    }

    /// The shape and choice of a snapshot's ranking model, without its vectors (nil when it has none).
    public func rankingModelInfo(snapshotID: Int) throws -> (factors: Int, itemCount: Int, choice: String)? {
        let stmt = try db.prepare("SELECT factors, item_count, choice FROM ranking_models WHERE snapshot_id = ?")
        try stmt.bind([.integer(Int64(snapshotID))])
        guard try stmt.step() else { return nil }
        return (Int(stmt.int64(0)), Int(stmt.int64(1)), stmt.string(2) ?? "{}")
    }

    /// A snapshot's ranking model, its checksum verified; nil when it has none.
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
}
