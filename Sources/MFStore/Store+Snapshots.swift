import CSQLite
import Foundation

/// The `snapshots` table: immutable, numbered model versions.
extension Store {
    /// Stores a snapshot and returns its id. The model blob is checksummed (CRC-32) as stored.
    /// - Parameter record: the snapshot.
    /// - Returns: its id.
    /// - Throws: `StoreError.sqlite` when SQLite fails.
    public func insertSnapshot(_ record: SnapshotRecord) throws -> Int {
        let stmt = try db.prepare(
            """
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

    /// A snapshot's metadata (without the model blob).
    /// - Returns: every snapshot, oldest first.
    /// - Throws: `StoreError.sqlite` when SQLite fails.
    public func snapshots() throws -> [SnapshotRecord] {
        try selectSnapshots(where: "1", [], withModel: false)
    }

    /// One snapshot with its model; the blob's checksum is verified.
    /// - Parameter id: the snapshot.
    /// - Returns: the record, or nil for an unknown id.
    /// - Throws: `StoreError.corrupt` when the blob's checksum does not match; `StoreError.sqlite` when SQLite fails.
    public func snapshot(id: Int) throws -> SnapshotRecord? {
        guard let record = try selectSnapshots(where: "id = ?", [.integer(Int64(id))], withModel: true).first else {
            return nil
        }
        return record
    }

    private func selectSnapshots(where condition: String, _ values: [DatabaseValue], withModel: Bool) throws
        -> [SnapshotRecord]
    {
        let stmt = try db.prepare(
            """
            SELECT id, created_at, parent_id, kind, note, factors, user_count, item_count, hyperparameters, metrics,
                   history, split, watermark, global_mean, \(withModel ? "model" : "NULL"), model_bytes, checksum, length(model)
            FROM snapshots WHERE \(condition) ORDER BY id
            """)
        try stmt.bind(values)
        var out: [SnapshotRecord] = []
        while try stmt.step() {
            var record = SnapshotRecord(
                createdAt: stmt.string(1) ?? "", parentID: stmt.isNull(2) ? nil : stmt.int(2),
                kind: stmt.string(3) ?? "",
                note: stmt.string(4), factors: stmt.int(5), userCount: stmt.int(6), itemCount: stmt.int(7),
                hyperparameters: stmt.string(8) ?? "{}", metrics: stmt.string(9) ?? "{}",
                history: stmt.string(10) ?? "[]",
                split: stmt.string(11) ?? "{}", watermark: stmt.int64(12), globalMean: stmt.double(13),
                model: withModel ? stmt.blob(14) : [], modelBytes: stmt.int(15))
            record.id = stmt.int(0)
            record.storedBytes = stmt.int(17)
            if withModel {
                let stored = stmt.int64(16)
                if Store.checksum(record.model) != stored {
                    throw StoreError.corrupt(
                        what: "snapshot \(record.id!)", reason: "its model blob does not match its checksum")
                }
            }
            out.append(record)
        }
        return out
    }

    /// Whether snapshot `id` exists.
    /// - Parameter id: the snapshot.
    /// - Returns: whether it exists.
    /// - Throws: `StoreError.sqlite` when SQLite fails.
    public func snapshotExists(_ id: Int) throws -> Bool {
        try db.scalarInt("SELECT count(*) FROM snapshots WHERE id = ?", [.integer(Int64(id))]) ?? 0 > 0
    }

    /// Deletes a snapshot; refuses the live one.
    /// - Parameter id: the snapshot.
    /// - Throws: `StoreError.noSnapshot`, `StoreError.liveSnapshot`; `StoreError.sqlite` when SQLite fails.
    public func deleteSnapshot(_ id: Int) throws {
        try transaction {
            if try liveModel().snapshotID == id {
                throw StoreError.liveSnapshot(id)
            }
            guard try snapshotExists(id) else { throw StoreError.noSnapshot(id) }
            try db.execute("DELETE FROM snapshots WHERE id = ?", [.integer(Int64(id))])
        }
    }
}

/// One row of the `snapshots` table.
public struct SnapshotRecord: Sendable {
    /// The snapshot's number (nil before it is stored).
    public var id: Int?
    /// When it was made (ISO 8601, UTC).
    public var createdAt: String
    /// The snapshot live when it was made.
    public var parentID: Int?
    /// "trained", "frozen" or "imported".
    public var kind: String
    /// A free-text note.
    public var note: String?
    /// k of its rating model.
    public var factors: Int
    /// Users with a vector.
    public var userCount: Int
    /// Items with a vector.
    public var itemCount: Int
    /// Training options, as JSON.
    public var hyperparameters: String
    /// Error metrics, as JSON.
    public var metrics: String
    /// Per-epoch figures, as JSON.
    public var history: String
    /// How the test ratings were chosen, as JSON.
    public var split: String
    /// The largest rating sequence number the model has seen.
    public var watermark: Int64
    /// μ of the rating model.
    public var globalMean: Double
    /// The encoded model (empty when listed without it).
    public var model: [UInt8]
    /// The model's size before compression.
    public var modelBytes: Int
    /// The bytes the blob takes in the database.
    public var storedBytes: Int = 0

    /// A record to store with `insertSnapshot`.
    /// - Parameters:
    ///   - createdAt: when it was made (ISO 8601).
    ///   - parentID: the snapshot it came from, if any.
    ///   - kind: 'trained', 'frozen' or 'imported'.
    ///   - note: the user's note.
    ///   - factors: k.
    ///   - userCount: users with a row.
    ///   - itemCount: items with a row.
    ///   - hyperparameters: the training options (JSON).
    ///   - metrics: the final metrics (JSON).
    ///   - history: the per-epoch history (JSON).
    ///   - split: the test split (JSON).
    ///   - watermark: the last rating sequence number it saw.
    ///   - globalMean: the mean training rating.
    ///   - model: the model blob.
    ///   - modelBytes: the model's size uncompressed.
    public init(
        createdAt: String, parentID: Int?, kind: String, note: String?, factors: Int, userCount: Int, itemCount: Int,
        hyperparameters: String, metrics: String, history: String, split: String, watermark: Int64,
        globalMean: Double, model: [UInt8], modelBytes: Int
    ) {
        self.createdAt = createdAt
        self.parentID = parentID
        self.kind = kind
        self.note = note
        self.factors = factors
        self.userCount = userCount
        self.itemCount = itemCount
        self.hyperparameters = hyperparameters
        self.metrics = metrics
        self.history = history
        self.split = split
        self.watermark = watermark
        self.globalMean = globalMean
        self.model = model
        self.modelBytes = modelBytes
    }
}
