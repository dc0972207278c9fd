import Foundation
import MFEngine
import MFStore

extension QueryEngine {
    /// Without a ranking model (a snapshot trained before it existed, or `--ranking off`), users with
    /// fewer ratings than this are ranked by co-occurrence by default (see `recommend`).
    public static let defaultCooccurrenceBelow = 20

    /// The rankers and rule that lists come from (see `ListRankers`), with the ranking model of `state`.
    func listRankers(_ state: LiveState, cooccurrenceBelow: Int) throws -> ListRankers {
        ListRankers(
            ranking: state.ranking?.model, choice: state.ranking?.choice,
            embeddingSource: { [self] in try cooccurrence() },
            popular: try popularList(), cooccurrenceBelow: cooccurrenceBelow)
    }

    /// The top-n items for a user (by the id of the ratings file).
    ///
    /// Which ranking answers (`by: nil`): a user unknown to the database, or with fewer than `minRatings`
    /// ratings, gets the popular list (or `MFRecError` with `cold: .error`). Otherwise the ranker that
    /// validation chose at training time for a user with this many ratings: the ranking model (see
    /// `RankingModel`), or for light users the co-occurrence embedding or the popular list (see
    /// `RankingChoice`). A snapshot without a ranking model ranks as before it existed: co-occurrence below
    /// `cooccurrenceBelow` ratings, the rating model's largest predictions above. `by` asks for one
    /// ranker; where it has nothing to rank by (no vector), the popular list answers.
    /// `predictedRating` is always the rating model's prediction (its fallback μ + known bias where it
    /// has no vector), whatever ranked.
    /// `excluding` names items (by the ids of the ratings file) that may not appear, and `filter` says
    /// which may (a candidate set, a genre, a least number of ratings); items ruled out are left out
    /// inside the scan, so the answer is the true top-n of the allowed items. Unknown ids are ignored.
    /// - Parameters:
    ///   - key: the user's key.
    ///   - n: the list's length.
    ///   - includeRated: whether items the user rated may appear.
    ///   - cold: what to do for a user without a vector (`.popular` answers with the popular list).
    ///   - explain: whether each item says which of the user's rated items it is closest to.
    ///   - threads: threads of a rating-model scan.
    ///   - minRatings: a user with fewer ratings is treated as cold.
    ///   - cooccurrenceBelow: users with fewer ratings are ranked by the light-user rule.
    ///   - by: one ranker instead of the rule validation chose.
    ///   - items: item keys that may not appear.
    ///   - filter: which items may appear (a candidate set, a genre, a least number of ratings).
    /// - Returns: the list, best first, with the ranker that ordered it.
    /// - Throws: `MFRecError.unknownUser`, `.coldUser` (with `cold: .error`), `.unknownGenre`, `.noModel`,
    ///   `.reloadFailed`; `StoreError` when the database cannot be read.
    public func recommend(
        user key: String, n: Int = 10, includeRated: Bool = false, cold: ColdStartPolicy = .popular,
        explain: Bool = false, threads: Int = 1, minRatings: Int = 0,
        cooccurrenceBelow: Int = QueryEngine.defaultCooccurrenceBelow, by: Ranker? = nil,
        excluding items: Set<String> = [], filter: ItemFilter = ItemFilter()
    ) throws -> RecommendationList {
        var filter = filter
        filter.excluded.formUnion(items)
        let banned = try self.banned(by: filter)
        // One committed state: the answer is recomputed if a writer rewrote mapped rows meanwhile. The user's id
        // and ratings are read in the transaction that reads the live generation.
        return try consistentState(
            fetching: { store in try store.rememberedGenerationAndUser(forKey: key) },
            answer: { state, matrix, found in
                try recommend(
                    state: state, matrix: matrix, user: key, found: found, n: n, includeRated: includeRated, cold: cold,
                    explain: explain, threads: threads, minRatings: minRatings, cooccurrenceBelow: cooccurrenceBelow,
                    by: by, banned: banned)
            })
    }

    /// Whom a list is for: a stored user, or an anonymous session's ratings folded in on the fly.
    struct ListSubject {
        /// The user's id as given (for the answer).
        var key: String
        /// The ratings the list is for, by item id.
        var rated: [(item: Int, rating: Double)]
        /// A stored user's id: it lets an imported ALS ranking model answer from the user's stored vector.
        var storedUser: Int?
        /// The rating model's user vector and bias; nil when it has none.
        var vector: (vector: [Float], bias: Float)?
        /// The rated items in time order, oldest first (see `Store.ratingsInTimeOrder`), read only when a
        /// recency-weighted list needs them.
        var oldestFirst: () throws -> [Int32]
    }

    /// The top-n for an anonymous session: `ratings` (item ids of the ratings file, and values on the scale) are
    /// folded in as `rate` or `ingest --update` would fold in a new user who gave them, and nothing is written,
    /// so this works on a database opened read-only. The rating model's vector comes from the incremental path's
    /// fold-in and SGD steps (`OnlineUpdater.sessionUser`); the ranking model sees the counts and priors the
    /// ratings would give their items (`RankingModel.absorb` on a copy); the light-user rule, rankers, filters and
    /// explanations are `recommend(user:)`'s. So the list equals the one a stored user with these ratings, added in
    /// one batch, would get. A repeated item counts with its last value; items the database does not know are
    /// left out and counted in `ignored`. With no known item the popular list answers.
    /// - Parameters:
    ///   - ratings: the session's (item key, rating) pairs.
    ///   - n: the list's length.
    ///   - includeRated: whether the session's items may appear.
    ///   - explain: whether each item says which of the session's items it is closest to.
    ///   - by: one ranker instead of the rule validation chose.
    ///   - items: item keys that may not appear.
    ///   - filter: which items may appear.
    /// - Returns: the list, and how many of the ratings named items the database does not know.
    /// - Throws: `MFRecError.input` for a rating outside the scale, `.unknownGenre`, `.noModel`, `.reloadFailed`.
    public func recommend(
        ratings: [(item: String, rating: Double)], n: Int = 10, includeRated: Bool = false, explain: Bool = false,
        by: Ranker? = nil, excluding items: Set<String> = [], filter: ItemFilter = ItemFilter()
    ) throws -> (list: RecommendationList, ignored: Int) {
        var filter = filter
        filter.excluded.formUnion(items)
        let banned = try self.banned(by: filter)
        var known: [(item: Int, rating: Double)] = []
        var ignored = 0
        // One read for the scale and every key.
        let (scale, ids) = try pool.read { store in
            (try store.ratingScale(), try ratings.map { try store.itemID(forKey: $0.item) })
        }
        for ((key, rating), id) in zip(ratings, ids) {
            guard let id else {
                ignored += 1
                continue
            }
            guard rating.isFinite, scale?.contains(rating) ?? true else {
                throw MFRecError.input(
                    file: "ratings",
                    reason: "rating \(RatingScale.number(rating)) of item \(key) is outside the scale "
                        + (scale.map(RatingScale.describe) ?? "?"))
            }
            known.append((id, rating))
        }
        let list = try consistentState { state, matrix in
            let hyper = state.snapshot.options ?? TrainingOptions()
            let vector = UpdateOptions().updater(trainedWith: hyper).sessionUser(
                state.model, ratings: known.map { ($0.item, Float($0.rating)) })
            var last: [Int: Double] = [:]
            for entry in known { last[entry.item] = entry.rating }
            // The session's order is its time order; a repeated item counts where it was last given.
            var seen = Set<Int>()
            let oldestFirst = known.reversed().filter { seen.insert($0.item).inserted }.reversed().map {
                Int32($0.item)
            }
            let rated = last.sorted { $0.key < $1.key }.map { (item: $0.key, rating: $0.value) }
            var state = state
            if var entry = state.ranking, let scale {
                // The counts and popularity priors the session's ratings would give their items, on a copy.
                _ = entry.model.absorb(
                    userRatings: { rated.map { (Int32($0.item), Float($0.rating)) } },
                    new: rated.map { (Int32($0.item), Float($0.rating), nil) },
                    relevantAt: Float(Recommender.topQuarter(of: scale)))
                state.ranking = entry
            }
            // The ranking model is a modified copy here (its priors moved): it ranks from its own rows.
            return try recommend(
                state: state, matrix: matrix, scanMapped: false,
                subject: ListSubject(
                    key: "(session)", rated: rated, storedUser: nil, vector: vector, oldestFirst: { oldestFirst }),
                n: n,
                includeRated: includeRated, cold: .popular, explain: explain, threads: 1, minRatings: 0,
                cooccurrenceBelow: QueryEngine.defaultCooccurrenceBelow, by: by, banned: banned)
        }
        return (list, ignored)
    }

    /// `found`: the user's id and ratings, nil for a user the database does not have.
    private func recommend(
        state: LiveState, matrix: ItemMatrix, user key: String, found: (id: Int, rated: [(item: Int, rating: Double)])?,
        n: Int, includeRated: Bool, cold: ColdStartPolicy, explain: Bool, threads: Int, minRatings: Int,
        cooccurrenceBelow: Int, by: Ranker?, banned: [Int32]
    ) throws -> RecommendationList {
        let model = state.model
        guard let (user, rated) = found else {
            if cold == .error { throw MFRecError.unknownUser(key) }
            return RecommendationList(
                user: key, ranking: .popular, items: try popular(n: n, excluding: Set(banned)))
        }
        let subject = ListSubject(
            key: key, rated: rated, storedUser: user,
            vector: model.hasUser(user) ? (Array(model.userVector(user)), model.userBias[user]) : nil,
            oldestFirst: { [pool] in
                // Read after the list's transaction: only the items of `rated` count (one rated since is left out).
                let items = Set(rated.map { Int32($0.item) })
                return try pool.read { try $0.ratingsInTimeOrder(ofUser: Int32(user), maxSeq: .max) }.map(\.item)
                    .filter { items.contains($0) }
            })
        return try recommend(
            state: state, matrix: matrix, scanMapped: true, subject: subject, n: n, includeRated: includeRated,
            cold: cold,
            explain: explain, threads: threads, minRatings: minRatings, cooccurrenceBelow: cooccurrenceBelow, by: by,
            banned: banned)
    }

    /// `scanMapped`: whether the ranking model of `state` is the one `matrix` was written from, so its scan
    /// reads the mapped ranking rows.
    private func recommend(
        state: LiveState, matrix: ItemMatrix, scanMapped: Bool, subject: ListSubject, n: Int, includeRated: Bool,
        cold: ColdStartPolicy, explain: Bool, threads: Int, minRatings: Int, cooccurrenceBelow: Int, by: Ranker?,
        banned: [Int32]
    ) throws -> RecommendationList {
        let model = state.model, key = subject.key, rated = subject.rated
        let forgotten = try forgottenItems(state)
        let banned = forgotten.isEmpty ? banned : Set(banned + forgotten).sorted()
        let ratedIDs = rated.map { Int32($0.item) }
        // Sorted and unique: the scan walks it beside the item ids.
        let excluded =
            banned.isEmpty ? (includeRated ? [] : ratedIDs) : Set((includeRated ? [] : ratedIDs) + banned).sorted()
        func coldList() throws -> RecommendationList {
            if cold == .error { throw MFRecError.coldUser(key) }
            return RecommendationList(user: key, ranking: .popular, items: try popular(n: n, excluding: Set(excluded)))
        }
        guard ratedIDs.count >= minRatings else { return try coldList() }
        let rankers = try listRankers(state, cooccurrenceBelow: cooccurrenceBelow)
        let (ranker, weight) =
            by.map(rankers.explicitRule)
            ?? rankers.defaultRule(ratingCount: ratedIDs.count, hasVector: subject.vector != nil)
        func listing(
            _ top: [(item: Int32, score: Float)], _ ranking: Ranker,
            reasons: (Int) throws -> [Recommendation.Reason]
        ) throws -> RecommendationList {
            var items: [Recommendation] = []
            for (rank, hit) in top.enumerated() {
                let item = Int(hit.item), info = try self.item(item)
                var rec = Recommendation(
                    rank: rank + 1, item: info?.key ?? String(item), title: info?.title,
                    predictedRating: Double(model.predictOrFallback(user: subject.vector, item: item)))
                if explain { rec.because = try reasons(item) }
                items.append(rec)
            }
            return RecommendationList(user: key, ranking: ranking, items: items)
        }
        let ratings = rated.map { (item: Int32($0.item), rating: Float($0.rating)) }
        switch ranker {
        case .popular:
            return try coldList()
        case .ranking:
            guard let ranking = rankers.ranking else {
                if by == .ranking { throw MFRecError.noRankingModel }
                return try coldList()
            }
            guard
                let top = try rankers.top(
                    .ranking, user: subject.storedUser, popularityWeight: weight, ratings: ratings, n: n,
                    excluded: excluded, mapped: scanMapped ? matrix : nil,
                    ratingScores: rankers.blendsRatings(ratingCount: ratedIDs.count, by: by)
                        ? subject.vector.map { model.itemScores(user: $0.vector[...]) } : nil)
            else {
                return try coldList()
            }
            return try listing(top, .ranking) { item in
                try closest(among: rated) { candidate in
                    let similarity = ranking.cosine(candidate, item)
                    return similarity > 0 ? similarity : nil
                }
            }
        case .cooccurrence:
            let decay = rankers.recencyDecay(ratingCount: ratedIDs.count, by: by)
            guard let embedding = try rankers.embedding,
                let top = try rankers.top(
                    .cooccurrence, popularityWeight: weight, ratings: ratings, n: n, excluded: excluded,
                    recency: decay < 1 ? (decay, try subject.oldestFirst()) : nil)
            else {
                return try coldList()
            }
            return try listing(top, .cooccurrence) {
                try cooccurrenceReasons(for: $0, rated: rated, embedding: embedding)
            }
        case .rating:
            guard let vector = subject.vector else { return try coldList() }
            let query = matrix.queryVector(vector.vector)
            let top = matrix.topN(query: query, n: n, excluded: excluded, threads: threads)
            return try listing(top, .rating) { try reasons(for: $0, rated: rated, model: model, matrix: matrix) }
        }
    }
}
