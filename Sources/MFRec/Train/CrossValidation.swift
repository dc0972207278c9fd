import Foundation
import MFEngine
import MFStore

/// One fold's figures, and the mean and standard deviation over the folds (`crossValidate`).
public struct CrossValidationReport: Sendable, Codable {
    /// One fold's test figures.
    public struct Fold: Sendable, Codable {
        /// Ratings trained on, and held out.
        public var trainRatings: Int, testRatings: Int
        /// The rating model's error on the held-out ratings.
        public var error: ErrorMetrics
        /// The ranking model's top-10 metrics (relevant = held-out ratings in the top quarter of the scale),
        /// nil without a ranking model.
        public var ranking: RankingMetrics?
    }

    /// Mean and (sample) standard deviation of one figure over the folds.
    public struct Spread: Sendable, Codable {
        /// The mean.
        public var mean: Double
        /// The standard deviation (n − 1 in the denominator; 0 for one fold).
        public var sd: Double

        init(_ values: [Double]) {
            mean = values.reduce(0, +) / Double(max(values.count, 1))
            let m = mean
            sd =
                values.count > 1
                ? (values.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(values.count - 1)).squareRoot() : 0
        }
    }

    /// The folds, in order.
    public var folds: [Fold]
    /// RMSE, MAE over the folds.
    public var rmse: Spread, mae: Spread
    /// Precision@10 and NDCG@10 of the ranking model over the folds (nil without one).
    public var precision: Spread?, ndcg: Spread?
    /// The seed of the fold assignment.
    public var seed: UInt64
    /// Wall-clock time.
    public var seconds: Double
}

extension Recommender {
    /// K-fold cross-validation, as Surprise's `cross_validate` does: the stored ratings are split into
    /// `folds` parts by a seeded hash of (user, item) (each rating in exactly one part, independent of
    /// their order); for each part, a rating model (and, unless `request.rankingModel` is false, a ranking
    /// model) is trained on the others with `request`'s settings — fixed, not tuned: tuning inside every fold
    /// would cost K tunings — and scored on it. Nothing is stored: the live model and the snapshots stay as
    /// they were. Deterministic for a seed (`request.options.seed`).
    /// - Parameters:
    ///   - folds: K (2…20).
    ///   - request: the training settings (k, epochs, learning rate, regularization, ranking parameters).
    ///   - maxUsers: users scored for the ranking metrics per fold at most (a seeded sample).
    ///   - progress: called after each fold with its index and figures.
    ///   - isCancelled: polled between epochs and folds.
    /// - Returns: every fold's figures, and their means and standard deviations.
    /// - Throws: `EngineError`, `StoreError`.
    public func crossValidate(
        folds: Int, request: TrainRequest = TrainRequest(), maxUsers: Int = 2_000,
        progress: ((Int, CrossValidationReport.Fold) -> Void)? = nil, isCancelled: (() -> Bool)? = nil
    ) throws -> CrossValidationReport {
        return try serialized {
            guard (2...20).contains(folds) else { throw EngineError.invalid("--folds must be 2…20 (got \(folds))") }
            let started = Date()
            let watermark = try store.maxSequence()
            guard let scale = try store.ratingScale(), watermark > 0 else { throw EngineError.noTrainingRatings }
            let userCount = try store.userCount(), itemCount = try store.itemCount()
            let (all, _) = try loadSplit(.none, maxSeq: watermark)
            let seed = request.options.seed
            let part = (0..<all.count).map {
                Self.fold(user: all.users[$0], item: all.items[$0], folds: folds, seed: seed)
            }
            let relevantAt = Float(Recommender.topQuarter(of: scale))
            var out: [CrossValidationReport.Fold] = []
            for f in 0..<folds {
                try EngineError.check(isCancelled)
                var train = RatingTriples(), test = RatingTriples()
                for j in 0..<all.count {
                    if part[j] == f {
                        test.append(user: all.users[j], item: all.items[j], rating: all.ratings[j])
                    } else {
                        train.append(user: all.users[j], item: all.items[j], rating: all.ratings[j])
                    }
                }
                let result = try Trainer.train(
                    train: train, test: test, userCount: userCount, itemCount: itemCount,
                    scale: Float(scale.lowerBound)...Float(scale.upperBound), options: request.options,
                    isCancelled: isCancelled)
                var ranking: RankingMetrics?
                if request.rankingModel {
                    var fixed = request
                    fixed.tune = false
                    let (model, choice) = try fitRanking(
                        fixed, train: train, userCount: userCount, itemCount: itemCount, scale: scale, newcomers: [],
                        progress: nil, isCancelled: isCancelled)
                    ranking = Self.rankingMetrics(
                        model, train: train, test: test, relevantAt: relevantAt, itemCount: itemCount,
                        maxUsers: maxUsers, seed: seed,
                        blend: choice.ratingBlend > 0 ? (result.model, choice.ratingBlend) : nil)
                }
                let fold = CrossValidationReport.Fold(
                    trainRatings: train.count, testRatings: test.count,
                    error: result.final ?? ErrorMetrics(count: 0, mae: .nan, mse: .nan), ranking: ranking)
                progress?(f, fold)
                out.append(fold)
            }
            let rankings = out.compactMap(\.ranking)
            return CrossValidationReport(
                folds: out, rmse: .init(out.map(\.error.rmse)), mae: .init(out.map(\.error.mae)),
                precision: rankings.count == out.count ? .init(rankings.map(\.precision)) : nil,
                ndcg: rankings.count == out.count ? .init(rankings.map(\.ndcg)) : nil, seed: seed,
                seconds: Date().timeIntervalSince(started))
        }
    }

    /// The fold of a rating: a seeded hash of (user, item), uniform over 0..<folds.
    static func fold(user: Int32, item: Int32, folds: Int, seed: UInt64) -> Int {
        var x =
            (seed ^ 0x5851_F42D_4C95_7F2D)
            &+ (UInt64(UInt32(bitPattern: user)) << 32 | UInt64(UInt32(bitPattern: item))) &* 0x9E37_79B9_7F4A_7C15
        x = (x ^ (x >> 30)) &* 0xBF58_476D_1CE4_E5B9
        x = (x ^ (x >> 27)) &* 0x94D0_49BB_1331_11EB
        x ^= x >> 31
        return Int((x >> 11) % UInt64(folds))
    }

    /// Top-10 metrics of the ranking model on one fold: each sampled user with a relevant held-out rating,
    /// ranked from their training ratings over every item they did not train on.
    static func rankingMetrics(
        _ model: RankingModel, train: RatingTriples, test: RatingTriples, relevantAt: Float, itemCount: Int,
        maxUsers: Int, seed: UInt64, blend: (rating: FactorModel, weight: Float)? = nil
    ) -> RankingMetrics {
        var relevant: [Int32: Set<Int32>] = [:]
        for j in 0..<test.count where test.ratings[j] >= relevantAt {
            relevant[test.users[j], default: []].insert(test.items[j])
        }
        var users = relevant.keys.sorted()
        if users.count > maxUsers {
            var random = SeededGenerator(seed: seed)
            users.shuffle(using: &random)
            users = users.prefix(maxUsers).sorted()
        }
        let wanted = Set(users)
        var rated: [Int32: [(item: Int32, rating: Float)]] = [:]
        for j in 0..<train.count where wanted.contains(train.users[j]) {
            rated[train.users[j], default: []].append((train.items[j], train.ratings[j]))
        }
        var accumulator = RankingAccumulator(k: 10, itemCount: itemCount)
        for u in users {
            let ratings = rated[u] ?? []
            // With a blend, the fold's rating model's predictions for the user (when it has a vector for them).
            let scores = blend.flatMap { $0.rating.itemScores(user: Int(u)) }
            let top =
                model.topN(
                    ratings: ratings, n: 10, excluded: Set(ratings.map(\.item)), ratingScores: scores,
                    ratingWeight: blend?.weight ?? 0)?.map(\.item) ?? []
            accumulator.add(ranked: top, relevant: relevant[u] ?? [])
        }
        return accumulator.result
    }
}
