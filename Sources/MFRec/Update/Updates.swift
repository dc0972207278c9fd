import Foundation
import MFEngine
import MFStore

extension Recommender {
    /// Stores one rating and moves the live model toward it (see `rate(_:options:)`).
    /// - Parameters:
    ///   - user: the user's key (new keys are added).
    ///   - item: the item's key (new keys are added).
    ///   - rating: the rating, within the stored scale.
    ///   - timestamp: when it was given (Unix seconds), if known.
    ///   - options: SGD steps, learning rate and fold-in prior of the update.
    /// - Returns: what changed: users and items folded in, rows moved, the new generation.
    /// - Throws: as `rate(_:options:)`.
    @discardableResult
    public func rate(
        user: String, item: String, rating: Double, timestamp: Int64? = nil,
        options: UpdateOptions = UpdateOptions()
    ) throws -> UpdateReport {
        return try serialized {
            try rate([NewRating(user: user, item: item, rating: rating, timestamp: timestamp)], options: options)
        }
    }

    /// Stores new ratings (a re-rating replaces the old value) and updates the live model incrementally:
    /// users and items the model has no vector for are folded in (fitted against the fixed other side
    /// from their stored ratings), then each rating takes `options.steps` SGD steps on p_u, q_i, b_u, b_i
    /// with the model's own hyperparameters. Ratings and model rows are written in one transaction, so
    /// the update is durable when this returns, and any bad rating leaves store and model untouched.
    /// The item matrix file then follows in place.
    /// - Parameters:
    ///   - ratings: the ratings, applied in order.
    ///   - options: SGD steps, learning rate and fold-in prior of the update.
    /// - Returns: what changed: users and items folded in, rows moved, the new generation.
    /// - Throws: `MFRecError.noRatings` before the first ingest, `MFRecError.input` for an empty key or a
    ///   rating outside the scale, `MFRecError.noModel` before the first `train`, `StoreError` when the
    ///   database cannot be written (`isBusy` for another process's lock); nothing changes then.
    @discardableResult
    public func rate(_ ratings: [NewRating], options: UpdateOptions = UpdateOptions()) throws -> UpdateReport {
        return try serialized {
            let started = Date()
            guard let scale = try store.ratingScale() else {
                throw MFRecError.noRatings
            }
            for (n, r) in ratings.enumerated() {
                let which = ratings.count > 1 ? "rating \(n + 1): " : ""
                guard !r.user.isEmpty, !r.item.isEmpty else {
                    throw MFRecError.input(file: "rate", reason: "\(which)empty user or item id")
                }
                guard r.rating.isFinite else {
                    throw MFRecError.input(file: "rate", reason: "\(which)rating \(r.rating) is not a finite number")
                }
                guard scale.contains(r.rating) else {
                    throw MFRecError.input(
                        file: "rate",
                        reason: "\(which)rating \(RatingScale.number(r.rating)) is outside the scale "
                            + RatingScale.describe(scale))
                }
            }
            var report = UpdateReport()
            try updatingItemMatrix {
                try storeAndApply(ratings, options: options, report: &report)
            }
            report.ratings = ratings.count
            report.seconds = Date().timeIntervalSince(started)
            return report
        }
    }

    /// `rate`'s transaction and the item matrix rows it rewrites (inside `updatingItemMatrix`).
    private func storeAndApply(_ ratings: [NewRating], options: UpdateOptions, report: inout UpdateReport) throws {
        let (state, touched, previous) = try store.writeRatings { writer -> (LiveState, TouchedItems, Int64) in
            var triples = RatingTriples()
            for r in ratings {
                let (u, newUser) = try store.addUser(key: r.user)
                let (i, newItem) = try store.addItem(key: r.item)
                report.newUsers += newUser ? 1 : 0
                report.newItems += newItem ? 1 : 0
                try writer.upsert(user: Int32(u), item: Int32(i), rating: r.rating, timestamp: r.timestamp)
                triples.append(user: Int32(u), item: Int32(i), rating: Float(r.rating))
            }
            return try applyUpdates(triples, watermark: writer.nextSequence - 1, options: options, report: &report)
        }
        report.generation = state.live.generation
        report.matrixUpdatedInPlace = followInPlace(state, previousGeneration: previous, items: touched)
    }

    /// `ingest FILE --update`: the file goes in as `ingest` would (same formats and errors), and the live
    /// model is updated with every stored rating, all in one transaction.
    /// - Parameters:
    ///   - path: the ratings file.
    ///   - options: as for `ingest`.
    ///   - update: SGD steps, learning rate and fold-in prior of the update.
    ///   - progress: called with bytes read and bytes in all.
    /// - Returns: the ingest's report and the update's.
    /// - Throws: as `ingest(path:options:progress:)` and `rate(_:options:)`; nothing is stored then.
    @discardableResult
    public func ingestUpdating(
        path: String, options: IngestOptions = IngestOptions(), update: UpdateOptions = UpdateOptions(),
        progress: ProgressHandler? = nil
    ) throws -> (IngestReport, UpdateReport) {
        return try serialized {
            try updatingItemMatrix {
                try ingestUpdatingLocked(path: path, options: options, update: update, progress: progress)
            }
        }
    }

    /// `ingestUpdating`'s ingest, update and item matrix rows (inside `updatingItemMatrix`).
    private func ingestUpdatingLocked(
        path: String, options: IngestOptions, update: UpdateOptions, progress: ProgressHandler?
    ) throws -> (IngestReport, UpdateReport) {
        var report = UpdateReport()
        let started = Date()
        let before = try store.liveModel()
        guard before.snapshotID != nil else { throw MFRecError.noModel }
        var result: (LiveState, TouchedItems, Int64)?
        let ingest = try Ingestor(store: store).ingest(
            path: path, options: options, progress: progress,
            stored: { triples, watermark in
                result = try self.applyUpdates(triples, watermark: watermark, options: update, report: &report)
            })
        report.ratings = ingest.ratingsRead
        report.newUsers = ingest.newUsers
        report.newItems = ingest.newItems
        if let (state, items, previous) = result {
            report.generation = state.live.generation
            report.matrixUpdatedInPlace = followInPlace(state, previousGeneration: previous, items: items)
        }
        report.seconds = Date().timeIntervalSince(started)
        return (ingest, report)
    }

    /// Deletes one rating, and the live model forgets it. The rating model's row of the user is fitted again from
    /// their remaining ratings against the fixed item vectors (the fold-in `rate` gives a new user; with nothing
    /// left to fit, the row is cleared); the item's row stays, as the rating's share of a fitted item vector is not
    /// at hand to subtract. The ranking model's count and popularity prior of the item fall by it, and its user
    /// vectors come from the stored ratings at query time, so it forgets at once. Durable when this returns; the
    /// item matrix's header follows in place.
    /// - Throws: `MFRecError.unknownUser`/`.unknownItem` for keys the database does not have, `MFRecError.noRating`
    ///   when the user has not rated the item, `MFRecError.noModel` before the first `train`.
    /// - Parameters:
    ///   - userKey: the user's key.
    ///   - itemKey: the item's key.
    /// - Returns: what changed in the live model.
    @discardableResult
    public func deleteRating(user userKey: String, item itemKey: String) throws -> UpdateReport {
        try serialized {
            let started = Date()
            guard let user = try store.userID(forKey: userKey) else { throw MFRecError.unknownUser(userKey) }
            guard let item = try store.itemID(forKey: itemKey) else { throw MFRecError.unknownItem(itemKey) }
            guard try store.liveModel().snapshotID != nil else { throw MFRecError.noModel }
            return try updatingItemMatrix {
                try deleteRatingLocked(user: user, item: item, keys: (userKey, itemKey), started: started)
            }
        }
    }

    /// `deleteRating`'s transaction and the item matrix rows it rewrites (inside `updatingItemMatrix`).
    private func deleteRatingLocked(user: Int, item: Int, keys: (user: String, item: String), started: Date) throws
        -> UpdateReport
    {
        let (state, previous, rankingItem) = try store.transaction { () -> (LiveState, Int64, Int?) in
            guard let value = try store.deleteRating(user: user, item: item) else {
                throw MFRecError.noRating(user: keys.user, item: keys.item)
            }
            var state = try cachedLiveState()
            liveCache = nil  // taken, not shared (see applyUpdates)
            let previous = state.live.generation
            if user < state.model.userCount {
                let updater = UpdateOptions().updater(trainedWith: state.snapshot.options ?? TrainingOptions())
                let left = try store.ratings(ofUser: user).map { (item: $0.item, rating: Float($0.rating)) }
                if !updater.foldInUser(&state.model, user: user, ratings: left) { state.model.clearUser(user) }
                try store.upsertLiveRow(
                    .init(id: user, bias: state.model.userBias[user], vector: Array(state.model.userVector(user))),
                    user: true)
            }
            var rankingItem: Int?
            if var entry = state.ranking, let scale = try store.ratingScale() {
                state.ranking = nil
                rankingItem = item
                entry.model.remove(
                    rating: Float(value), item: item, relevantAt: Float(Recommender.topQuarter(of: scale)))
                let row = entry.model.itemRow(item)
                try store.upsertLiveRankingRow(
                    .init(id: item, ratings: row.ratings, popularity: row.popularity, vector: row.vector))
                state.ranking = entry
            }
            state.live = try store.markLiveUpdated(count: 1, watermark: state.live.watermark)
            return (state, previous, rankingItem)
        }
        liveCache = state
        var report = UpdateReport()
        report.ratings = 1
        report.generation = state.live.generation
        report.matrixUpdatedInPlace = followInPlace(
            state, previousGeneration: previous, items: TouchedItems(ranking: rankingItem.map { [$0] } ?? []))
        report.seconds = Date().timeIntervalSince(started)
        return report
    }

    /// Moves the live model with stored ratings and writes the changed rows (inside the caller's transaction).
    /// - Returns: the new live state, the items changed in each model, and the live generation the update
    ///   started from (read inside the transaction, so no other writer's commit falls between).
    private func applyUpdates(
        _ triples: RatingTriples, watermark: Int64, options: UpdateOptions,
        report: inout UpdateReport
    ) throws -> (LiveState, TouchedItems, Int64) {
        var state = try cachedLiveState()
        // Take the cached state rather than share it: the model's arrays are then uniquely referenced and
        // the SGD steps below write them in place (a shared copy was copied whole on the first step: 15%
        // of a rating post's time on ML-100K, and the whole model per rating on a large one). On an error
        // the cache stays empty and the next call reloads what the rolled-back transaction left.
        liveCache = nil
        let previous = state.live.generation
        let userCount = try store.userCount(), itemCount = try store.itemCount()
        state.model.grow(
            userCount: max(userCount, state.model.userCount), itemCount: max(itemCount, state.model.itemCount))
        let updater = options.updater(trainedWith: state.snapshot.options ?? TrainingOptions())
        var touchedUsers = Set<Int>(), touchedItems = Set<Int>()
        // Fold in first: a user or item without a vector is fitted from all of its stored ratings.
        // (Items are fitted from this batch's ratings of them: the ratings table has no index by item.)
        var itemRatings: [Int: [(user: Int, rating: Float)]] = [:]
        for j in 0..<triples.count {
            itemRatings[Int(triples.items[j]), default: []].append((Int(triples.users[j]), triples.ratings[j]))
        }
        for u in Set(triples.users.map(Int.init)) where !state.model.hasUser(u) {
            let rated = try store.ratings(ofUser: u).map { (item: $0.item, rating: Float($0.rating)) }
            if updater.foldInUser(&state.model, user: u, ratings: rated) {
                report.foldedUsers += 1
                touchedUsers.insert(u)
            }
        }
        for (i, rated) in itemRatings where !state.model.hasItem(i) {
            if updater.foldInItem(&state.model, item: i, ratings: rated) {
                report.foldedItems += 1
                touchedItems.insert(i)
            }
        }
        for j in 0..<triples.count {
            let u = Int(triples.users[j]), i = Int(triples.items[j])
            updater.step(&state.model, user: u, item: i, rating: triples.ratings[j])
            touchedUsers.insert(u)
            touchedItems.insert(i)
        }
        for u in touchedUsers {
            try store.upsertLiveRow(
                .init(id: u, bias: state.model.userBias[u], vector: Array(state.model.userVector(u))), user: true)
        }
        for i in touchedItems {
            try store.upsertLiveRow(
                .init(id: i, bias: state.model.itemBias[i], vector: Array(state.model.itemVector(i))), user: false)
        }
        let rankingItems = try absorbIntoRanking(triples, state: &state)
        state.live = try store.markLiveUpdated(count: triples.count, watermark: watermark)
        liveCache = state
        return (state, TouchedItems(rating: touchedItems, ranking: rankingItems), previous)
    }

    /// Moves the ranking model's item rows toward the new ratings (`RankingModel.absorb`: one fold-in term
    /// per rating, from each rating user's projection) and stores the changed rows (inside the caller's
    /// transaction). Each pair counts once, with its last value in the batch; a re-rating counts as the
    /// difference from the value the live model had seen.
    /// - Returns: the items whose ranking rows changed.
    private func absorbIntoRanking(_ triples: RatingTriples, state: inout LiveState) throws -> Set<Int> {
        guard var entry = state.ranking, let scale = try store.ratingScale() else { return [] }
        state.ranking = nil  // taken, not shared: the arrays below are then written in place (see applyUpdates)
        let relevantAt = Float(Recommender.topQuarter(of: scale))
        var order: [Int32] = []
        var latest: [Int32: [Int32: Float]] = [:]
        for j in 0..<triples.count {
            let u = triples.users[j]
            if latest[u] == nil { order.append(u) }
            latest[u, default: [:]][triples.items[j]] = triples.ratings[j]
        }
        var changed = Set<Int>()
        for u in order {
            let new = try latest[u]!.sorted { $0.key < $1.key }.map { item, rating in
                let previous = try store.replacedRating(user: Int(u), item: Int(item), after: state.live.watermark)
                return (item: item, rating: rating, previous: previous.map(Float.init))
            }
            changed.formUnion(
                try entry.model.absorb(
                    userRatings: {
                        try store.ratings(ofUser: Int(u)).map { (item: Int32($0.item), rating: Float($0.rating)) }
                    }, new: new, relevantAt: relevantAt))
        }
        for i in changed.sorted() {
            let row = entry.model.itemRow(i)
            try store.upsertLiveRankingRow(
                .init(id: i, ratings: row.ratings, popularity: row.popularity, vector: row.vector))
        }
        state.ranking = entry
        return changed
    }

    /// The live state, reloaded only when the live generation moved since it was cached
    /// (so a process that rates many times decodes its snapshot once).
    /// Loads the live model the next write updates (a write otherwise loads it first: on a 25M-rating model
    /// that is most of a second, which a server should spend before it takes requests, not in one). A
    /// database without a trained model is fine: there is nothing to load.
    /// - Throws: `StoreError` or `MFRecError` when the live model cannot be read.
    public func prepareForUpdates() throws {
        try serialized {
            guard try store.liveModel().snapshotID != nil else { return }
            _ = try cachedLiveState()
        }
    }

    func cachedLiveState() throws -> LiveState {
        if let cached = liveCache, try store.liveGeneration() == cached.live.generation { return cached }
        // Another connection (a CLI `rate` beside a server) wrote since: patch the cached state forward rather
        // than decode the whole model again.
        if var cached = liveCache.take() {
            if try reader.patch(&cached) {
                liveCache = cached
                return cached
            }
        }
        let fresh = try liveState()
        liveCache = fresh
        return fresh
    }

    /// Brings the item matrix file to the new generation: the changed rows in place when the file is
    /// the previous generation's and no item was added, the whole file otherwise.
    /// Call inside `updatingItemMatrix` (the lock is held from before the commit); writes only while `state` is
    /// still the committed live model (see `followLiveModel`): two raters in two processes never interleave row
    /// writes, and the file never goes back to an older generation.
    private func followInPlace(_ state: LiveState, previousGeneration: Int64, items: TouchedItems) -> Bool {
        let rows = items.rating.sorted().map {
            (item: $0, vector: Array(state.model.itemVector($0)), bias: state.model.itemBias[$0])
        }
        var rankingRows: [(item: Int, vector: [Float], popularity: Float)] = []
        if let ranking = state.ranking?.model {
            for i in items.ranking.sorted() where i < ranking.itemCount {
                let row = ranking.itemRow(i)
                rankingRows.append((i, row.vector, row.popularity))
            }
        }
        var done = false
        followLiveModel(generation: state.live.generation, lockHeld: true) {
            done = ItemMatrix.updateInPlace(
                path: itemMatrixPath, expectedGeneration: UInt64(previousGeneration),
                snapshotID: UInt64(state.snapshot.id), factors: state.model.factors,
                itemCount: state.model.itemCount, items: rows, ranking: state.rankingShape, rankingItems: rankingRows,
                precision: state.precision, generation: UInt64(state.live.generation))
            if !done {
                writeItemMatrix(
                    model: state.model, ranking: state.ranking?.model, precision: state.precision,
                    generation: state.live.generation, snapshotID: state.snapshot.id)
            }
        }
        return done
    }
}

/// The items an incremental update changed, per model: their rows are rewritten in the item matrix.
struct TouchedItems {
    /// Items whose rating-model row (vector, bias) changed.
    var rating: Set<Int> = []
    /// Items whose ranking-model row (vector, popularity prior) changed.
    var ranking: Set<Int> = []
}
