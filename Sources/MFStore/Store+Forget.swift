import Foundation

/// Forgetting a user or an item (`Recommender.forget`): the rows that hold their data, the model blobs rewritten
/// with their row zeroed, and the checkpoint that leaves no old page of them in the database or its log.
extension Store {
    /// The key a forgotten user or item keeps in its (dense, never reused) id's row: a control byte no ingested id
    /// can contain (readers refuse them), so it never collides with a real id and the real key is gone.
    /// - Parameter id: the forgotten row's id.
    /// - Returns: the key.
    public static func forgottenKey(id: Int) -> String { "\u{1}forgotten-\(id)" }

    /// Whether a key is a forgotten row's.
    /// - Parameter key: a key.
    /// - Returns: true for a forgotten row's key.
    public static func isForgotten(key: String) -> Bool { key.hasPrefix("\u{1}forgotten-") }

    /// The ids of forgotten items, ascending (lists never show them).
    /// - Returns: the ids.
    /// - Throws: `StoreError.sqlite` when SQLite fails.
    public func forgottenItemIDs() throws -> [Int32] {
        let stmt = try db.prepare("SELECT id FROM items WHERE substr(key, 1, 1) = char(1) ORDER BY id")
        var out: [Int32] = []
        while try stmt.step() { out.append(Int32(stmt.int64(0))) }
        return out
    }

    /// Deletes everything stored of user `id` outside the model blobs: their ratings (and replaced values), their
    /// live row, and their key (replaced by `forgottenKey`). Inside the caller's transaction.
    /// - Returns: how many ratings were deleted.
    /// - Parameter id: the user's dense id.
    /// - Throws: `StoreError.sqlite` when SQLite fails.
    public func forgetUserRows(_ id: Int) throws -> Int {
        let user = DatabaseValue.integer(Int64(id))
        let count = Int(try db.scalarInt("SELECT count(*) FROM ratings WHERE user_id = ?", [user]) ?? 0)
        try db.execute("DELETE FROM ratings WHERE user_id = ?", [user])
        try bumpRatingsEpoch()
        try db.execute("DELETE FROM replaced_ratings WHERE user_id = ?", [user])
        try db.execute("DELETE FROM live_users WHERE user_id = ?", [user])
        try db.execute("UPDATE users SET key = ? WHERE id = ?", [.text(Store.forgottenKey(id: id)), user])
        return count
    }

    /// The same for item `id`: its ratings, replaced values, live rows of both models, key, title and genres.
    /// (The ratings table has no index by item: this is one pass over it.)
    /// - Parameter id: the item's dense id.
    /// - Returns: how many ratings were deleted.
    /// - Throws: `StoreError.sqlite` when SQLite fails.
    public func forgetItemRows(_ id: Int) throws -> Int {
        let item = DatabaseValue.integer(Int64(id))
        let count = Int(try db.scalarInt("SELECT count(*) FROM ratings WHERE item_id = ?", [item]) ?? 0)
        try db.execute("DELETE FROM ratings WHERE item_id = ?", [item])
        try bumpRatingsEpoch()
        try db.execute("DELETE FROM replaced_ratings WHERE item_id = ?", [item])
        try db.execute("DELETE FROM live_items WHERE item_id = ?", [item])
        try db.execute("DELETE FROM live_ranking_items WHERE item_id = ?", [item])
        try db.execute(
            "UPDATE items SET key = ?, title = NULL, genres = NULL WHERE id = ?",
            [.text(Store.forgottenKey(id: id)), item])
        return count
    }

    /// Deletes one rating (and the values it replaced). Inside the caller's transaction.
    /// - Returns: the deleted value; nil when the user has not rated the item.
    /// - Parameters:
    ///   - user: the user's dense id.
    ///   - item: the item's dense id.
    /// - Throws: `StoreError.sqlite` when SQLite fails.
    public func deleteRating(user: Int, item: Int) throws -> Double? {
        let pair: [DatabaseValue] = [.integer(Int64(user)), .integer(Int64(item))]
        guard let value = try db.scalarDouble("SELECT rating FROM ratings WHERE user_id = ? AND item_id = ?", pair)
        else { return nil }
        try db.execute("DELETE FROM ratings WHERE user_id = ? AND item_id = ?", pair)
        try bumpRatingsEpoch()
        try db.execute("DELETE FROM replaced_ratings WHERE user_id = ? AND item_id = ?", pair)
        return value
    }

    /// Replaces a snapshot's rating model blob (and its checksum), appending `note` to the snapshot's note: the one
    /// change a snapshot takes after it is made (a forgotten user's or item's row).
    /// - Parameters:
    ///   - id: the snapshot.
    ///   - blob: the new model blob.
    ///   - rawBytes: the model's size uncompressed.
    ///   - note: what to append to the snapshot's note.
    /// - Throws: `StoreError.sqlite` when SQLite fails.
    public func rewriteSnapshotModel(id: Int, blob: [UInt8], rawBytes: Int, note: String) throws {
        try db.execute(
            """
            UPDATE snapshots SET model = ?, model_bytes = ?, checksum = ?,
                note = CASE WHEN note IS NULL OR note = '' THEN ? ELSE note || '; ' || ? END
            WHERE id = ?
            """,
            [
                .blob(blob), .integer(Int64(rawBytes)), .integer(Store.checksum(blob)), .text(note), .text(note),
                .integer(Int64(id)),
            ])
    }

    /// Moves the live generation on and makes every reader load the live model anew (the overlay rows that stay
    /// are kept): after a forget, a reader patching rows newer than its generation would miss deleted ones.
    /// - Returns: the live row after the move.
    /// - Throws: `StoreError.sqlite` when SQLite fails.
    @discardableResult
    public func reloadLiveModel() throws -> LiveModel {
        try db.execute(
            "UPDATE live_model SET generation = generation + 1, base_generation = generation + 1 WHERE id = 1")
        return try liveModel()
    }

    /// `PRAGMA secure_delete`: deleted content is overwritten with zeros (on for a forget's transaction).
    /// - Parameter on: whether deleted content is overwritten.
    /// - Throws: `StoreError.sqlite` when SQLite fails.
    public func setSecureDelete(_ on: Bool) throws { try db.execute("PRAGMA secure_delete = \(on ? "ON" : "OFF")") }

    /// Copies the whole write-ahead log into the database file and truncates the log to zero bytes.
    /// - Returns: false when a reader kept it from finishing (the log then still holds pages).
    /// - Throws: `StoreError.sqlite` when SQLite fails.
    public func checkpointTruncating() throws -> Bool {
        let stmt = try db.prepare("PRAGMA wal_checkpoint(TRUNCATE)")
        guard try stmt.step() else { return false }
        return stmt.int64(0) == 0
    }
}
