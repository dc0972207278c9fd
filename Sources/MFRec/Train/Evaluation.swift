import Foundation
import MFEngine
import MFStore

/// What `eval` reports.
public struct EvaluationReport: Sendable, Codable {
    /// The snapshot evaluated (for the live model, its snapshot).
    public var snapshotID: Int
    /// Whether the live model (the snapshot with the incremental updates since) was evaluated.
    public var live: Bool
    /// Test ratings left out because they were written after training (the live model has seen them).
    public var leftOutRatedAfterTraining: Int
    /// For the live model: the incremental updates since its snapshot (0 otherwise).
    public var updatesSinceSnapshot: Int
    /// Where the test ratings came from.
    public var testSource: String
    /// MAE, MSE and RMSE of the rating model.
    public var error: ErrorMetrics
    /// Test ratings whose user or item had no training rating (predicted by the fallback).
    public var unseenTestPairs: Int
    /// The rating model's largest predicted ratings.
    public var ranking: RankingMetrics?
    /// Each user ranked exactly as `recommend` ranks them by default (nil when the snapshot has no
    /// ranking model: then `recommend` ranks by the rules that `ranking` and `cooccurrenceRanking` show).
    public var defaultRanking: RankingMetrics?
    /// The ranking model alone, for every user.
    public var rankingModelRanking: RankingMetrics?
    /// What validation chose at training time (the ranking model's settings and light-user rule).
    public var rankingChoice: RankingChoice?
    /// The smallest test rating that counts as relevant.
    public var relevantThreshold: Double
    /// Users ranked for the ranking metrics (a seeded sample when there are more than `maxUsers`).
    public var rankedUsers: Int
    /// With `compareRankings`: the same users ranked by the other two rankings `recommend` serves —
    /// the co-occurrence embedding and the popular list, both fitted on this training split.
    public var cooccurrenceRanking: RankingMetrics?
    /// The popular list's ranking metrics (with `compare`).
    public var popularRanking: RankingMetrics?
}

extension Recommender {
    /// Evaluates a snapshot, or the live model by default, on the snapshot's own test split (the ratings
    /// as they stood when it was trained: later re-ratings change neither its members nor their values),
    /// or on a test file.
    ///
    /// The live model has seen the ratings written since training (`rate`, `ingest --update`): test pairs
    /// among them are left out (and counted), and every later rating counts as known, excluded from ranking.
    ///
    /// Ranking metrics rank, for each test user, every item the user did not rate in training; a test
    /// item is relevant when its rating is at least `relevantThreshold`. `compareRankings` also ranks the
    /// same users by co-occurrence and by popularity (fitting the embedding costs a few passes over the
    /// training ratings).
    /// - Parameters:
    ///   - id: the snapshot; the live model when nil.
    ///   - testFile: a ratings file to test on instead of the snapshot's own split.
    ///   - k: the list length of the ranking metrics.
    ///   - relevantThreshold: the rating from which a test item counts as relevant.
    ///   - maxUsers: the most test users ranked (a seeded sample beyond it).
    ///   - seed: the sample's seed.
    ///   - compareRankings: whether to rank the same users by co-occurrence and popularity too.
    /// - Returns: RMSE, MAE, precision, recall, NDCG and coverage at k, and the comparisons asked for.
    /// - Throws: `MFRecError.noModel`, `.noTestSplit` (a snapshot trained on every rating, and no test file),
    ///   `.emptyTestSet`, `.input` for a bad test file; `StoreError` for an unknown or damaged snapshot.
    public func evaluate(
        snapshot id: Int? = nil, testFile: String? = nil, top k: Int = 10,
        relevantThreshold: Double = 4, maxUsers: Int = 5_000, seed: UInt64 = 7,
        compareRankings: Bool = false
    ) throws -> EvaluationReport {
        return try serialized {
            // One committed state: the model, its split and the ratings written since.
            let (info, model, isLive, stored, split, loaded, later, updates) = try store.read {
                let (info, model, isLive, stored) = try reader.modelOrLive(snapshot: id)
                let split: TestSplit = testFile.map { .file(path: $0) } ?? info.split ?? .none
                if case .none = split {
                    throw MFRecError.noTestSplit(snapshot: info.id)
                }
                let loaded = try loadSplit(split, maxSeq: info.splitAsOf)
                // A model that has seen ratings written after its training (the live one, a frozen one).
                let hasSeenLater = isLive || info.watermark > info.splitAsOf
                let later = hasSeenLater ? try store.ratingsWritten(after: info.splitAsOf) : []
                return (info, model, isLive, stored, split, loaded, later, isLive ? try store.liveModel().updates : 0)
            }
            var (train, test) = loaded
            var leftOut = 0
            if !later.isEmpty {
                // The live model has seen these: out of the test set, and known (current value) for ranking.
                func key(_ u: Int32, _ i: Int32) -> UInt64 {
                    UInt64(UInt32(bitPattern: u)) << 32 | UInt64(UInt32(bitPattern: i))
                }
                let seen = Set(later.map { key($0.user, $0.item) })
                func without(_ triples: RatingTriples, counting: Bool) -> RatingTriples {
                    var kept = RatingTriples()
                    for j in 0..<triples.count {
                        if seen.contains(key(triples.users[j], triples.items[j])) {
                            if counting { leftOut += 1 }
                        } else {
                            kept.append(user: triples.users[j], item: triples.items[j], rating: triples.ratings[j])
                        }
                    }
                    return kept
                }
                test = without(test, counting: true)
                train = without(train, counting: false)
                for r in later { train.append(user: r.user, item: r.item, rating: r.rating) }
            }
            guard test.count > 0 else { throw MFRecError.emptyTestSet }
            var seenUser = [Bool](repeating: false, count: model.userCount),
                seenItem = [Bool](repeating: false, count: model.itemCount)
            for u in train.users where Int(u) < model.userCount { seenUser[Int(u)] = true }
            for i in train.items where Int(i) < model.itemCount { seenItem[Int(i)] = true }
            let (errors, unseen) = Trainer.evaluate(model, on: test, seenUser: seenUser, seenItem: seenItem)

            // Ranking: per test user with a vector, rank the items not rated in training.
            var trainItems: [Int32: [Int32]] = [:]
            var relevant: [Int32: Set<Int32>] = [:]
            for j in 0..<test.count where Int(test.users[j]) < model.userCount && seenUser[Int(test.users[j])] {
                if Double(test.ratings[j]) >= relevantThreshold {
                    relevant[test.users[j], default: []].insert(test.items[j])
                }
            }
            var users = relevant.keys.sorted()
            if users.count > maxUsers {
                var rng = SeededGenerator(seed: seed)
                users.shuffle(using: &rng)
                users = Array(users.prefix(maxUsers)).sorted()
            }
            let wanted = Set(users)
            for j in 0..<train.count where wanted.contains(train.users[j]) {
                trainItems[train.users[j], default: []].append(train.items[j])
            }
            var accumulator = RankingAccumulator(k: k, itemCount: model.itemCount)
            let ranker = ModelRanker(model: model)
            for u in users {
                let excluded = (trainItems[u] ?? []).sorted()
                accumulator.add(
                    ranked: ranker.topN(user: Int(u), n: k, excluded: excluded).map(\.item), relevant: relevant[u] ?? []
                )
            }
            var defaultRanking: RankingMetrics?, rankingModelRanking: RankingMetrics?
            if let (rankingModel, choice) = stored, !users.isEmpty {
                // As `recommend` answers: the stored co-occurrence embedding and popular list, the same rule.
                let embedding = Result { try reader.cooccurrence() }
                let rankers = ListRankers(
                    ranking: rankingModel, choice: choice, embeddingSource: { try embedding.get() },
                    popular: try reader.popularItems(),
                    cooccurrenceBelow: QueryEngine.defaultCooccurrenceBelow)
                var trainRatings: [Int32: [(item: Int32, rating: Float)]] = [:]
                for j in 0..<train.count where wanted.contains(train.users[j]) {
                    trainRatings[train.users[j], default: []].append((train.items[j], train.ratings[j]))
                }
                /// A user's training items in time order (their stored ratings' order; see `Store.ratingsInTimeOrder`).
                func timeOrder(_ user: Int32, _ ratings: [(item: Int32, rating: Float)]) throws -> [Int32] {
                    let items = Set(ratings.map(\.item))
                    return try store.ratingsInTimeOrder(ofUser: user, maxSeq: .max).map(\.item).filter {
                        items.contains($0)
                    }
                }
                var byDefault = RankingAccumulator(k: k, itemCount: model.itemCount)
                var byRankingModel = RankingAccumulator(k: k, itemCount: model.itemCount)
                for u in users {
                    let ratings = trainRatings[u] ?? [], excluded = Set(ratings.map(\.item)).sorted()
                    let popularTop = try rankers.top(
                        .popular, popularityWeight: 0, ratings: [], n: k, excluded: excluded)!.map(\.item)
                    // The rating model's scores, only for lists that blend them in (as `recommend` computes them).
                    let blendsExplicit = rankers.blendsRatings(ratingCount: ratings.count, by: .ranking)
                    let blendsDefault = rankers.blendsRatings(ratingCount: ratings.count, by: nil)
                    let scores = blendsExplicit || blendsDefault ? model.itemScores(user: Int(u)) : nil
                    let explicit = rankers.explicitRule(.ranking)
                    let modelTop = try rankers.top(
                        .ranking, user: Int(u), popularityWeight: explicit.popularityWeight, ratings: ratings, n: k,
                        excluded: excluded, ratingScores: blendsExplicit ? scores : nil)?
                        .map(\.item)
                    byRankingModel.add(ranked: modelTop ?? popularTop, relevant: relevant[u] ?? [])
                    let rule = rankers.defaultRule(ratingCount: ratings.count, hasVector: true)
                    // A recency-weighted light list reads the user's training ratings in time order, as `recommend`.
                    let decay =
                        rule.ranker == .cooccurrence ? rankers.recencyDecay(ratingCount: ratings.count, by: nil) : 1
                    let recency = try decay < 1 ? (decay, timeOrder(u, ratings)) : nil
                    let top =
                        rule.ranker == .rating
                        ? ranker.topN(user: Int(u), n: k, excluded: excluded).map(\.item)
                        : try rankers.top(
                            rule.ranker, user: Int(u), popularityWeight: rule.popularityWeight, ratings: ratings, n: k,
                            excluded: excluded, ratingScores: blendsDefault ? scores : nil, recency: recency)?
                            .map(\.item)
                    byDefault.add(ranked: top ?? popularTop, relevant: relevant[u] ?? [])
                }
                defaultRanking = byDefault.result
                rankingModelRanking = byRankingModel.result
            }
            var cooccurrenceRanking: RankingMetrics?, popularRanking: RankingMetrics?
            if compareRankings && !users.isEmpty {
                // Users and items stored after the model was made have ids past its rows.
                let userSpan = max(model.userCount, (train.users.max().map { Int($0) } ?? -1) + 1)
                let itemSpan = max(model.itemCount, (train.items.max().map { Int($0) } ?? -1) + 1)
                let embedding = CooccurrenceEmbedding.fit(
                    users: train.users, items: train.items, userCount: userSpan, itemCount: itemSpan,
                    factors: CooccurrenceEmbedding.defaultFactors)
                let scale = Double(model.scaleMin)...Double(model.scaleMax)
                let popular = Recommender.rankPopular(
                    train: train, test: RatingTriples(), itemCount: itemSpan, scale: scale)
                var byCooccurrence = RankingAccumulator(k: k, itemCount: model.itemCount)
                var byPopularity = RankingAccumulator(k: k, itemCount: model.itemCount)
                for u in users {
                    let rated = trainItems[u] ?? [], excluded = Set(rated)
                    let top = embedding.topN(rated: rated, n: k, excluded: excluded) ?? []
                    byCooccurrence.add(ranked: top.map(\.item), relevant: relevant[u] ?? [])
                    byPopularity.add(
                        ranked: Array(popular.lazy.map(\.id).filter { !excluded.contains($0) }.prefix(k)),
                        relevant: relevant[u] ?? [])
                }
                cooccurrenceRanking = byCooccurrence.result
                popularRanking = byPopularity.result
            }
            let source: String
            switch split {
            case .file(let path): source = "test file \(path)"
            default: source = "the snapshot's test split (\(split.summary))"
            }
            return EvaluationReport(
                snapshotID: info.id, live: isLive, leftOutRatedAfterTraining: leftOut, updatesSinceSnapshot: updates,
                testSource: source,
                error: errors, unseenTestPairs: unseen,
                ranking: users.isEmpty ? nil : accumulator.result,
                defaultRanking: defaultRanking, rankingModelRanking: rankingModelRanking, rankingChoice: stored?.1,
                relevantThreshold: relevantThreshold,
                rankedUsers: users.count, cooccurrenceRanking: cooccurrenceRanking, popularRanking: popularRanking)
        }
    }
}
