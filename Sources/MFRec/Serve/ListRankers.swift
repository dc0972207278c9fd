import MFEngine

/// The rankers a list can come from besides the rating model, and the rule that picks one: the one place
/// `recommend`, `recommend --all` and `eval` take them from, so the three rank every user alike.
struct ListRankers: Sendable {
    let ranking: RankingModel?
    let choice: RankingChoice?
    /// Where the co-occurrence embedding comes from, asked only when a list needs it (so a damaged one fails
    /// only those lists, and a query answered by another ranker never reads it).
    let embeddingSource: @Sendable () throws -> CooccurrenceEmbedding?
    var embedding: CooccurrenceEmbedding? { get throws { try embeddingSource() } }
    /// The popular list, best first, with each item's mean rating.
    let popular: [PopularItem]
    /// Without a ranking model: users with fewer ratings than this are ranked by co-occurrence.
    let cooccurrenceBelow: Int

    /// The ranker (and popularity blend) that answers a user with `ratingCount` ratings when none is asked
    /// for: the rule validation chose, or without a ranking model the rule from before it existed.
    func defaultRule(ratingCount: Int, hasVector: Bool) -> (ranker: Ranker, popularityWeight: Float) {
        if ratingCount == 0 { return (.popular, 0) }
        if let choice, ranking != nil { return choice.rule(forRatingCount: ratingCount) }
        if cooccurrenceBelow > 0 && (ratingCount < cooccurrenceBelow || !hasVector) { return (.cooccurrence, 0) }
        return (.rating, 0)
    }

    /// The rule for an explicitly chosen ranker: the ranking model keeps its chosen blend, the others none.
    func explicitRule(_ ranker: Ranker) -> (ranker: Ranker, popularityWeight: Float) {
        (ranker, ranker == .ranking ? choice?.popularityWeight ?? 0 : 0)
    }

    /// Whether a `.ranking` list for a user with `ratingCount` ratings blends in the rating model's predicted
    /// ratings (see `RankingChoice.ratingWeight`): when validation chose a blend, for `--by ranking` and for users
    /// the main rule answers (not the light-user rule's, which was chosen without it).
    func blendsRatings(ratingCount: Int, by: Ranker?) -> Bool {
        guard ranking != nil, let choice, choice.ratingBlend > 0 else { return false }
        return by == .ranking || (by == nil && ratingCount >= choice.lightBelow)
    }

    /// The recency decay of the list `recommend` gives by default a user with `ratingCount` ratings (1: none):
    /// the light-user rule's (`RankingChoice.lightRecency`), only when that rule answers and it ranks by
    /// co-occurrence; an explicitly asked ranker (`by`) ranks every rating alike.
    func recencyDecay(ratingCount: Int, by: Ranker?) -> Float {
        guard by == nil, ranking != nil, let choice, ratingCount > 0, ratingCount < choice.lightBelow else { return 1 }
        return choice.lightDecay
    }

    /// The top-n by a ranker other than the rating model; nil when it has nothing to rank this user by.
    /// `user` lets an imported ranking model answer from the user's stored vector (see `ImplicitALS`).
    /// `mapped`, when given, is the live generation's item matrix written from `ranking`: the ranking model's
    /// scan then reads its mapped rows (the same list as the in-memory rows give). `excluded` is sorted
    /// ascending, without repeats. `ratingScores`, for a `.ranking` list `blendsRatings` says blends, are the
    /// rating model's scores for the user (`FactorModel.itemScores`). `recency`, for a `.cooccurrence` list whose
    /// `recencyDecay` is below 1, is that decay and the user's rated items in time order (oldest first; see
    /// `Store.ratingsInTimeOrder`): the user's vector then weights each item by its recency.
    func top(
        _ ranker: Ranker, user: Int? = nil, popularityWeight: Float, ratings: [(item: Int32, rating: Float)], n: Int,
        excluded: [Int32], mapped: ItemMatrix? = nil, ratingScores: [Float]? = nil,
        recency: (decay: Float, oldestFirst: [Int32])? = nil
    ) throws -> [(item: Int32, score: Float)]? {
        switch ranker {
        case .ranking:
            return ranking?.topN(
                in: mapped, user: user, ratings: ratings, n: n, sortedExclusions: excluded,
                popularityWeight: popularityWeight, ratingScores: ratingScores,
                ratingWeight: ratingScores == nil ? 0 : choice?.ratingBlend ?? 0)
        case .cooccurrence:
            guard let embedding = try embedding, !ratings.isEmpty else { return nil }
            if let recency, recency.decay < 1, !recency.oldestFirst.isEmpty {
                return embedding.topN(
                    rated: recency.oldestFirst, n: n, excluded: Set(excluded), prior: ranking?.popularity ?? [],
                    weight: popularityWeight,
                    ratedWeights: CooccurrenceEmbedding.recencyWeights(
                        count: recency.oldestFirst.count, decay: recency.decay))
            }
            if popularityWeight > 0, let prior = ranking?.popularity {
                return embedding.topN(
                    rated: ratings.map(\.item), n: n, excluded: Set(excluded), prior: prior, weight: popularityWeight)
            }
            return embedding.topN(rated: ratings.map(\.item), n: n, excluded: Set(excluded))
        case .popular:
            let excluded = Set(excluded)
            return popular.lazy.filter { !excluded.contains($0.id) }.prefix(n).map { ($0.id, 0) }
        case .rating:
            return nil
        }
    }
}
