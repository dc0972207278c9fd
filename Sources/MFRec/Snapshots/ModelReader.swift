import Foundation
import MFEngine
import MFStore

/// Reads models out of a store: snapshots, the live model with its overlay, ranking models and the
/// popular list. `Recommender` reads with its own connection, `QueryEngine` with its read-only ones.
struct ModelReader {
    let store: Store

    /// Every snapshot's metadata, oldest first.
    func snapshots() throws -> [SnapshotInfo] {
        let live = try store.liveModel().snapshotID
        return try store.snapshots().map { SnapshotInfo($0, live: live) }
    }

    /// Loads a snapshot's model (the live one when `id` is nil), verifying its checksum.
    func loadModel(snapshot id: Int? = nil) throws -> (SnapshotInfo, FactorModel) {
        let live = try store.liveModel().snapshotID
        guard let id = id ?? live else { throw MFRecError.noModel }
        guard let record = try store.snapshot(id: id) else { throw StoreError.noSnapshot(id) }
        do {
            return (SnapshotInfo(record, live: live), try ModelBlob.decode(record.model))
        } catch EngineError.modelFormat(let reason) {
            throw StoreError.corrupt(what: "snapshot \(id)", reason: reason)
        }
    }

    /// A snapshot's models, or the live ones (its snapshot with the incremental updates) when `id` is nil.
    /// - Returns: the snapshot's description, the rating model, whether it is the live model, and the
    ///   ranking model with what validation chose (nil when the snapshot has none).
    func modelOrLive(snapshot id: Int?) throws -> (
        info: SnapshotInfo, model: FactorModel, isLive: Bool, ranking: (RankingModel, RankingChoice)?
    ) {
        if let id {
            let (info, model) = try loadModel(snapshot: id)
            return (info, model, false, try rankingModel(snapshot: id))
        }
        let state = try liveState()
        return (state.snapshot, state.model, true, state.ranking.map { ($0.model, $0.choice) })
    }

    /// Loads the live model: the live snapshot (checksum verified) plus the rows changed since.
    func liveState() throws -> LiveState {
        try store.read {
            let live = try store.liveModel()
            guard let id = live.snapshotID else { throw MFRecError.noModel }
            var (info, model) = try loadModel(snapshot: id)
            try applyOverlay(to: &model)
            // The ranking model with the item rows incremental updates moved since.
            var ranking = try rankingModel(snapshot: id).map { (model: $0.0, choice: $0.1) }
            if ranking != nil { ModelReader.apply(rankingRows: try store.liveRankingRows(), to: &ranking!.model) }
            return LiveState(snapshot: info, model: model, live: live, ranking: ranking)
        }
    }

    /// Moves `state` forward to the live model when only incremental updates happened since it was read (the
    /// same snapshot and overlay base): the rows stamped with a newer generation are written into it, in place
    /// when its arrays are not shared. Leaves it unchanged and returns false otherwise (a decode is needed).
    /// - Parameter state: a state read from this database earlier.
    /// - Returns: whether `state` is now the live model.
    /// - Throws: `StoreError` when the rows cannot be read (`state` is then unchanged).
    func patch(_ state: inout LiveState) throws -> Bool {
        try store.read {
            let since = state.live.generation
            let live = try store.liveModel()
            guard live.snapshotID == state.snapshot.id, live.baseGeneration == state.live.baseGeneration,
                live.generation >= since
            else { return false }
            // Everything is read before anything is written, so a failed read leaves `state` as it was.
            let users = try store.liveRows(users: true, after: since)
            let items = try store.liveRows(users: false, after: since)
            let rankingRows = try store.liveRankingRows(after: since)
            ModelReader.apply(users: users, items: items, to: &state.model)
            if state.ranking != nil && !rankingRows.isEmpty {
                ModelReader.apply(rankingRows: rankingRows, to: &state.ranking!.model)
            }
            state.live = live
            return true
        }
    }

    /// Writes changed ranking-model item rows into `model`, growing it for items it did not have.
    static func apply(rankingRows rows: [Store.RankingRow], to model: inout RankingModel) {
        for row in rows { model.setItem(row.id, vector: row.vector, ratings: row.ratings, popularity: row.popularity) }
    }

    /// Applies the stored overlay rows (users and items changed or added since the snapshot).
    func applyOverlay(to model: inout FactorModel) throws {
        ModelReader.apply(users: try store.liveRows(users: true), items: try store.liveRows(users: false), to: &model)
    }

    /// Writes changed rows into `model`, growing it for users and items it did not have.
    static func apply(users: [Store.LiveRow], items: [Store.LiveRow], to model: inout FactorModel) {
        guard !users.isEmpty || !items.isEmpty else { return }
        let userCount = max(model.userCount, (users.map(\.id).max() ?? -1) + 1)
        let itemCount = max(model.itemCount, (items.map(\.id).max() ?? -1) + 1)
        model.grow(userCount: userCount, itemCount: itemCount)
        for row in users where row.vector.count == model.factors {
            model.userBias[row.id] = row.bias
            for f in 0..<model.factors { model.userFactors[row.id * model.stride + f] = row.vector[f] }
        }
        for row in items where row.vector.count == model.factors {
            model.itemBias[row.id] = row.bias
            for f in 0..<model.factors { model.itemFactors[row.id * model.stride + f] = row.vector[f] }
        }
    }

    /// The ranking model stored with a snapshot and what validation chose; nil when it has none.
    func rankingModel(snapshot id: Int) throws -> (RankingModel, RankingChoice)? {
        guard let record = try store.rankingModel(snapshotID: id) else { return nil }
        guard let choice = SnapshotCodec.decode(RankingChoice.self, record.choice),
            let model = RankingModel(parameters: choice.parameters, encoded: record.model)
        else {
            throw StoreError.corrupt(
                what: "\(store.path): the ranking model of snapshot \(id)",
                reason: "it cannot be decoded; run `mfrec train` to fit it again")
        }
        return (model, choice)
    }

    /// The stored co-occurrence embedding (nil when there is none), checksum and shape verified.
    func cooccurrence() throws -> CooccurrenceEmbedding? {
        guard let record = try store.cooccurrence() else { return nil }
        guard
            let value = CooccurrenceEmbedding(
                factors: record.factors, itemCount: record.itemCount, exponent: record.exponent,
                encoded: record.vectors)
        else {
            throw StoreError.corrupt(
                what: "\(store.path): the co-occurrence embedding",
                reason: "it does not match its recorded size; run `mfrec train` to fit it again")
        }
        return value
    }

    /// Items ranked for the popular fallback, with their mean rating: as stored by the last training,
    /// or (a model imported without one) computed now in one pass over the ratings.
    func popularItems() throws -> [PopularItem] {
        if let text = try store.popularItemsJSON(),
            let items = try? JSONDecoder().decode([PopularItem].self, from: Data(text.utf8))
        {
            return items
        }
        let scale = try store.ratingScale() ?? 1...5
        let threshold = Recommender.topQuarter(of: scale)
        return try store.mostRatedItems(atLeast: threshold, limit: 1000).map { PopularItem(id: $0.item, mean: $0.mean) }
    }
}
