import Foundation
import MFEngine
import MFStore

/// What to train.
public struct TrainRequest: Sendable {
    /// The rating model's hyperparameters.
    public var options = TrainingOptions()
    /// Several values of k run one after another; the best by test RMSE is kept.
    public var factorList: [Int]?
    /// Share of the ratings held out for testing (0 trains on everything).
    public var testFraction = 0.2
    /// Test on this file's ratings instead of a random split (training then uses every stored rating).
    public var testFile: String?
    /// A note stored with the snapshot.
    public var note: String?
    /// Factors of the item co-occurrence embedding that ranks items for users with few ratings
    /// (see `CooccurrenceEmbedding`); 0 fits none and removes the stored one (those users then get the
    /// rating model, or the popular list when they have no vector).
    public var cooccurrenceFactors = CooccurrenceEmbedding.defaultFactors
    /// The exponent α of the co-occurrence normalization (d_i d_j)^α.
    public var cooccurrenceExponent = CooccurrenceEmbedding.defaultExponent
    /// Fit the ranking model (see `RankingModel`); false leaves the snapshot without one, so `recommend`
    /// ranks as before it existed (co-occurrence for light users, the rating model for the rest).
    public var rankingModel = true
    /// Choose the ranking model's settings and the light-user rule on a validation carve-out of the
    /// training ratings (see `RankingTuner`); false uses `rankingParameters` as they are.
    public var tune = true
    /// The fixed settings for `tune == false`; with tuning, only a `factors` given in
    /// `rankingFactors` is kept fixed.
    public var rankingParameters = RankingModel.Parameters()
    /// Fixes k of the ranking model (tuning then chooses the rest).
    public var rankingFactors: Int?
    /// Fixes the weight of the ranking model's blend with the rating model's predictions (see
    /// `RankingChoice.ratingWeight`; 0: none); nil lets tuning choose it (none with `tune` off).
    public var rankingRatingWeight: Float?
    /// Tuning starts no new candidate family after this many seconds.
    public var tuneSeconds = 180.0
    /// K > 1: tuning scores every setting on K folds of the training ratings and chooses by the mean, instead of
    /// on one 20% carve-out (`train --folds K`; about K times the tuning time). 1: one carve-out.
    public var folds = 1
    /// With `tune`: also choose the rating model's learning rate, regularization and epochs, and the step of
    /// its incremental updates, on the validation carve-out (see `RatingTuner`) — except what is fixed here.
    public var tuneRating = true
    /// The learning rate was given: tuning keeps it.
    public var fixedLearningRate = false
    /// The regularization was given: tuning keeps it.
    public var fixedRegularization = false
    /// The epoch count was given: tuning keeps it.
    public var fixedEpochs = false

    /// The defaults: tuned settings, a random 20% test split, a ranking model.
    public init() {}
}

/// One k of a training run.
public struct TrainRun: Sendable {
    /// k of this run.
    public var factors: Int
    /// Loss, MAE and MSE per epoch.
    public var history: [EpochStats]
    /// Its final test metrics (nil without a test split).
    public var test: ErrorMetrics?
    /// Wall-clock time of the run.
    public var seconds: Double
}

/// What a training run did.
public struct TrainOutcome: Sendable {
    /// The snapshot the kept model was saved as (now live).
    public var snapshotID: Int
    /// Unsaved incremental updates of the previous live model were frozen into this snapshot first.
    public var savedUpdatesAs: Int?
    /// One run per k asked for.
    public var runs: [TrainRun]
    /// Index into `runs` of the kept model.
    public var best: Int
    /// Ratings trained on.
    public var trainRatings: Int
    /// Ratings tested on.
    public var testRatings: Int
    /// Test pairs whose user or item has no training rating (predicted by the fallback).
    public var unseenTestPairs: Int
    /// Time to load the ratings.
    public var loadSeconds: Double
    /// The ratings came from the training cache (`<database>.ratings`), not the ratings table.
    public var loadedFromCache: Bool
    /// Time to write the training cache for the next run (0 when it was not written).
    public var cacheSeconds: Double
    /// Fitting the co-occurrence embedding (0 when skipped).
    public var cooccurrenceSeconds: Double
    /// What validation chose for the ranking model (nil when none was fitted).
    public var ranking: RankingChoice?
    /// Tuning and fitting the ranking model.
    public var rankingSeconds: Double
    /// What validation chose for the rating model (nil when not tuned).
    public var rating: RatingChoice?
    /// Time to save the snapshot.
    public var saveSeconds: Double
    /// The kept rating model.
    public var model: FactorModel
}

/// Progress of training: which k (0-based run index) and the epoch just finished.
public typealias TrainProgress = (_ run: Int, _ factors: Int, _ stats: EpochStats) -> Void

extension Recommender {
    /// Trains a model on the stored ratings, saves it as a new snapshot and makes it live.
    ///
    /// Nothing is written until training has finished: a failed, diverged or cancelled run leaves
    /// the database as it was. The snapshot and the live-model switch are one transaction.
    /// - Parameters:
    ///   - request: what to train (k, epochs, split, tuning, the ranking model, …).
    ///   - progress: called after each epoch with its figures.
    ///   - isCancelled: polled at every SGD stratum, stage and tuning setting; true stops with `EngineError.cancelled`.
    ///   - rankingProgress: lines about the ranking model's tuning.
    ///   - ratingProgress: lines about the rating model's tuning.
    /// - Returns: the snapshot id, the history per epoch, what tuning chose and the final metrics.
    /// - Throws: `EngineError` (`.noTrainingRatings`, `.invalid`, `.diverged`, `.cancelled`), `StoreError`;
    ///   the database is unchanged then.
    @discardableResult
    public func train(
        _ request: TrainRequest, progress: TrainProgress? = nil,
        isCancelled: (() -> Bool)? = nil, rankingProgress: ((String) -> Void)? = nil,
        ratingProgress: ((String) -> Void)? = nil
    ) throws -> TrainOutcome {
        return try serialized {
            let loadStart = Date()
            let watermark = try store.maxSequence()
            let userCount = try store.userCount(), itemCount = try store.itemCount()
            guard let scale = try store.ratingScale(), watermark > 0 else { throw EngineError.noTrainingRatings }
            guard request.testFraction >= 0 && request.testFraction < 1 else {
                throw EngineError.invalid("the test fraction must be at least 0 and below 1")
            }
            let split: TestSplit =
                request.testFile.map { .file(path: $0) }
                ?? (request.testFraction > 0
                    ? .random(fraction: request.testFraction, seed: request.options.seed) : .none)
            let loaded = try loadSplitFromCache(split, maxSeq: watermark)
            var (train, test) = (loaded.train, loaded.test)
            let loadSeconds = Date().timeIntervalSince(loadStart)
            if train.count == 0 { throw EngineError.noTrainingRatings }
            try EngineError.check(isCancelled)

            var baseOptions = request.options
            var ratingChoice: RatingChoice?
            if request.tune && request.tuneRating
                && !(request.fixedLearningRate && request.fixedRegularization && request.fixedEpochs)
            {
                var tuner = RankingTuner()
                tuner.seed = request.options.seed
                tuner.folds = request.folds
                let (fit, held) = tuner.carve(train)
                let otherFolds = (1..<max(1, request.folds)).map { tuner.carve(train, fold: $0) }
                if fit.count > 0 && held.count > 0 {
                    var ratingTuner = RatingTuner()
                    ratingTuner.budgetSeconds = request.tuneSeconds / 3
                    let choice = try ratingTuner.choose(
                        fit: fit, held: held, userCount: userCount, itemCount: itemCount, scale: scale,
                        options: request.options,
                        fixLearningRate: request.fixedLearningRate, fixRegularization: request.fixedRegularization,
                        fixEpochs: request.fixedEpochs, otherFolds: otherFolds, isCancelled: isCancelled,
                        progress: ratingProgress)
                    baseOptions.learningRate = choice.learningRate
                    baseOptions.regularization = choice.regularization
                    baseOptions.epochs = choice.epochs
                    baseOptions.updateLearningRate = choice.updateLearningRate
                    baseOptions.foldInPrior = choice.foldInPrior
                    ratingChoice = choice
                }
            }
            var runs: [TrainRun] = []
            var best: (index: Int, result: TrainingResult)?
            for (index, k) in (request.factorList ?? [request.options.factors]).enumerated() {
                var options = baseOptions
                options.factors = k
                let started = Date()
                let result = try Trainer.train(
                    train: train, test: test.count > 0 ? test : nil, userCount: userCount, itemCount: itemCount,
                    scale: Float(scale.lowerBound)...Float(scale.upperBound), options: options,
                    progress: { progress?(index, k, $0) }, isCancelled: isCancelled)
                runs.append(
                    TrainRun(
                        factors: k, history: result.history, test: result.final,
                        seconds: Date().timeIntervalSince(started)))
                if best == nil || (result.final?.rmse ?? 0) < (best!.result.final?.rmse ?? 0) { best = (index, result) }
            }
            let kept = best!.result
            var keptOptions = baseOptions
            keptOptions.factors = kept.model.factors
            let counts = (train.count, test.count)
            let popular = Recommender.rankPopular(train: train, test: test, itemCount: itemCount, scale: scale)
            try EngineError.check(isCancelled)
            let fitStart = Date()
            let cooccurrence =
                request.cooccurrenceFactors > 0
                ? CooccurrenceEmbedding.fit(
                    users: train.users, items: train.items, userCount: userCount, itemCount: itemCount,
                    factors: request.cooccurrenceFactors, exponent: request.cooccurrenceExponent,
                    seed: request.options.seed, isCancelled: isCancelled)
                : nil
            let cooccurrenceSeconds = cooccurrence == nil ? 0 : Date().timeIntervalSince(fitStart)
            try EngineError.check(isCancelled)
            let rankingStart = Date()
            let ranking =
                request.rankingModel
                ? try fitRanking(
                    request, train: train, userCount: userCount, itemCount: itemCount, scale: scale,
                    ratingTuningSeconds: ratingChoice?.seconds ?? 0,
                    newcomers: request.tune ? try newcomers(split: split, maxSeq: watermark) : [],
                    ratingOptions: keptOptions,
                    progress: rankingProgress,
                    isCancelled: isCancelled)
                : nil
            let rankingSeconds = ranking == nil ? 0 : Date().timeIntervalSince(rankingStart)
            // The ratings read from the table become the next run's training cache (see `TrainingCache`).
            let cacheStart = Date()
            var cacheSeconds = 0.0
            if let stamp = loaded.stampToCache {
                writeTrainingCache(stamp: stamp, all: split.isRandom ? RatingTriples.merged(train, test) : train)
                cacheSeconds = Date().timeIntervalSince(cacheStart)
            }
            train = RatingTriples()
            test = RatingTriples()  // free before encoding the snapshot

            try EngineError.check(isCancelled)
            let saveStart = Date()
            var savedUpdates: Int?
            let (snapshotID, live) = try store.transaction { () -> (Int, Store.LiveModel) in
                if try store.liveModel().dirty {
                    savedUpdates = try freeze(try liveState(), note: "saved automatically before training a new model")
                }
                let id = try store.insertSnapshot(
                    SnapshotCodec.record(
                        model: kept.model, kind: "trained", note: request.note,
                        parent: try store.liveModel().snapshotID,
                        options: keptOptions, history: kept.history, test: kept.final, unseen: kept.unseenTestPairs,
                        split: split, watermark: watermark))
                let live = try store.setLiveSnapshot(id, watermark: watermark)
                if let ranking {
                    try store.setRankingModel(
                        SnapshotCodec.rankingRecord(snapshot: id, model: ranking.model, choice: ranking.choice))
                }
                try store.setPopularItemsJSON(SnapshotCodec.json(popular))
                if let cooccurrence {
                    try store.setCooccurrence(
                        .init(
                            factors: cooccurrence.factors, itemCount: cooccurrence.itemCount,
                            exponent: cooccurrence.exponent, vectors: cooccurrence.encodedVectors()))
                } else {
                    try store.deleteCooccurrence()  // asked for none: an older one must not answer for this model
                }
                return (id, live)
            }
            // The item matrix follows the live model. If this fails, the first query rebuilds it.
            followLiveModel(generation: live.generation) {
                writeItemMatrix(
                    model: kept.model, ranking: ranking?.model, precision: request.options.itemPrecision ?? .f32,
                    generation: live.generation, snapshotID: snapshotID)
            }
            return TrainOutcome(
                snapshotID: snapshotID, savedUpdatesAs: savedUpdates, runs: runs, best: best!.index,
                trainRatings: counts.0,
                testRatings: counts.1, unseenTestPairs: kept.unseenTestPairs, loadSeconds: loadSeconds,
                loadedFromCache: loaded.fromCache, cacheSeconds: cacheSeconds,
                cooccurrenceSeconds: cooccurrenceSeconds, ranking: ranking?.choice, rankingSeconds: rankingSeconds,
                rating: ratingChoice,
                saveSeconds: Date().timeIntervalSince(saveStart), model: kept.model)
        }
    }

    /// The newest 25% of users by their first rating (at most 2,000), each with their training ratings in
    /// time order (test ratings of a random split left out): the arrivals the light-user rule is chosen for.
    func newcomers(split: TestSplit, maxSeq: Int64) throws -> [(user: Int32, ratings: [(item: Int32, rating: Float)])] {
        let firsts = try store.firstRatingTimes(maxSeq: maxSeq).sorted {
            $0.time != $1.time ? $0.time > $1.time : $0.user > $1.user
        }
        let newest = firsts.prefix(min(2_000, firsts.count / 4))
        return try newest.map { entry in
            var ratings = try store.ratingsInTimeOrder(ofUser: entry.user, maxSeq: maxSeq)
            ratings.removeAll { split.holdsOut(user: entry.user, item: $0.item) }
            return (entry.user, ratings)
        }
    }

    /// Chooses (or takes) the ranking model's settings and fits it on all training ratings.
    func fitRanking(
        _ request: TrainRequest, train: RatingTriples, userCount: Int, itemCount: Int,
        scale: ClosedRange<Double>, ratingTuningSeconds: Double = 0,
        newcomers: [(user: Int32, ratings: [(item: Int32, rating: Float)])],
        ratingOptions: TrainingOptions? = nil,
        progress: ((String) -> Void)?, isCancelled: (() -> Bool)? = nil
    ) throws -> (model: RankingModel, choice: RankingChoice) {
        var choice: RankingChoice
        if request.tune {
            var tuner = RankingTuner()
            tuner.seed = request.options.seed
            tuner.folds = request.folds
            tuner.threads = max(1, request.options.threads)
            tuner.budgetSeconds = max(request.tuneSeconds / 3, request.tuneSeconds - ratingTuningSeconds)
            if let k = request.rankingFactors { tuner.factorChoices = [k] }
            if request.rankingRatingWeight != nil { tuner.ratingWeights = [] }  // fixed: set below
            tuner.isCancelled = isCancelled
            // The blend with the rating model is judged with a rating model fitted as the kept one was.
            let ratingModel = ratingOptions.map { options in
                { (part: RatingTriples) throws -> FactorModel in
                    try Trainer.train(
                        train: part, test: nil, userCount: userCount, itemCount: itemCount,
                        scale: Float(scale.lowerBound)...Float(scale.upperBound), options: options,
                        isCancelled: isCancelled
                    ).model
                }
            }
            choice = try tuner.choose(
                train: train, userCount: userCount, itemCount: itemCount, scale: scale, newcomers: newcomers,
                ratingModel: ratingModel, progress: progress)
        } else {
            var parameters = request.rankingParameters
            parameters.ratingOffset = scale.lowerBound
            if let k = request.rankingFactors { parameters.factors = k }
            choice = RankingChoice(
                parameters: parameters, popularityWeight: 0, lightBelow: 0, lightRanker: .cooccurrence,
                lightPopularityWeight: 0, validation: nil, grid: [], newcomers: nil, tuned: false, seconds: 0)
        }
        if let weight = request.rankingRatingWeight {
            guard weight.isFinite && weight >= 0 else {
                throw EngineError.invalid("the rating blend weight must be finite and at least 0")
            }
            choice.ratingWeight = weight > 0 ? weight : nil
        }
        var parameters = choice.parameters
        parameters.factors = max(1, min(parameters.factors, itemCount))
        let relevantAt = Float(Recommender.topQuarter(of: scale))
        let model = RankingModel.fit(
            users: train.users, items: train.items, ratings: train.ratings, userCount: userCount,
            itemCount: itemCount, parameters: parameters, seed: request.options.seed,
            threads: max(1, request.options.threads), isCancelled: isCancelled
        )
        .withPopularity(users: train.users, items: train.items, ratings: train.ratings, relevantAt: relevantAt)
        try EngineError.check(isCancelled)
        choice.parameters = model.parameters
        return (model, choice)
    }

    /// Connections that read the ratings at once when training (see `Store.readRatings`).
    var loadThreads: Int { min(2, ProcessInfo.processInfo.activeProcessorCount) }

    /// The training cache file of this database: `<database>.ratings` (see `TrainingCache`).
    public var trainingCachePath: String { path + ".ratings" }

    /// The state of the stored ratings, when it is `maxSeq`'s and at least `trainingCacheMinimum` ratings may be
    /// stored (nil: no cache for this read).
    func cacheStamp(maxSeq: Int64) throws -> TrainingCache.Stamp? {
        try store.read {
            let watermark = try store.maxSequence()
            guard watermark == maxSeq, watermark >= trainingCacheMinimum else { return nil }
            return TrainingCache.Stamp(
                watermark: watermark, epoch: try store.ratingsEpoch(), userCount: try store.userCount(),
                itemCount: try store.itemCount())
        }
    }

    /// `loadSplit`, reading the training cache when it holds the ratings' current state; otherwise from the
    /// table, with the stamp the caller may write the cache under (when enough ratings are stored).
    func loadSplitFromCache(_ split: TestSplit, maxSeq: Int64) throws -> (
        train: RatingTriples, test: RatingTriples, fromCache: Bool, stampToCache: TrainingCache.Stamp?
    ) {
        try serialized {
            guard let stamp = try cacheStamp(maxSeq: maxSeq) else {
                let (train, test) = try loadSplit(split, maxSeq: maxSeq)
                return (train, test, false, nil)
            }
            let threads = loadThreads
            guard
                let (train, cachedTest) = TrainingCache.withRatings(
                    path: trainingCachePath, stamp: stamp,
                    { columns in
                        RatingTriples.split(
                            users: columns.users, items: columns.items, ratings: columns.ratings, parts: threads
                        ) { u, i in split.holdsOut(user: u, item: i) }
                    })
            else {
                let (train, test) = try loadSplit(split, maxSeq: maxSeq)
                return (train, test, false, stamp)
            }
            var test = cachedTest
            if case .file(let path) = split { test = try readTestFile(path) }
            return (train, test, true, nil)
        }
    }

    /// Writes the training cache for `stamp` unless the ratings moved on meanwhile (a forget since must not
    /// find its ratings back in the file).
    func writeTrainingCache(stamp: TrainingCache.Stamp, all: RatingTriples) {
        guard (try? cacheStamp(maxSeq: stamp.watermark)) == stamp else { return }
        TrainingCache.write(all, stamp: stamp, to: trainingCachePath)
    }

    /// The train and test ratings of a split, among the ratings with `seq <= maxSeq`.
    /// - Parameters:
    ///   - split: the split (random by pair hash, a test file, or none).
    ///   - maxSeq: the watermark: ratings written later are left out.
    /// - Throws: `StoreError` when the ratings cannot be read, `MFRecError.input` for a bad test file.
    /// - Returns: the training and test ratings (dense ids).
    public func loadSplit(_ split: TestSplit, maxSeq: Int64) throws -> (train: RatingTriples, test: RatingTriples) {
        return try serialized {
            // Two connections read halves of the users at once (one commit: see `Store.readRatings`).
            let parts = try store.readRatings(
                maxSeq: maxSeq, parts: loadThreads, userCount: try store.userCount(),
                make: { (train: RatingTriples(), test: RatingTriples()) },
                add: { out, u, i, r in
                    if split.holdsOut(user: u, item: i) {
                        out.test.append(user: u, item: i, rating: r)
                    } else {
                        out.train.append(user: u, item: i, rating: r)
                    }
                })
            var (train, test) = parts[0]
            train.reserve(parts.reduce(0) { $0 + $1.train.count })
            test.reserve(parts.reduce(0) { $0 + $1.test.count })
            for part in parts.dropFirst() {
                train.append(contentsOf: part.train)
                test.append(contentsOf: part.test)
            }
            if case .file(let path) = split { test = try readTestFile(path) }
            return (train, test)
        }
    }

    /// Reads a ratings file for evaluation only: ids are looked up, never stored. Users or items the
    /// database does not know get ids past the end (the model has not seen them: fallback).
    func readTestFile(_ path: String) throws -> RatingTriples {
        let reader = try RatingsReader(path: path)
        var users: [String: Int32] = [:], items: [String: Int32] = [:]
        for (i, key) in try store.userKeys().enumerated() { users[key] = Int32(i) }
        for (i, key) in try store.itemKeys().enumerated() { items[key] = Int32(i) }
        // Keys the store does not know get the next ids (unseen in training: predicted by the fallback).
        func id(_ key: String, in map: inout [String: Int32]) -> Int32 {
            if let known = map[key] { return known }
            let next = Int32(map.count)
            map[key] = next
            return next
        }
        var out = RatingTriples()
        try reader.read(
            { line in
                let u = id(String(decoding: line.user, as: UTF8.self), in: &users)
                let i = id(String(decoding: line.item, as: UTF8.self), in: &items)
                out.append(user: u, item: i, rating: Float(line.rating))
            }, onError: { throw $0 })
        return out
    }
}
