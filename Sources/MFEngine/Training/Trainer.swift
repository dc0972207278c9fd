import CKernels
import Dispatch
import Foundation

/// Trains a `FactorModel` by stochastic gradient descent.
///
/// The rating matrix is cut into `bins × bins` blocks after shuffling users and items into bins.
/// An epoch walks `bins` strata; stratum s holds the blocks (b, (b + s) mod bins), which share no
/// user and no item, so threads update them at the same time without locks or races (the invariant of
/// LibMF's FPSG and of DSGD). Within a block ratings are visited in a fixed shuffled order, and error
/// sums are added up block by block in a fixed order, so the model is bit-identical for a seed
/// whatever the number of threads.
public enum Trainer {
    /// Trains a model.
    /// - Parameters:
    ///   - train: the ratings to learn from (dense ids below `userCount`/`itemCount`).
    ///   - test: held-out ratings evaluated after every epoch.
    ///   - userCount: users (every id below it).
    ///   - itemCount: items (every id below it).
    ///   - scale: the rating scale (predictions are clipped to it).
    ///   - options: the hyperparameters.
    ///   - progress: called after every epoch.
    ///   - isCancelled: polled before each of the `bins` strata of every epoch (so it can also drive a
    ///     progress bar within epochs); return true to stop (throws `.cancelled`).
    /// - Returns: the model and its per-epoch history.
    /// - Throws: `EngineError`: `.noTrainingRatings`, `.invalid`, `.diverged` or `.cancelled`.
    public static func train(
        train: RatingTriples, test: RatingTriples?, userCount: Int, itemCount: Int, scale: ClosedRange<Float>,
        options: TrainingOptions, progress: ((EpochStats) -> Void)? = nil, isCancelled: (() -> Bool)? = nil
    ) throws -> TrainingResult {
        guard train.count > 0 else { throw EngineError.noTrainingRatings }
        guard options.factors >= 1 && options.factors <= 1024 else {
            throw EngineError.invalid("factors must be between 1 and 1024")
        }
        guard options.epochs >= 1 else { throw EngineError.invalid("epochs must be at least 1") }
        guard options.learningRate > 0 && options.learningRate.isFinite else {
            throw EngineError.invalid("the learning rate must be positive")
        }
        guard options.regularization >= 0 && options.biasRegularization >= 0 else {
            throw EngineError.invalid("regularization must not be negative")
        }
        guard (1...256).contains(options.bins) && options.threads >= 1 else {
            throw EngineError.invalid("bins must be 1…256 and threads at least 1")
        }

        var rng = SeededGenerator(seed: options.seed)
        let mean = Float(train.ratings.reduce(0.0) { $0 + Double($1) } / Double(train.count))
        var model = FactorModel(
            factors: options.factors, userCount: userCount, itemCount: itemCount,
            useBias: options.useBias, globalMean: mean, scale: scale)
        // Initial embeddings: N(0, initScale²), or |N| for non-negative models. Without biases the dot
        // product alone must reach the mean rating, so start each entry near sqrt(μ / k).
        let k = options.factors, stride = model.stride
        let center: Float = options.useBias ? 0 : (max(mean, 0) / Float(k)).squareRoot()
        func initial() -> Float {
            let x = center + options.initScale * Float(rng.nextGaussian())
            return options.nonnegative ? abs(x) : x
        }
        for u in 0..<userCount { for f in 0..<k { model.userFactors[u * stride + f] = initial() } }
        for i in 0..<itemCount { for f in 0..<k { model.itemFactors[i * stride + f] = initial() } }

        // Training runs on a copy whose rows are renumbered so each bin's users (and items) are
        // contiguous: threads then write disjoint memory, with no false sharing of cache lines.
        let grid = BlockGrid(train, userCount: userCount, itemCount: itemCount, bins: options.bins, rng: &rng)
        var local = model.permuted(users: grid.userOrder, items: grid.itemOrder)
        var seenUser = [Bool](repeating: false, count: userCount), seenItem = [Bool](repeating: false, count: itemCount)
        for u in grid.users { seenUser[Int(u)] = true }
        for i in grid.items { seenItem[Int(i)] = true }
        let localTest = test.map { t in
            RatingTriples(
                users: t.users.map { Int($0) < userCount ? grid.localUser[Int($0)] : $0 },
                items: t.items.map { Int($0) < itemCount ? grid.localItem[Int($0)] : $0 }, ratings: t.ratings)
        }

        var history: [EpochStats] = []
        var lr = options.learningRate
        var unseen = 0
        for epoch in 1...options.epochs {
            let started = DispatchTime.now()
            let (sq, ab) = try runEpoch(grid: grid, model: &local, lr: lr, options: options, isCancelled: isCancelled)
            let n = Double(train.count)
            var penalty = 0.0
            for v in local.userFactors { penalty += Double(options.regularization) * Double(v * v) }
            for v in local.itemFactors { penalty += Double(options.regularization) * Double(v * v) }
            if options.useBias {
                for v in local.userBias { penalty += Double(options.biasRegularization) * Double(v * v) }
                for v in local.itemBias { penalty += Double(options.biasRegularization) * Double(v * v) }
            }
            let loss = (sq + penalty) / n
            let range = Double(scale.upperBound - scale.lowerBound) + 1
            if !loss.isFinite || sq / n > 100 * range * range {
                throw EngineError.diverged(epoch: epoch, loss: loss, learningRate: options.learningRate)
            }
            var testMetrics: ErrorMetrics?
            if let localTest, localTest.count > 0 {
                let evaluation = evaluate(
                    local, on: localTest, seenUser: seenUser, seenItem: seenItem, threads: options.threads)
                testMetrics = evaluation.metrics
                unseen = evaluation.unseen
            }
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - started.uptimeNanoseconds) / 1e9
            let stats = EpochStats(
                epoch: epoch, trainLoss: loss, trainMAE: ab / n, trainMSE: sq / n, test: testMetrics,
                seconds: seconds, learningRate: Double(lr))
            history.append(stats)
            progress?(stats)
            lr *= options.learningRateDecay
        }
        // Users and items with no training rating keep no random vector: they are cold, not noise.
        for u in 0..<userCount where !seenUser[u] {
            local.userBias[u] = 0
            for f in 0..<stride { local.userFactors[u * stride + f] = 0 }
        }
        for i in 0..<itemCount where !seenItem[i] {
            local.itemBias[i] = 0
            for f in 0..<stride { local.itemFactors[i * stride + f] = 0 }
        }
        model = local.permuted(users: grid.localUser.map(Int.init), items: grid.localItem.map(Int.init))
        return TrainingResult(model: model, history: history, unseenTestPairs: unseen)
    }

    /// Error metrics on `test`. A pair whose user or item has no training rating is predicted by the
    /// fallback μ + (b_u if the user is known) + (b_i if the item is known), clipped to the scale.
    /// - Parameters:
    ///   - model: the model.
    ///   - test: the test ratings.
    ///   - seenUser: per user, whether training saw them.
    ///   - seenItem: per item, whether training saw it.
    ///   - threads: threads predicting (parts of at least 65,536 pairs); the metrics are the same for any count.
    /// - Returns: the metrics, and how many pairs the fallback predicted.
    public static func evaluate(
        _ model: FactorModel, on test: RatingTriples, seenUser: [Bool], seenItem: [Bool], threads: Int = 1
    ) -> (metrics: ErrorMetrics, unseen: Int) {
        let n = test.count
        let parts = max(1, min(threads, n / 65_536))
        let results = ThreadSlots<(predictions: [Float], unseen: Int)>(count: parts)
        let work = { @Sendable (part: Int) in
            var predictions: [Float] = []
            var unseen = 0
            let range = n * part / parts..<n * (part + 1) / parts
            predictions.reserveCapacity(range.count)
            for j in range {
                let u = Int(test.users[j]), i = Int(test.items[j])
                let knownUser = u < seenUser.count && seenUser[u], knownItem = i < seenItem.count && seenItem[i]
                if knownUser && knownItem {
                    predictions.append(model.predict(user: u, item: i))
                } else {
                    unseen += 1
                    predictions.append(
                        model.fallbackPrediction(user: u, knownUser: knownUser, item: i, knownItem: knownItem))
                }
            }
            results.set(part, (predictions, unseen))
        }
        if parts == 1 { work(0) } else { DispatchQueue.concurrentPerform(iterations: parts, execute: work) }
        // The parts' predictions in pair order: the sums below run as with one thread.
        var predictions: [Float] = []
        predictions.reserveCapacity(n)
        var unseen = 0
        for part in 0..<parts {
            let result = results.get(part)
            predictions += result.predictions
            unseen += result.unseen
        }
        return (ErrorMetrics(predictions: predictions, truth: test.ratings), unseen)
    }

    private static func runEpoch(
        grid: BlockGrid, model: inout FactorModel, lr: Float, options: TrainingOptions,
        isCancelled: (() -> Bool)?
    ) throws -> (Double, Double) {
        let bins = grid.bins
        let params = SGDParameters(
            lr: lr, regP: options.regularization, regQ: options.regularization,
            regB: options.biasRegularization, mean: model.globalMean,
            useBias: options.useBias, nonnegative: options.nonnegative,
            chunks: model.stride / 8)
        let threads = min(options.threads, bins)
        let errors = try SharedModel.withShared(&model, grid: grid) { shared in
            for s in 0..<bins {
                try EngineError.check(isCancelled)
                let work = { @Sendable (t: Int) in
                    var b = t
                    while b < bins {
                        shared.sgd(block: b * bins + (b + s) % bins, params)
                        b += threads
                    }
                }
                if threads == 1 {
                    work(0)
                } else {
                    DispatchQueue.concurrentPerform(iterations: threads, execute: work)
                }
            }
        }
        return (errors.squared.reduce(0, +), errors.absolute.reduce(0, +))
    }
}

struct SGDParameters: Sendable {
    var lr: Float, regP: Float, regQ: Float, regB: Float, mean: Float
    var useBias: Bool, nonnegative: Bool
    var chunks: Int
}

/// The training ratings reordered block by block (counting sort), each block internally shuffled.
///
/// Users and items are shuffled, renumbered in shuffled order ("local" ids), and binned by contiguous
/// ranges of local ids; the stored ratings use local ids.
final class BlockGrid: Sendable {
    let bins: Int
    let offsets: [Int]  // bins² + 1 boundaries
    let users: [Int32]
    let items: [Int32]
    let ratings: [Float]
    /// local id → original id
    let userOrder: [Int]
    let itemOrder: [Int]
    /// original id → local id
    let localUser: [Int32]
    let localItem: [Int32]

    init(_ triples: RatingTriples, userCount: Int, itemCount: Int, bins: Int, rng: inout SeededGenerator) {
        self.bins = bins
        var userOrder = Array(0..<userCount), itemOrder = Array(0..<itemCount)
        userOrder.shuffle(using: &rng)
        itemOrder.shuffle(using: &rng)
        var localUser = [Int32](repeating: 0, count: userCount), localItem = [Int32](repeating: 0, count: itemCount)
        for (position, id) in userOrder.enumerated() { localUser[id] = Int32(position) }
        for (position, id) in itemOrder.enumerated() { localItem[id] = Int32(position) }
        self.userOrder = userOrder
        self.itemOrder = itemOrder
        self.localUser = localUser
        self.localItem = localItem
        @inline(__always) func bin(_ local: Int32, _ count: Int) -> Int { Int(local) * bins / max(count, 1) }

        let n = triples.count
        var counts = [Int](repeating: 0, count: bins * bins + 1)
        var blockOf = [UInt16](repeating: 0, count: n)
        for j in 0..<n {
            let b =
                bin(localUser[Int(triples.users[j])], userCount) * bins
                + bin(localItem[Int(triples.items[j])], itemCount)
            blockOf[j] = UInt16(b)
            counts[b + 1] += 1
        }
        for b in 0..<bins * bins { counts[b + 1] += counts[b] }
        offsets = counts
        // The ratings are scattered into their blocks (in input order within a block: one sequential read,
        // bins² write streams), then each block is shuffled in place, the three arrays by the same swaps —
        // the permutation `shuffle(using:)` of an index array would give (the same Fisher–Yates draws), without
        // gathering 3 × n values from random places afterwards (which cost 5 s on 22.5M ratings).
        var cursor = counts
        var users = [Int32](repeating: 0, count: n), items = [Int32](repeating: 0, count: n)
        var ratings = [Float](repeating: 0, count: n)
        for j in 0..<n {
            let b = Int(blockOf[j])
            let at = cursor[b]
            users[at] = localUser[Int(triples.users[j])]
            items[at] = localItem[Int(triples.items[j])]
            ratings[at] = triples.ratings[j]
            cursor[b] += 1
        }
        blockOf = []
        for b in 0..<bins * bins {
            // `MutableCollection.shuffle(using:)`'s loop, applied to three arrays at once.
            var amount = counts[b + 1] - counts[b]
            var current = counts[b]
            guard amount > 1 else { continue }
            while amount > 1 {
                let random = Int.random(in: 0..<amount, using: &rng)
                amount -= 1
                users.swapAt(current, current + random)
                items.swapAt(current, current + random)
                ratings.swapAt(current, current + random)
                current += 1
            }
        }
        self.users = users
        self.items = items
        self.ratings = ratings
    }

    func blockRange(_ block: Int) -> Range<Int> { offsets[block]..<offsets[block + 1] }
}
