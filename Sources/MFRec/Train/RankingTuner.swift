import Dispatch
import Foundation
import MFEngine

/// Which ranker answers a query.
public enum Ranker: String, Codable, Sendable, CaseIterable {
    /// The ranking model (see `RankingModel`).
    case ranking
    /// The rating model's largest predicted ratings.
    case rating
    /// The item co-occurrence embedding (see `CooccurrenceEmbedding`).
    case cooccurrence
    /// The popular list.
    case popular
}

/// What validation chose for the ranking model, stored with each snapshot.
public struct RankingChoice: Codable, Sendable, Equatable {
    /// The ranking model's settings (k, α, δ, filter, weighting).
    public var parameters: RankingModel.Parameters
    /// Blend of the ranking model with the popularity prior for everyone (0: none; see `RankingModel.topN`).
    public var popularityWeight: Float
    /// Blend of the ranking model's lists with the rating model's predicted ratings (nil or 0: none): lists rank
    /// by z(ranking score) + `popularityWeight` · z(popularity) + this · z(predicted rating), z over the items a
    /// user may get (see `RankingModel.topN`); for users the main rule answers and `--by ranking`, when the rating
    /// model has a vector for the user.
    public var ratingWeight: Float? = nil
    /// `ratingWeight`, 0 when none.
    public var ratingBlend: Float { max(ratingWeight ?? 0, 0) }
    /// Users with fewer ratings than this are answered by `lightRanker` (0: nobody), blended with the
    /// popularity prior by `lightPopularityWeight`.
    public var lightBelow: Int
    /// What ranks light users.
    public var lightRanker: Ranker
    /// The popularity blend weight for light users.
    public var lightPopularityWeight: Float
    /// When the light ranker is the co-occurrence embedding: the decay of its recency weighting, each rating
    /// counting `lightRecency` times the next newer one (see `CooccurrenceEmbedding.recencyWeights`); nil or 1:
    /// every rating alike. Chosen by the newcomer simulation (time order known).
    public var lightRecency: Float? = nil
    /// `lightRecency` for a co-occurrence light rule, 1 otherwise.
    public var lightDecay: Float {
        guard lightRanker == .cooccurrence, let decay = lightRecency, decay > 0, decay < 1 else { return 1 }
        return decay
    }
    /// NDCG@10 and P@10 on the validation carve-out of the chosen setting, and of the popular list and
    /// the co-occurrence embedding for the same users.
    public var validation: Figures?
    /// Every setting scored, in the order scored.
    public var grid: [Scored]
    /// The newcomer simulation that chose the light-user rule (nil: chosen on the carve-out's light users).
    public var newcomers: Newcomers?

    /// What the newcomer simulation measured (NDCG@10 on their later ratings).
    public struct Newcomers: Codable, Sendable, Equatable {
        /// Newcomers scored.
        public var users: Int
        /// Ratings of theirs known to the rankers.
        public var known: Int
        /// NDCG@10 of the ranking model for them.
        public var mainNDCG: Double
        /// NDCG@10 of the best light ranker.
        public var lightNDCG: Double
        /// NDCG@10 of the popular list.
        public var popularNDCG: Double
    }
    /// Whether the settings were chosen (false: `train --tune off`, fixed settings).
    public var tuned: Bool
    /// Wall-clock time of the tuning.
    public var seconds: Double

    /// Validation figures of the chosen settings (NDCG@10 and P@10 on the carve-out).
    public struct Figures: Codable, Sendable, Equatable {
        /// Validation users scored.
        public var users: Int
        /// NDCG@10 of the chosen ranking model.
        public var ndcg: Double
        /// Precision@10 of the chosen ranking model.
        public var precision: Double
        /// NDCG@10 of the popular list.
        public var popularNDCG: Double
        /// NDCG@10 of the co-occurrence embedding.
        public var cooccurrenceNDCG: Double
        /// With the light-user rule applied.
        public var defaultNDCG: Double
    }

    /// One setting of the grid and its validation figures.
    public struct Scored: Codable, Sendable, Equatable {
        /// The setting.
        public var parameters: RankingModel.Parameters
        /// Its NDCG@10.
        public var ndcg: Double
        /// Its precision@10.
        public var precision: Double
    }

    /// The ranker for a user with `ratingCount` ratings.
    /// - Parameter ratingCount: the user's stored ratings.
    /// - Returns: the light-user ranker below the chosen count, the ranking model from it on.
    public func ranker(forRatingCount ratingCount: Int) -> Ranker {
        ratingCount < lightBelow ? lightRanker : .ranking
    }

    /// The ranker and its popularity blend for a user with `ratingCount` ratings.
    /// - Parameter ratingCount: the user's stored ratings.
    /// - Returns: the ranker and the weight of its popularity blend.
    public func rule(forRatingCount ratingCount: Int) -> (ranker: Ranker, popularityWeight: Float) {
        ratingCount < lightBelow ? (lightRanker, lightPopularityWeight) : (.ranking, popularityWeight)
    }
}

/// Chooses the ranking model's settings and the light-user rule on a validation carve-out of the
/// training ratings (never the test set), by NDCG@10.
///
/// The carve-out is a seeded 20% of the training ratings (a hash of user and item, like the test split).
/// Relevant validation items are those rated in the top quarter of the scale (≥ 4 on 1–5). For each
/// (weighting, α) one spectrum is fitted at the largest k; every smaller k and every β is read off it.
public struct RankingTuner {
    /// Share of the training ratings carved out for validation.
    public var fraction = 0.2
    /// Validation users scored at most (a seeded sample).
    public var maxUsers = 2_000
    /// Seed of the carve-out, the sample and the fits.
    public var seed: UInt64 = 42
    /// Threads for fitting and scoring.
    public var threads = ProcessInfo.processInfo.activeProcessorCount
    /// No new (weighting, α) is started after half of these seconds when an implicit-ALS part is to be tried
    /// (all of them otherwise; the first family always runs), and no ALS fit runs past them (see
    /// `chooseALSBlend`).
    public var budgetSeconds = 180.0
    /// Polled between settings: when it answers true, `choose` throws `EngineError.cancelled`.
    public var isCancelled: (() -> Bool)?
    /// k candidates; 256 only for catalogs of at most 20,000 items (its fit and scan cost grow with the catalog).
    public var factorChoices = [32, 64, 128, 256]
    /// k above 128 is tried only up to this many items.
    public var largeFactorsUpToItems = 20_000
    /// (knee, β) of the spectral filter: λ^β for knee 0, (λ/(λ+λ_knee))^β otherwise.
    public var filterChoices: [(knee: Int, power: Double)] = [(0, 0.5), (0, 1), (1, 1), (2, 1), (3, 1)]
    /// (weighting, α, δ) families, each one spectrum; in the order tried (the budget cuts the last).
    /// Popularity blends tried for everyone, and for light users.
    public var popularityWeights: [Float] = [0, 0.25, 0.5, 1]
    /// Weights of the blend with the rating model's predicted ratings tried for everyone the main rule answers
    /// (see `RankingChoice.ratingWeight`; 0, no blend, is always a candidate).
    public var ratingWeights: [Float] = [0.1, 0.2, 0.3, 0.5]
    /// Popularity blend weights tried for light users.
    public var lightPopularityWeights: [Float] = [0, 0.5, 1, 2, 4, 8]
    /// Recency decays tried for a co-occurrence light rule in the newcomer simulation (1: none; see
    /// `RankingChoice.lightRecency`): half-lives of about 6, 3 and 2 ratings.
    public var lightRecencies: [Float] = [1, 0.9, 0.8, 0.7]
    /// (k, λ, α) of the implicit-ALS part tried for a blend with the chosen spectral model (see `ALSBlend`), in
    /// order, each one ALS fit on the carve-out while the time budget lasts; k above 128 only up to
    /// `largeFactorsUpToItems` items. Not tried with `folds` > 1.
    public var alsChoices: [(factors: Int, regularization: Double, alpha: Double)] = [
        (64, 30, 1), (128, 30, 1), (64, 10, 1), (128, 100, 1),
    ]
    /// Weights w of the ALS part tried for each fit (0, no ALS part, is always the candidate to beat).
    public var alsWeights: [Double] = [0.25, 0.5, 1]
    /// The (weighting, α, δ) families tried, each one eigen-decomposition.
    public var spectra: [(RankingModel.Weighting, Double, Double)] = [
        (.rating, 0.3, 0), (.rating, 0.3, 0.25), (.rating, 0.2, 0.25), (.rating, 0.5, 0), (.binary, 0.3, 0),
    ]

    /// The defaults README describes.
    public init() {}

    /// K > 1 (`train --folds K`): the settings of the ranking model (family, k, filter) are scored on K folds of
    /// the training ratings (each fold held out once, by a seeded hash of user and item) and chosen by their mean
    /// NDCG@10, instead of on one 20% carve-out, and so are the popularity blend and the light-user rule (every
    /// fold's validation users counting once; a newcomer simulation by time replaces it when the ratings have
    /// timestamps). Fitting takes about K times as long.
    public var folds = 1

    /// The validation carve-out of training ratings: (what models are fitted on, what they are scored on).
    /// With `folds` > 1, fold `fold` of K is held out.
    /// - Parameters:
    ///   - train: the training ratings.
    ///   - fold: which of the `folds` folds is held out.
    /// - Returns: the ratings models are fitted on, and those they are scored on.
    public func carve(_ train: RatingTriples, fold: Int = 0) -> (fit: RatingTriples, held: RatingTriples) {
        var fit = RatingTriples(), held = RatingTriples()
        for j in 0..<train.count {
            let isHeld =
                folds > 1
                ? Recommender.fold(user: train.users[j], item: train.items[j], folds: folds, seed: seed &+ 0x5EED)
                    == fold
                : TestSplit.isTest(user: train.users[j], item: train.items[j], fraction: fraction, seed: seed &+ 0x5EED)
            if isHeld {
                held.append(user: train.users[j], item: train.items[j], rating: train.ratings[j])
            } else {
                fit.append(user: train.users[j], item: train.items[j], rating: train.ratings[j])
            }
        }
        return (fit, held)
    }

    /// Ratings a newcomer is known by when the light-user rule is chosen (users with at most this many
    /// ratings get the light ranker when it wins).
    public var newcomerKnown = 10

    /// Chooses the ranking model's settings and the light-user rule on a validation carve-out.
    /// - Parameters:
    ///   - train: the training ratings (the carve-out comes out of them).
    ///   - userCount: users (every id below it).
    ///   - itemCount: items (every id below it).
    ///   - scale: the rating scale (its top quarter is relevant).
    ///   - newcomers: the newest users (by their first rating), each with their training ratings in time
    ///     order; when at least 30 have more than `newcomerKnown` ratings, the light-user rule is chosen by
    ///     simulating their arrival (their first `newcomerKnown` ratings known, the later ones held out and
    ///     left out of the models fitted for it). Otherwise it is chosen on the carve-out's users with few
    ///     ratings.
    ///   - ratingModel: fits a rating model to ratings, as `train` fits the kept one; given, the blend of the
    ///     ranking model with its predicted ratings is chosen too (see `ratingWeights`).
    ///   - progress: called with a line after each family of settings.
    /// - Returns: the choice, with its validation figures and the scored grid.
    /// - Throws: `EngineError.cancelled` when `isCancelled` answers true.
    public func choose(
        train: RatingTriples, userCount: Int, itemCount: Int, scale: ClosedRange<Double>,
        newcomers: [(user: Int32, ratings: [(item: Int32, rating: Float)])] = [],
        ratingModel: ((RatingTriples) throws -> FactorModel)? = nil,
        progress: ((String) -> Void)? = nil
    ) throws -> RankingChoice {
        let started = Date()
        let relevantAt = Float(Recommender.topQuarter(of: scale))
        /// A carve-out's fitting part, its scored users and their validation.
        func validation(fold: Int) -> (fit: RatingTriples, users: [Int32], evaluation: Validation) {
            let (fit, held) = carve(train, fold: fold)
            var relevant: [Int32: Set<Int32>] = [:]
            for j in 0..<held.count where held.ratings[j] >= relevantAt {
                relevant[held.users[j], default: []].insert(held.items[j])
            }
            var fitRatings: [Int32: [(item: Int32, rating: Float)]] = [:]
            for j in 0..<fit.count { fitRatings[fit.users[j], default: []].append((fit.items[j], fit.ratings[j])) }
            var users = relevant.keys.filter { fitRatings[$0] != nil }.sorted()
            if users.count > maxUsers {
                var rng = SeededGenerator(seed: seed)
                users.shuffle(using: &rng)
                users = Array(users.prefix(maxUsers)).sorted()
            }
            return (
                fit, users,
                Validation(
                    users: users, ratings: users.map { fitRatings[$0]! }, relevant: users.map { relevant[$0]! },
                    threads: threads)
            )
        }
        // Fold 0 is the carve-out (or the first of K folds); the others only score the grid below.
        let (fit, users, evaluation) = validation(fold: 0)
        let otherFolds = (1..<max(1, folds)).map { validation(fold: $0) }

        let allowed = factorChoices.filter { $0 <= 128 || itemCount <= largeFactorsUpToItems }
        let kmax = max(1, min(allowed.max() ?? 64, itemCount / 2))
        var factors = allowed.filter { $0 <= kmax }
        if factors.isEmpty { factors = [kmax] }
        // The spectral families leave half the budget to the ALS part, which needs the best of them.
        let spectralBudget = folds <= 1 && !alsChoices.isEmpty ? budgetSeconds / 2 : budgetSeconds
        var grid: [RankingChoice.Scored] = []
        var best: (scored: RankingChoice.Scored, perUser: [Double], model: RankingModel)?
        var bestOnOtherFolds: [RankingModel] = []  // the best setting fitted on folds 2…K
        for (index, (weighting, exponent, userExponent)) in spectra.enumerated() {
            if index > 0 && Date().timeIntervalSince(started) > spectralBudget { break }
            try EngineError.check(isCancelled)
            let spectra = ([fit] + otherFolds.map(\.fit)).map { part in
                Spectrum.fit(
                    users: part.users, items: part.items, ratings: part.ratings, userCount: userCount,
                    itemCount: itemCount, exponent: exponent, userExponent: userExponent, weighting: weighting,
                    ratingOffset: scale.lowerBound, factors: factors.max()!, seed: seed, threads: threads,
                    isCancelled: isCancelled)
            }
            try EngineError.check(isCancelled)
            for k in factors {
                for (knee, beta) in filterChoices {
                    try EngineError.check(isCancelled)
                    let parameters = RankingModel.Parameters(
                        factors: k, exponent: exponent, userExponent: userExponent, spectrumPower: beta, knee: knee,
                        weighting: weighting, ratingOffset: scale.lowerBound)
                    let model = spectra[0].model(parameters)
                    let perUser = try evaluation.scores(isCancelled) { ratings, excluded in
                        model.topN(ratings: ratings, n: 10, excluded: excluded)?.map(\.item) ?? []
                    }
                    // With folds, the figures are the mean over the folds (each fold's mean over its users).
                    var ndcg = mean(perUser.map(\.ndcg)), precision = mean(perUser.map(\.precision))
                    for (f, other) in otherFolds.enumerated() {
                        let foldModel = spectra[f + 1].model(parameters)
                        let scores = try other.evaluation.scores(isCancelled) { ratings, excluded in
                            foldModel.topN(ratings: ratings, n: 10, excluded: excluded)?.map(\.item) ?? []
                        }
                        ndcg += mean(scores.map(\.ndcg))
                        precision += mean(scores.map(\.precision))
                    }
                    let scored = RankingChoice.Scored(
                        parameters: model.parameters, ndcg: ndcg / Double(1 + otherFolds.count),
                        precision: precision / Double(1 + otherFolds.count))
                    grid.append(scored)
                    if best == nil || scored.ndcg > best!.scored.ndcg {
                        best = (scored, perUser.map(\.ndcg), model)
                        bestOnOtherFolds = otherFolds.indices.map { spectra[$0 + 1].model(parameters) }
                    }
                }
            }
            progress?(
                "\(weighting) weights, α \(exponent), δ \(userExponent): best so far NDCG@10 "
                    + "\(String(format: "%.4f", best!.scored.ndcg)) (\(best!.scored.parameters))"
            )
        }
        if folds <= 1, !alsChoices.isEmpty, let spectral = best {
            best = try chooseALSBlend(
                spectral: spectral, fit: fit, evaluation: evaluation, userCount: userCount, itemCount: itemCount,
                started: started, grid: &grid, progress: progress)
        }
        // The chosen model, with the popularity prior of the carve-out's training part.
        let chosenModel = best!.model.withPopularity(
            users: fit.users, items: fit.items, ratings: fit.ratings, relevantAt: relevantAt)
        // A blend with popularity for everyone.
        var main = (weight: Float(0), perUser: best!.perUser)
        // With folds, a blend is judged by its mean NDCG over all K folds (fold 1's users and the others').
        let onOtherFolds = bestOnOtherFolds.enumerated().map { f, model in
            model.withPopularity(
                users: otherFolds[f].fit.users, items: otherFolds[f].fit.items, ratings: otherFolds[f].fit.ratings,
                relevantAt: relevantAt)
        }
        func otherFoldsNDCG(_ weight: Float) throws -> Double {
            var total = 0.0
            for (f, other) in otherFolds.enumerated() {
                total += mean(
                    try other.evaluation.scores(isCancelled) { ratings, excluded in
                        onOtherFolds[f].topN(ratings: ratings, n: 10, excluded: excluded, popularityWeight: weight)?
                            .map(\.item) ?? []
                    }.map(\.ndcg))
            }
            return total
        }
        var mainScore = otherFolds.isEmpty ? 0 : mean(main.perUser) + (try otherFoldsNDCG(0))
        for weight in popularityWeights where weight > 0 {
            try EngineError.check(isCancelled)
            let perUser = try evaluation.scores(isCancelled) { ratings, excluded in
                chosenModel.topN(ratings: ratings, n: 10, excluded: excluded, popularityWeight: weight)?.map(\.item)
                    ?? []
            }.map(\.ndcg)
            if otherFolds.isEmpty {
                if perUser.reduce(0, +) > main.perUser.reduce(0, +) + 1e-9 { main = (weight, perUser) }
            } else {
                let score = mean(perUser) + (try otherFoldsNDCG(weight))
                if score > mainScore + 1e-9 { (main, mainScore) = ((weight, perUser), score) }
            }
        }
        // A blend with the rating model's predicted ratings, fitted on the carve-out's training part with the
        // rating model's settings (fold 0 only, with or without folds).
        var ratingWeight: Float = 0
        if let ratingModel, ratingWeights.contains(where: { $0 > 0 }) {
            try EngineError.check(isCancelled)
            let rating = try ratingModel(fit)
            try EngineError.check(isCancelled)
            let withoutBlend = mean(main.perUser), unblended = main.perUser
            let popularityWeight = main.weight
            for weight in ratingWeights where weight > 0 {
                try EngineError.check(isCancelled)
                let perUser = try evaluation.scores(isCancelled) { user, ratings, excluded in
                    chosenModel.topN(
                        ratings: ratings, n: 10, excluded: excluded, popularityWeight: popularityWeight,
                        ratingScores: rating.itemScores(user: Int(user)), ratingWeight: weight)?.map(\.item) ?? []
                }.map(\.ndcg)
                if perUser.reduce(0, +) > main.perUser.reduce(0, +) + 1e-9 {
                    main.perUser = perUser
                    ratingWeight = weight
                }
            }
            // The blend is kept only when its gain is at least one standard error of the per-user differences
            // (on ML-100K the gains were 0.0005–0.002 NDCG@10 and changed sign from one weight to the next, so
            // the best of four weights is often noise: the one-standard-error rule keeps the simpler list then).
            let gain = Self.pairedGain(main.perUser, over: unblended)
            if ratingWeight > 0 && gain.mean < gain.standardError {
                progress?(
                    "blend with the rating model's predictions: none (the best, weight \(ratingWeight), gained "
                        + String(format: "%.4f", gain.mean) + " NDCG@10, less than one standard error, "
                        + String(format: "%.4f", gain.standardError) + ")")
                main.perUser = unblended
                ratingWeight = 0
            } else {
                progress?(
                    "blend with the rating model's predictions: "
                        + (ratingWeight > 0
                            ? "weight \(ratingWeight), NDCG@10 \(String(format: "%.4f", mean(main.perUser))) against "
                                + String(format: "%.4f", withoutBlend) + " without (standard error of the gain "
                                + String(format: "%.4f", gain.standardError) + ")"
                            : "none (no weight of \(ratingWeights.filter { $0 > 0 }) beat "
                                + String(format: "%.4f", withoutBlend) + ")"))
            }
        }
        let chosen = (scored: best!.scored, perUser: main.perUser)

        // The light-user rule: the alternatives for the same users.
        try EngineError.check(isCancelled)
        let onFoldZero = try lightAlternatives(
            fit: fit, evaluation: evaluation, model: chosenModel, mainPerUser: chosen.perUser, userCount: userCount,
            itemCount: itemCount, scale: scale)
        var lightBelow = 0
        var lightRule = (ranker: Ranker.cooccurrence, weight: Float(0))
        var lightRecency: Float = 1
        var defaultNDCG = mean(chosen.perUser)
        var newcomerFigures: RankingChoice.Newcomers?
        try EngineError.check(isCancelled)
        if let simulated = try simulateNewcomers(
            newcomers, train: train, parameters: chosenModel.parameters, userCount: userCount,
            itemCount: itemCount, scale: scale, relevantAt: relevantAt)
        {
            // The simulation measured users with `newcomerKnown` ratings: the rule covers them and lighter users.
            lightBelow = simulated.best.ndcg > simulated.main + 1e-9 ? newcomerKnown + 1 : 0
            lightRule = (simulated.best.ranker, simulated.best.weight)
            lightRecency = simulated.best.decay
            newcomerFigures = .init(
                users: simulated.users, known: newcomerKnown, mainNDCG: simulated.main,
                lightNDCG: simulated.best.ndcg, popularNDCG: simulated.popular)
            progress?(
                "newcomers (\(simulated.users) newest users, \(newcomerKnown) ratings known): ranking model NDCG@10 "
                    + String(format: "%.4f", simulated.main) + ", best light ranker \(simulated.best.ranker.rawValue) "
                    + "(popularity weight \(simulated.best.weight)"
                    + (simulated.best.decay < 1 ? ", recency decay \(simulated.best.decay)" : "") + ") "
                    + String(format: "%.4f", simulated.best.ndcg)
                    + ", popular " + String(format: "%.4f", simulated.popular))
        } else {
            // No newcomers to simulate: the rule is chosen on the carve-out's users with few ratings, or (with
            // folds) on every fold's, each user of every fold counting once.
            var perFold = [onFoldZero]
            let mainWeight = main.weight
            for (f, other) in otherFolds.enumerated() {
                try EngineError.check(isCancelled)
                let mainPerUser = try other.evaluation.scores(isCancelled) { ratings, excluded in
                    onOtherFolds[f].topN(ratings: ratings, n: 10, excluded: excluded, popularityWeight: mainWeight)?
                        .map(\.item) ?? []
                }.map(\.ndcg)
                perFold.append(
                    try lightAlternatives(
                        fit: other.fit, evaluation: other.evaluation, model: onOtherFolds[f], mainPerUser: mainPerUser,
                        userCount: userCount, itemCount: itemCount, scale: scale))
            }
            let rule = Self.lightRule(perFold)
            // Counts here are of the carve-out's 80%: the rule applies to all of a user's ratings.
            lightBelow = rule.below == 0 ? 0 : Int((Double(rule.below) / (1 - fraction)).rounded())
            lightRule = (rule.ranker, rule.weight)
            defaultNDCG = rule.meanNDCG
        }
        let n = Double(max(users.count, 1))
        let figures = RankingChoice.Figures(
            users: users.count, ndcg: chosen.scored.ndcg, precision: chosen.scored.precision,
            popularNDCG: onFoldZero.byPopularity.reduce(0, +) / n,
            cooccurrenceNDCG: onFoldZero.byCooccurrence.reduce(0, +) / n, defaultNDCG: defaultNDCG)
        return RankingChoice(
            parameters: chosen.scored.parameters, popularityWeight: main.weight,
            ratingWeight: ratingWeight > 0 ? ratingWeight : nil, lightBelow: lightBelow,
            lightRanker: lightRule.ranker, lightPopularityWeight: lightRule.weight,
            lightRecency: lightRecency < 1 ? lightRecency : nil, validation: figures, grid: grid,
            newcomers: newcomerFigures, tuned: true,
            seconds: Date().timeIntervalSince(started))
    }

    /// One fold's light-user alternatives, each scored per validation user: co-occurrence, popular, and the
    /// ranking model and co-occurrence blended with popularity (these only for users with under 40 ratings).
    struct LightAlternatives {
        /// Each validation user's rating count in the fold's fitting part.
        var counts: [Int]
        /// The chosen model's per-user NDCG@10 (with the chosen popularity blend).
        var mainPerUser: [Double]
        /// Per-user NDCG@10 of the co-occurrence embedding and of the popular list.
        var byCooccurrence: [Double], byPopularity: [Double]
        /// Every alternative in a fixed order (the same on every fold).
        var alternatives: [(ranker: Ranker, weight: Float, perUser: [Double])]
    }

    func lightAlternatives(
        fit: RatingTriples, evaluation: Validation, model: RankingModel, mainPerUser: [Double],
        userCount: Int, itemCount: Int, scale: ClosedRange<Double>
    ) throws -> LightAlternatives {
        let embedding = CooccurrenceEmbedding.fit(
            users: fit.users, items: fit.items, userCount: userCount, itemCount: itemCount,
            seed: seed, threads: threads, isCancelled: isCancelled)
        try EngineError.check(isCancelled)
        let popular = Recommender.rankPopular(train: fit, test: RatingTriples(), itemCount: itemCount, scale: scale)
            .map(\.id)
        let byCooccurrence = try evaluation.scores(isCancelled) { ratings, excluded in
            embedding.topN(rated: ratings.map(\.item), n: 10, excluded: excluded)?.map(\.item) ?? []
        }.map(\.ndcg)
        let byPopularity = try evaluation.scores(isCancelled) { _, excluded in
            Array(popular.lazy.filter { !excluded.contains($0) }.prefix(10))
        }.map(\.ndcg)
        let counts = evaluation.ratings.map(\.count)
        // Light users are few: score the blended alternatives only for them.
        let light = Set(counts.indices.filter { counts[$0] < 40 })
        var alternatives: [(ranker: Ranker, weight: Float, perUser: [Double])] = [
            (.cooccurrence, 0, byCooccurrence), (.popular, 0, byPopularity),
        ]
        for weight in lightPopularityWeights {
            try EngineError.check(isCancelled)
            alternatives.append(
                (
                    .ranking, weight,
                    try evaluation.scores(isCancelled, only: light) { ratings, excluded in
                        model.topN(ratings: ratings, n: 10, excluded: excluded, popularityWeight: weight)?.map(
                            \.item) ?? []
                    }.map(\.ndcg)
                ))
            if weight > 0 {
                alternatives.append(
                    (
                        .cooccurrence, weight,
                        try evaluation.scores(isCancelled, only: light) { ratings, excluded in
                            embedding.topN(
                                rated: ratings.map(\.item), n: 10, excluded: excluded, prior: model.popularity,
                                weight: weight)?
                                .map(\.item) ?? []
                        }.map(\.ndcg)
                    ))
            }
        }
        return LightAlternatives(
            counts: counts, mainPerUser: mainPerUser, byCooccurrence: byCooccurrence, byPopularity: byPopularity,
            alternatives: alternatives)
    }

    /// The chosen spectral model, or it blended with an implicit-ALS part (`ALSBlend`) when one of `alsChoices` ×
    /// `alsWeights` ranks the carve-out better by at least one standard error of the per-user gains (the rule the
    /// rating-model blend follows). Each (k, λ, α) is one ALS fit on the carve-out's training part, started only
    /// while the time budget lasts; a fit is stopped after the first sweep whose pace says the rest would end past
    /// the budget, and not used (on large data the budget, not a size limit, decides whether the ALS part is
    /// tried). Every scored blend goes into `grid`.
    func chooseALSBlend(
        spectral: (scored: RankingChoice.Scored, perUser: [Double], model: RankingModel), fit: RatingTriples,
        evaluation: Validation, userCount: Int, itemCount: Int, started: Date, grid: inout [RankingChoice.Scored],
        progress: ((String) -> Void)?
    ) throws -> (scored: RankingChoice.Scored, perUser: [Double], model: RankingModel) {
        var best = spectral
        let deadline = started.addingTimeInterval(budgetSeconds)
        for choice in alsChoices where choice.factors <= 128 || itemCount <= largeFactorsUpToItems {
            guard Date() <= deadline else {
                progress?(
                    "spectral + implicit ALS (k \(choice.factors), λ \(choice.regularization), α \(choice.alpha)) and "
                        + "later: not tried, the time budget (\(Int(budgetSeconds)) s) is spent")
                break
            }
            try EngineError.check(isCancelled)
            let fitStarted = Date()
            // Polled before each sweep: stops at the deadline, or as soon as the sweeps done so far say the rest
            // would end past it (so a fit that cannot finish costs one sweep, not the rest of the budget).
            var polls = 0
            let pastDeadline = { () -> Bool in
                polls += 1
                let now = Date()
                guard polls > 1 else { return now > deadline }
                let perSweep = now.timeIntervalSince(fitStarted) / Double(polls - 1)
                let left = Double(ALSBlend.defaultIterations - (polls - 1)) + 0.5
                return now.addingTimeInterval(perSweep * left) > deadline
            }
            let fitted = ImplicitALSFit.fit(
                users: fit.users, items: fit.items, ratings: fit.ratings, userCount: userCount, itemCount: itemCount,
                ratingOffset: spectral.model.parameters.ratingOffset, factors: choice.factors,
                regularization: choice.regularization, alpha: choice.alpha, seed: seed, threads: threads,
                isCancelled: { self.isCancelled?() == true || pastDeadline() })
            try EngineError.check(isCancelled)
            guard fitted.sweeps == ALSBlend.defaultIterations else {
                progress?(
                    "spectral + implicit ALS (k \(choice.factors), λ \(choice.regularization), α \(choice.alpha)): "
                        + "stopped after \(fitted.sweeps) of \(ALSBlend.defaultIterations) sweeps, which would end past the "
                        + "time budget (\(Int(budgetSeconds)) s; "
                        + String(format: "%.1f", Date().timeIntervalSince(fitStarted)) + " s spent), not used")
                break
            }
            for weight in alsWeights where weight > 0 {
                try EngineError.check(isCancelled)
                let model = spectral.model.withALS(
                    ALSBlend(
                        factors: choice.factors, alpha: choice.alpha, regularization: choice.regularization,
                        weight: weight),
                    fitted: fitted, users: fit.users, items: fit.items, ratings: fit.ratings, userCount: userCount)
                let scores = try evaluation.scores(isCancelled) { user, ratings, excluded in
                    model.topN(user: Int(user), ratings: ratings, n: 10, excluded: excluded)?.map(\.item) ?? []
                }
                let perUser = scores.map(\.ndcg)
                let scored = RankingChoice.Scored(
                    parameters: model.parameters, ndcg: mean(perUser), precision: mean(scores.map(\.precision)))
                grid.append(scored)
                if scored.ndcg > best.scored.ndcg + 1e-9 { best = (scored, perUser, model) }
            }
            progress?(
                "spectral + implicit ALS (k \(choice.factors), λ \(choice.regularization), α \(choice.alpha)): best so far "
                    + "NDCG@10 \(String(format: "%.4f", best.scored.ndcg))")
        }
        guard best.model.parameters.alsBlend != nil else { return spectral }
        let gain = Self.pairedGain(best.perUser, over: spectral.perUser)
        guard gain.mean >= gain.standardError else {
            progress?(
                "spectral + implicit ALS: none (the best, \(best.model.parameters.alsBlend!), gained "
                    + String(format: "%.4f", gain.mean) + " NDCG@10, less than one standard error, "
                    + String(format: "%.4f", gain.standardError) + ")")
            return spectral
        }
        progress?(
            "spectral + implicit ALS: \(best.model.parameters.alsBlend!), NDCG@10 "
                + String(format: "%.4f", best.scored.ndcg) + " against " + String(format: "%.4f", spectral.scored.ndcg)
                + " without (standard error of the gain " + String(format: "%.4f", gain.standardError) + ")")
        return best
    }

    /// The light-user rule with the largest NDCG@10 summed over every fold's validation users: users with
    /// fewer than `below` ratings (0: nobody) get the alternative, the others the main ranker.
    static func lightRule(_ folds: [LightAlternatives]) -> (
        below: Int, ranker: Ranker, weight: Float, meanNDCG: Double
    ) {
        let users = Double(max(1, folds.reduce(0) { $0 + $1.counts.count }))
        var rule = (
            below: 0, ranker: Ranker.cooccurrence, weight: Float(0),
            total: folds.reduce(0.0) { $0 + $1.mainPerUser.reduce(0, +) }
        )
        for threshold in [5, 10, 20, 40] {
            for a in folds[0].alternatives.indices {
                var total = 0.0
                for fold in folds {
                    let alternative = fold.alternatives[a].perUser
                    for u in 0..<fold.counts.count {
                        total += fold.counts[u] < threshold ? alternative[u] : fold.mainPerUser[u]
                    }
                }
                if total > rule.total + 1e-9 {
                    rule = (threshold, folds[0].alternatives[a].ranker, folds[0].alternatives[a].weight, total)
                }
            }
        }
        return (rule.below, rule.ranker, rule.weight, rule.total / users)
    }

    /// The mean of the per-user differences a − b and its standard error (sd / √n).
    static func pairedGain(_ a: [Double], over b: [Double]) -> (mean: Double, standardError: Double) {
        let d = zip(a, b).map { $0 - $1 }
        guard d.count > 1 else { return (d.first ?? 0, .infinity) }
        let m = d.reduce(0, +) / Double(d.count)
        let variance = d.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(d.count - 1)
        return (m, (variance / Double(d.count)).squareRoot())
    }

    private func mean(_ values: [Double]) -> Double { values.isEmpty ? 0 : values.reduce(0, +) / Double(values.count) }

    /// Newcomers' first `newcomerKnown` ratings known, their later ones (top quarter of the scale) relevant;
    /// the models are refitted without those later ratings. Returns the ranking model's NDCG@10 for them,
    /// the best light alternative's, and the popular list's; nil when there are too few newcomers.
    func simulateNewcomers(
        _ newcomers: [(user: Int32, ratings: [(item: Int32, rating: Float)])], train: RatingTriples,
        parameters: RankingModel.Parameters, userCount: Int, itemCount: Int, scale: ClosedRange<Double>,
        relevantAt: Float
    ) throws
        -> (
            users: Int, main: Double, best: (ranker: Ranker, weight: Float, decay: Float, ndcg: Double),
            popular: Double
        )?
    {
        let eligible = newcomers.filter { $0.ratings.count > newcomerKnown }
        guard eligible.count >= 30 else { return nil }
        var later = Set<Int64>()
        var known: [[(item: Int32, rating: Float)]] = [], relevant: [Set<Int32>] = [], users: [Int32] = []
        for n in eligible {
            let held = n.ratings.dropFirst(newcomerKnown)
            for r in held { later.insert(Int64(n.user) << 32 | Int64(r.item)) }
            let liked = Set(held.filter { $0.rating >= relevantAt }.map(\.item))
            guard !liked.isEmpty else { continue }
            users.append(n.user)
            known.append(Array(n.ratings.prefix(newcomerKnown)))
            relevant.append(liked)
        }
        guard users.count >= 30 else { return nil }
        var fit = RatingTriples()
        for j in 0..<train.count where !later.contains(Int64(train.users[j]) << 32 | Int64(train.items[j])) {
            fit.append(user: train.users[j], item: train.items[j], rating: train.ratings[j])
        }
        let model = RankingModel.fit(
            users: fit.users, items: fit.items, ratings: fit.ratings, userCount: userCount, itemCount: itemCount,
            parameters: parameters, seed: seed, threads: threads, isCancelled: isCancelled
        )
        .withPopularity(users: fit.users, items: fit.items, ratings: fit.ratings, relevantAt: relevantAt)
        let embedding = CooccurrenceEmbedding.fit(
            users: fit.users, items: fit.items, userCount: userCount, itemCount: itemCount,
            seed: seed, threads: threads, isCancelled: isCancelled)
        try EngineError.check(isCancelled)
        let popular = Recommender.rankPopular(train: fit, test: RatingTriples(), itemCount: itemCount, scale: scale)
            .map(\.id)
        let evaluation = Validation(users: users, ratings: known, relevant: relevant, threads: threads)
        func ndcg(_ rank: @escaping @Sendable ([(item: Int32, rating: Float)], Set<Int32>) -> [Int32]) throws -> Double
        {
            mean(try evaluation.scores(isCancelled, rank).map(\.ndcg))
        }
        try EngineError.check(isCancelled)
        let main = try ndcg { r, e in model.topN(ratings: r, n: 10, excluded: e)?.map(\.item) ?? [] }
        let popularNDCG = try ndcg { _, e in Array(popular.lazy.filter { !e.contains($0) }.prefix(10)) }
        var best = (ranker: Ranker.popular, weight: Float(0), decay: Float(1), ndcg: popularNDCG)
        // The known ratings are in time order, oldest first, as a stored user's are when a list is asked for.
        let decays = [Float(1)] + lightRecencies.filter { $0 > 0 && $0 < 1 }
        for weight in lightPopularityWeights {
            try EngineError.check(isCancelled)
            let byRanking = try ndcg { r, e in
                model.topN(ratings: r, n: 10, excluded: e, popularityWeight: weight)?.map(\.item) ?? []
            }
            if byRanking > best.ndcg + 1e-9 { best = (.ranking, weight, 1, byRanking) }
            for decay in decays {
                try EngineError.check(isCancelled)
                let byCooccurrence = try ndcg { r, e in
                    embedding.topN(
                        rated: r.map(\.item), n: 10, excluded: e, prior: model.popularity, weight: weight,
                        ratedWeights: decay < 1
                            ? CooccurrenceEmbedding.recencyWeights(count: r.count, decay: decay) : nil
                    )?.map(\.item) ?? []
                }
                if byCooccurrence > best.ndcg + 1e-9 { best = (.cooccurrence, weight, decay, byCooccurrence) }
            }
        }
        return (users.count, main, best, popularNDCG)
    }
}

/// Per-user NDCG@10 and precision@10 of a ranker on the validation users, over `threads` threads.
struct Validation: Sendable {
    let users: [Int32]
    let ratings: [[(item: Int32, rating: Float)]]
    let relevant: [Set<Int32>]
    let threads: Int

    /// Per-user metrics; users outside `only` (when given) score 0 without being ranked. `isCancelled` is
    /// polled between blocks of users, so a cancelled training stops within one block, not one pass.
    /// - Throws: `EngineError.cancelled` when `isCancelled` answers true.
    func scores(
        _ isCancelled: (() -> Bool)?, only: Set<Int>? = nil,
        _ rank: @escaping @Sendable ([(item: Int32, rating: Float)], Set<Int32>) -> [Int32]
    ) throws -> [(ndcg: Double, precision: Double)] {
        try scores(isCancelled, only: only) { _, ratings, excluded in rank(ratings, excluded) }
    }

    /// `scores(_:only:_:)` with a ranker that is also told the user's id.
    func scores(
        _ isCancelled: (() -> Bool)?, only: Set<Int>? = nil,
        _ rank: @escaping @Sendable (Int32, [(item: Int32, rating: Float)], Set<Int32>) -> [Int32]
    ) throws -> [(ndcg: Double, precision: Double)] {
        let out = ThreadSlots<(ndcg: Double, precision: Double)>(count: users.count)
        let parts = max(1, min(threads, users.count))
        let block = 256
        for start in stride(from: 0, to: users.count, by: block) {
            try EngineError.check(isCancelled)
            let end = min(users.count, start + block)
            DispatchQueue.concurrentPerform(iterations: parts) { part in
                var u = start + part
                while u < end {
                    if let only, !only.contains(u) {
                        u += parts
                        continue
                    }
                    let excluded = Set(ratings[u].map(\.item))
                    out.set(
                        u,
                        Validation.metrics(ranked: rank(users[u], ratings[u], excluded), relevant: relevant[u], k: 10))
                    u += parts
                }
            }
        }
        return (0..<out.count).map { out.value($0) ?? (0, 0) }  // users left out by `only` score 0
    }

    static func metrics(ranked: [Int32], relevant: Set<Int32>, k: Int) -> (ndcg: Double, precision: Double) {
        var dcg = 0.0, found = 0
        for (rank, item) in ranked.prefix(k).enumerated() where relevant.contains(item) {
            dcg += 1 / log2(Double(rank) + 2)
            found += 1
        }
        let ideal = (0..<min(relevant.count, k)).reduce(0.0) { $0 + 1 / log2(Double($1) + 2) }
        return (ideal > 0 ? dcg / ideal : 0, Double(found) / Double(k))
    }
}
