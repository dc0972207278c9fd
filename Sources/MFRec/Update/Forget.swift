import Foundation
import MFEngine
import MFStore

/// What `forget(user:)` or `forget(item:)` did.
public struct ForgetReport: Sendable, Equatable {
    /// The ratings deleted.
    public var ratings = 0
    /// Snapshots whose models were rewritten with the row zeroed (the rating model, and the ranking model where it
    /// held the row).
    public var snapshots = 0
    /// Whether the write-ahead log was checkpointed and truncated (false while another process kept a read open:
    /// the next command that writes finishes it).
    public var checkpointed = false
    /// Wall-clock time.
    public var seconds = 0.0
}

extension Recommender {
    /// The file that marks a forget whose checkpoint has not finished (see `finishPendingScrub`).
    var scrubMarkerPath: String { path + ".forget-pending" }

    /// Forgets a user, as privacy law asks of a service: their ratings (and replaced values), their key, their live
    /// row, and their row in every stored snapshot's models (zeroed: the model has no vector for them; the one
    /// change a snapshot takes after it is made, noted in its note and covered by its new checksum). Other users'
    /// rows and every id stay, so snapshots still load, list and roll back. One transaction with SQLite's
    /// `secure_delete` on (deleted content is overwritten with zeros), then a `TRUNCATE` checkpoint, so neither the
    /// database file nor its -wal file keeps a byte of the key; the item matrix is written again. If the process
    /// dies after the commit and before the checkpoint, the next command that opens the database for writing
    /// finishes it. Aggregates the user's ratings went into (item vectors, the popular list, item means, the
    /// co-occurrence embedding) are not per-user data and stay until the next `train`.
    /// - Throws: `MFRecError.unknownUser` for a key the database does not have.
    /// - Parameter key: the user's key.
    /// - Returns: the ratings removed and the snapshots rewritten.
    @discardableResult
    public func forget(user key: String) throws -> ForgetReport {
        try serialized {
            guard let id = try store.userID(forKey: key), !Store.isForgotten(key: key) else {
                throw MFRecError.unknownUser(key)
            }
            return try scrub(note: "a user was forgotten") { report in
                report.ratings = try store.forgetUserRows(id)
                try rewriteSnapshots(&report, note: "a user was forgotten") { model, ranking in
                    guard id < model.userCount else { return false }
                    model.clearUser(id)
                    ranking?.forgetUser(id)
                    return true
                }
            }
        }
    }

    /// Forgets an item: its ratings, key, title and genres, its live rows, its row in every snapshot's rating and
    /// ranking model, the co-occurrence embedding and the popular list, and the item matrix (as `forget(user:)`,
    /// with the same guarantees).
    /// - Throws: `MFRecError.unknownItem` for a key the database does not have.
    /// - Parameter key: the item's key.
    /// - Returns: the ratings removed and the snapshots rewritten.
    @discardableResult
    public func forget(item key: String) throws -> ForgetReport {
        try serialized {
            guard let id = try store.itemID(forKey: key), !Store.isForgotten(key: key) else {
                throw MFRecError.unknownItem(key)
            }
            return try scrub(note: "an item was forgotten") { report in
                report.ratings = try store.forgetItemRows(id)
                try rewriteSnapshots(&report, note: "an item was forgotten") { model, ranking in
                    guard id < model.itemCount || (ranking?.itemCount ?? 0) > id else { return false }
                    model.clearItem(id)
                    ranking?.forgetItem(id)
                    return true
                }
                if var embedding = try store.cooccurrence(), id < embedding.itemCount {
                    let row = id * embedding.factors * 4
                    for b in row..<(row + embedding.factors * 4) { embedding.vectors[b] = 0 }
                    try store.setCooccurrence(embedding)
                }
                if let text = try store.popularItemsJSON(),
                    let popular = try? JSONDecoder().decode([PopularItem].self, from: Data(text.utf8))
                {
                    try store.setPopularItemsJSON(SnapshotCodec.json(popular.filter { $0.id != Int32(id) }))
                }
            }
        }
    }

    /// The transaction of a forget (`body` deletes and rewrites), then the checkpoint and the item matrix.
    private func scrub(note: String, _ body: (inout ForgetReport) throws -> Void) throws -> ForgetReport {
        let started = Date()
        var report = ForgetReport()
        // The marker goes first: a kill after the commit leaves it for the next writer (finishPendingScrub).
        // Without it a kill could leave forgotten ratings unscrubbed, so no marker means no forget.
        guard FileManager.default.createFile(atPath: scrubMarkerPath, contents: Data(note.utf8)) else {
            throw MFRecError.cannotWrite(
                path: scrubMarkerPath, reason: "the forget marker could not be created; nothing was changed")
        }
        TrainingCache.remove(path: trainingCachePath)  // it holds the ratings being forgotten
        try store.setSecureDelete(true)
        defer { try? store.setSecureDelete(false) }
        liveCache = nil
        let live: Store.LiveModel
        do {
            live = try store.transaction {
                try body(&report)
                return try store.reloadLiveModel()
            }
        } catch {
            unlink(scrubMarkerPath)  // nothing was committed
            throw error
        }
        let state = try liveState()
        followLiveModel(generation: live.generation) {
            writeItemMatrix(
                model: state.model, ranking: state.ranking?.model, precision: state.precision,
                generation: live.generation, snapshotID: state.snapshot.id)
        }
        report.checkpointed = try withoutBackgroundCheckpoint { try store.checkpointTruncating() }
        if report.checkpointed { unlink(scrubMarkerPath) }
        report.seconds = Date().timeIntervalSince(started)
        return report
    }

    /// Rewrites every snapshot whose models `change` alters (it returns whether it changed anything): the rating
    /// model's blob, and the ranking model where the snapshot has one.
    private func rewriteSnapshots(
        _ report: inout ForgetReport, note: String,
        _ change: (inout FactorModel, inout RankingModel?) -> Bool
    ) throws {
        let day = ISO8601DateFormatter.string(from: Date(), timeZone: .gmt, formatOptions: [.withFullDate])
        for info in try store.snapshots() {
            guard let id = info.id else { continue }
            var (_, model) = try reader.loadModel(snapshot: id)
            let stored = try reader.rankingModel(snapshot: id)
            var ranking = stored?.0
            guard change(&model, &ranking) else { continue }
            let (blob, rawBytes) = ModelBlob.encode(model)
            try store.rewriteSnapshotModel(id: id, blob: blob, rawBytes: rawBytes, note: "\(note) on \(day)")
            if let ranking, let choice = stored?.1 {
                try store.setRankingModel(SnapshotCodec.rankingRecord(snapshot: id, model: ranking, choice: choice))
            }
            report.snapshots += 1
        }
    }

    /// Finishes a forget that a kill interrupted between its commit and its checkpoint (the marker file is there):
    /// called when the database is opened for writing (before the background checkpointer can start).
    func finishPendingScrub() {
        guard FileManager.default.fileExists(atPath: scrubMarkerPath) else { return }
        if (try? store.checkpointTruncating()) == true { unlink(scrubMarkerPath) }
    }
}
