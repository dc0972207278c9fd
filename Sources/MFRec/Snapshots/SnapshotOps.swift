import Foundation
import MFEngine
import MFStore

/// What `rollback` did.
public struct RollbackReport: Sendable {
    /// The snapshot now live.
    public var snapshotID: Int
    /// The snapshot the unsaved incremental updates were frozen into first, if there were any.
    public var savedUpdatesAs: Int?
    /// Wall-clock time of the rollback.
    public var seconds: Double
}

/// How two snapshots differ.
public struct SnapshotDiff: Sendable, Codable {
    /// The first snapshot compared.
    public var a: Int
    /// The second snapshot compared.
    public var b: Int
    /// k of the first.
    public var factorsA: Int
    /// k of the second.
    public var factorsB: Int
    /// Test RMSE of b minus a (nil when either has none).
    public var rmseDelta: Double?
    /// Test MAE of b minus a.
    public var maeDelta: Double?
    /// Mean cosine between the two models' vectors of the same item (of the items both have vectors for).
    public var meanItemCosine: Double
    /// Mean cosine between the two vectors of each user (same k only).
    public var meanUserCosine: Double
    /// Items compared.
    public var comparedItems: Int
    /// Users compared.
    public var comparedUsers: Int
    /// Mean share of a user's top-10 that both snapshots recommend, over `sampledUsers` users: by the
    /// rating model.
    public var top10Overlap: Double
    /// The same for the ranking model's lists (nil unless both snapshots have one).
    public var rankingTop10Overlap: Double?
    /// Users whose lists were compared.
    public var sampledUsers: Int
}

extension Recommender {
    /// Freezes the live model — its snapshot plus any incremental updates — as a new snapshot, which
    /// becomes the live snapshot. One transaction; the item matrix is rewritten to match. Without
    /// incremental updates since the live snapshot there is nothing to freeze: no duplicate is made.
    /// - Parameter note: a note to store with the snapshot.
    /// - Returns: the new snapshot's id, or the live snapshot's when nothing changed since it.
    /// - Throws: `MFRecError.noModel` before the first `train`; `StoreError` when the file cannot be written.
    @discardableResult
    public func createSnapshot(note: String? = nil) throws -> Int {
        return try serialized {
            let (id, state) = try store.transaction { () -> (Int, LiveState?) in
                let state = try liveState()
                guard state.live.dirty else { return (state.snapshot.id, nil) }
                let id = try freeze(state, note: note)
                var after = state
                after.live = try store.setLiveSnapshot(id, watermark: state.live.watermark)
                after.snapshot.id = id
                return (id, after)
            }
            if let state { writeItemMatrix(state) }
            return id
        }
    }

    /// Inserts the live state as a 'frozen' snapshot (inside the caller's transaction).
    func freeze(_ state: LiveState, note: String?) throws -> Int {
        let parent = state.snapshot
        let watermark = max(state.live.watermark, parent.watermark)
        let unchanged = !state.live.dirty
        let id = try store.insertSnapshot(
            SnapshotCodec.record(
                model: state.model, kind: "frozen",
                note: note
                    ?? (unchanged
                        ? "copy of snapshot \(parent.id)"
                        : "\(state.live.updates) incremental updates on snapshot \(parent.id)"),
                parent: parent.id, options: parent.options, history: parent.history,
                test: unchanged ? parent.metrics?.test : nil, unseen: unchanged ? parent.metrics?.unseenTestPairs : nil,
                split: parent.split, watermark: watermark, splitAsOf: parent.splitAsOf, updates: state.live.updates))
        // The ranking model's users are computed from the stored ratings; its item rows are the parent's
        // unless incremental updates moved them, in which case the frozen snapshot keeps the moved ones.
        if let (ranking, choice) = state.ranking, !unchanged {
            try store.setRankingModel(SnapshotCodec.rankingRecord(snapshot: id, model: ranking, choice: choice))
        } else {
            try store.copyRankingModel(from: parent.id, to: id)
        }
        return id
    }

    /// Makes snapshot `id` the live model. Unsaved incremental updates are frozen into a snapshot
    /// first, in the same transaction, so nothing is lost. The item matrix file follows.
    /// - Parameter id: the snapshot to make live.
    /// - Returns: the snapshot made live and the id the unsaved updates were frozen into, if any.
    /// - Throws: `StoreError.noSnapshot` for an unknown id, `StoreError.corrupt` when its model fails its
    ///   checksum; nothing changes then.
    @discardableResult
    public func rollback(to id: Int) throws -> RollbackReport {
        return try serialized {
            let started = Date()
            // Snapshots never change, so their models are decoded (and their checksums verified) before the
            // write transaction: the write lock is held only to freeze unsaved updates and switch.
            let (info, model) = try loadModel(snapshot: id)
            let ranking = try ModelReader(store: store).rankingModel(snapshot: id)?.0
            let precision = info.options?.itemPrecision ?? .f32
            let (saved, live) = try store.transaction { () -> (Int?, Store.LiveModel) in
                // Another process may have deleted it meanwhile.
                guard try store.snapshotExists(id) else { throw StoreError.noSnapshot(id) }
                var saved: Int?
                if try store.liveModel().dirty {
                    saved = try freeze(
                        try liveState(), note: "saved automatically before rolling back to snapshot \(id)")
                }
                return (saved, try store.setLiveSnapshot(id, watermark: info.watermark))
            }
            followLiveModel(generation: live.generation) {
                writeItemMatrix(
                    model: model, ranking: ranking, precision: precision, generation: live.generation, snapshotID: id)
            }
            return RollbackReport(snapshotID: id, savedUpdatesAs: saved, seconds: Date().timeIntervalSince(started))
        }
    }

    /// Deletes a snapshot. The live one is refused.
    /// - Parameter id: the snapshot.
    /// - Throws: `StoreError.noSnapshot` for an unknown id, `StoreError.liveSnapshot` for the live one.
    public func deleteSnapshot(_ id: Int) throws {
        try serialized {
            try store.transaction { try store.deleteSnapshot(id) }
        }
    }

    /// Keeps the `keep` newest snapshots and the live one; deletes the rest. Returns the ids deleted.
    /// - Parameter keep: how many of the newest snapshots to keep (≥ 0), besides the live one.
    /// - Returns: the ids deleted.
    /// - Throws: `StoreError` when the database cannot be written; nothing is deleted then.
    @discardableResult
    public func pruneSnapshots(keep: Int) throws -> [Int] {
        return try serialized {
            precondition(keep >= 0)
            return try store.transaction {
                let live = try store.liveModel().snapshotID
                let ids = try store.snapshots().compactMap(\.id).sorted(by: >)
                let doomed = ids.dropFirst(keep).filter { $0 != live }
                for id in doomed { try store.deleteSnapshot(id) }
                return Array(doomed).sorted()
            }
        }
    }

    /// Compares two snapshots: metric deltas, how far the vectors moved, and how much the top-10 lists
    /// of a seeded sample of users overlap (the users' rated items excluded, as in `recommend`).
    /// - Parameters:
    ///   - a: the first snapshot.
    ///   - b: the second snapshot.
    ///   - sampleUsers: users whose lists are compared.
    ///   - seed: the sample's seed.
    /// - Returns: the metric deltas, mean cosines of matching rows, and the lists' mean overlap.
    /// - Throws: `StoreError.noSnapshot` or `.corrupt` for either snapshot.
    public func diffSnapshots(_ a: Int, _ b: Int, sampleUsers: Int = 200, seed: UInt64 = 11) throws -> SnapshotDiff {
        return try serialized {
            let (infoA, modelA) = try loadModel(snapshot: a)
            let (infoB, modelB) = try loadModel(snapshot: b)
            func meanCosine(_ count: Int, _ x: (Int) -> ArraySlice<Float>, _ y: (Int) -> ArraySlice<Float>) -> (
                Double, Int
            ) {
                var sum = 0.0, n = 0
                for r in 0..<count {
                    let u = x(r), v = y(r)
                    guard u.count == v.count else { continue }
                    var dot = 0.0, nu = 0.0, nv = 0.0
                    for (p, q) in zip(u, v) {
                        dot += Double(p * q)
                        nu += Double(p * p)
                        nv += Double(q * q)
                    }
                    guard nu > 0 && nv > 0 else { continue }
                    sum += dot / (nu * nv).squareRoot()
                    n += 1
                }
                return (n > 0 ? sum / Double(n) : 0, n)
            }
            let sameK = modelA.factors == modelB.factors
            let (itemCos, items) =
                sameK
                ? meanCosine(min(modelA.itemCount, modelB.itemCount), modelA.itemVector, modelB.itemVector) : (0, 0)
            let (userCos, users) =
                sameK
                ? meanCosine(min(modelA.userCount, modelB.userCount), modelA.userVector, modelB.userVector) : (0, 0)
            var rng = SeededGenerator(seed: seed)
            var candidates = (0..<min(modelA.userCount, modelB.userCount)).filter {
                modelA.hasUser($0) && modelB.hasUser($0)
            }
            candidates.shuffle(using: &rng)
            let sample = Array(candidates.prefix(sampleUsers))
            var overlap = 0.0, rankingOverlap = 0.0
            let rankA = ModelRanker(model: modelA), rankB = ModelRanker(model: modelB)
            let rankingA = try loadRankingModel(snapshot: a), rankingB = try loadRankingModel(snapshot: b)
            for u in sample {
                let rated = try store.ratings(ofUser: u)
                let excluded = rated.map { Int32($0.item) }
                let ta = Set(rankA.topN(user: u, n: 10, excluded: excluded).map(\.item))
                let tb = Set(rankB.topN(user: u, n: 10, excluded: excluded).map(\.item))
                overlap += Double(ta.intersection(tb).count) / Double(max(ta.count, 1))
                if let (ma, ca) = rankingA, let (mb, cb) = rankingB {
                    let ratings = rated.map { (item: Int32($0.item), rating: Float($0.rating)) }
                    // Each snapshot's lists as it serves them: its popularity blend and its rating-model blend.
                    let la = Set(
                        ma.topN(
                            ratings: ratings, n: 10, excluded: Set(excluded), popularityWeight: ca.popularityWeight,
                            ratingScores: ca.ratingBlend > 0 ? modelA.itemScores(user: u) : nil,
                            ratingWeight: ca.ratingBlend)?
                            .map(\.item) ?? [])
                    let lb = Set(
                        mb.topN(
                            ratings: ratings, n: 10, excluded: Set(excluded), popularityWeight: cb.popularityWeight,
                            ratingScores: cb.ratingBlend > 0 ? modelB.itemScores(user: u) : nil,
                            ratingWeight: cb.ratingBlend)?
                            .map(\.item) ?? [])
                    rankingOverlap += Double(la.intersection(lb).count) / Double(max(la.count, 1))
                }
            }
            let ra = infoA.metrics?.test, rb = infoB.metrics?.test
            return SnapshotDiff(
                a: a, b: b, factorsA: modelA.factors, factorsB: modelB.factors,
                rmseDelta: ra.flatMap { x in rb.map { $0.rmse - x.rmse } },
                maeDelta: ra.flatMap { x in rb.map { $0.mae - x.mae } },
                meanItemCosine: itemCos, meanUserCosine: userCos, comparedItems: items, comparedUsers: users,
                top10Overlap: sample.isEmpty ? 0 : overlap / Double(sample.count),
                rankingTop10Overlap: rankingA != nil && rankingB != nil && !sample.isEmpty
                    ? rankingOverlap / Double(sample.count) : nil,
                sampledUsers: sample.count)
        }
    }

    /// One snapshot's full record (without its model).
    /// - Parameter id: the snapshot.
    /// - Returns: its metadata, metrics and options.
    /// - Throws: `StoreError.noSnapshot` for an unknown id.
    public func snapshot(_ id: Int) throws -> SnapshotInfo {
        return try serialized {
            guard let info = try snapshots().first(where: { $0.id == id }) else {
                throw StoreError.noSnapshot(id)
            }
            return info
        }
    }
}

extension Recommender {
    /// Stores a model built elsewhere as an 'imported' snapshot and makes it live. Its user and item
    /// rows are the database's dense ids (row r is the user or item with id r).
    /// - Parameters:
    ///   - model: the model; its users and items no more than the database's.
    ///   - note: a note stored with the snapshot.
    /// - Returns: the new snapshot's id.
    /// - Throws: `MFRecError.modelMismatch` for a model that does not fit (nothing stored), `StoreError` when
    ///   it cannot be stored.
    @discardableResult
    public func importModel(_ model: FactorModel, note: String? = nil) throws -> Int {
        return try serialized {
            let state = try store.transaction { () -> LiveState in
                try checkFits(model)
                let parent = try store.liveModel().snapshotID
                let watermark = try store.maxSequence()
                let id = try store.insertSnapshot(
                    SnapshotCodec.record(
                        model: model, kind: "imported", note: note, parent: parent, options: nil, history: [],
                        test: nil,
                        unseen: nil, split: nil, watermark: watermark))
                try store.setLiveSnapshot(id, watermark: watermark)
                return try liveState()
            }
            writeItemMatrix(state)
            return state.snapshot.id
        }
    }

    /// Refuses a model whose shape or values cannot serve this database: more users or items than it
    /// knows, arrays of the wrong size, values that are not finite.
    func checkFits(_ model: FactorModel) throws {
        let users = try store.userCount(), items = try store.itemCount()
        func fail(_ why: String) -> MFRecError { .modelMismatch(why) }
        guard model.factors > 0, model.stride >= model.factors else { throw fail("it has \(model.factors) factors") }
        guard model.userCount <= users else { throw fail("it has \(model.userCount) users, the database \(users)") }
        guard model.itemCount <= items else { throw fail("it has \(model.itemCount) items, the database \(items)") }
        guard model.userFactors.count == model.userCount * model.stride,
            model.itemFactors.count == model.itemCount * model.stride,
            model.userBias.count == model.userCount, model.itemBias.count == model.itemCount
        else { throw fail("its arrays do not match its shape") }
        let finite =
            model.userFactors.allSatisfy(\.isFinite) && model.itemFactors.allSatisfy(\.isFinite)
            && model.userBias.allSatisfy(\.isFinite) && model.itemBias.allSatisfy(\.isFinite)
            && model.globalMean.isFinite
        guard finite else { throw fail("it holds values that are not finite numbers") }
    }
}
