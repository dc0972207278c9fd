import Foundation
import MFEngine

/// What validation chose for the rating model and for its incremental updates, stored with each snapshot.
public struct RatingChoice: Codable, Sendable, Equatable {
    /// The chosen learning rate.
    public var learningRate: Float
    /// The chosen L2 regularization.
    public var regularization: Float
    /// The chosen epoch count (the best epoch on validation).
    public var epochs: Int
    /// Validation RMSE of the chosen setting at its best epoch.
    public var validationRMSE: Double
    /// Every (learning rate, regularization) scored: its best epoch and validation RMSE there.
    public var grid: [Scored]
    /// The step size of incremental updates, and the probe RMSE without updates and with them.
    public var updateLearningRate: Float
    /// Pseudo-observations of a fold-in (see `OnlineUpdater.foldInPrior`).
    public var foldInPrior: Double
    /// RMSE on the probe half without streaming the other half.
    public var probeRMSEWithoutUpdates: Double
    /// RMSE on the probe half after streaming the other half with the chosen step.
    public var probeRMSEWithUpdates: Double
    /// Wall-clock time of the tuning.
    public var seconds: Double

    /// One setting of the grid and its validation RMSE.
    public struct Scored: Codable, Sendable, Equatable {
        /// The learning rate tried.
        public var learningRate: Float
        /// The regularization tried.
        public var regularization: Float
        /// Its best epoch.
        public var epochs: Int
        /// Its validation RMSE at that epoch.
        public var rmse: Double
    }
}

/// Chooses the rating model's learning rate, regularization and epochs, and the step size of its
/// incremental updates, on the validation carve-out of the training ratings (never the test set).
///
/// Each (learning rate, regularization) trains on the carve-out's 80% for up to `maxEpochs`, scored on the
/// rest after every epoch; the best epoch counts. For updates, the best setting's model takes the ratings of
/// one half of the held-out part as incremental SGD steps, with each candidate step size, and is scored on
/// the other half; no candidate is "no update".
public struct RatingTuner {
    /// (learning rate, regularization) in the order tried: the untuned defaults first, then their
    /// neighbours; no new one starts after `budgetSeconds` (the first always runs).
    public var settings: [(Float, Float)] = [
        (0.02, 0.1), (0.02, 0.05), (0.04, 0.1), (0.01, 0.1), (0.02, 0.2),
        (0.04, 0.05), (0.01, 0.05), (0.04, 0.2), (0.01, 0.2),
    ]
    /// No new setting starts after this many seconds.
    public var budgetSeconds = 60.0
    /// Multiples of the chosen learning rate tried as the update step.
    public var updateScales: [Float] = [0.25, 0.5, 1, 2]
    /// Fold-in priors tried (pseudo-observations that shrink a new user's or item's fitted vector).
    public var foldInPriors: [Double] = [2, 5, 10, 20]

    /// The defaults README describes.
    public init() {}

    /// Chooses learning rate, regularization, epochs, update step and fold-in prior on validation ratings.
    /// - Parameters:
    ///   - fit: the ratings models are fitted on.
    ///   - held: the validation ratings they are scored on.
    ///   - userCount: users (every id below it).
    ///   - itemCount: items (every id below it).
    ///   - scale: the rating scale.
    ///   - options: the starting options (k, threads, …).
    ///   - fixLearningRate: keep `options`' learning rate.
    ///   - fixRegularization: keep `options`' regularization.
    ///   - fixEpochs: keep `options`' epochs.
    ///   - otherFolds: further (fit, held) folds; each setting is scored by its mean over all folds.
    ///   - isCancelled: polled between settings and epochs.
    ///   - progress: a line per setting tried.
    /// - Returns: the chosen settings with their validation figures.
    /// - Throws: `EngineError.cancelled`, or a training error of the chosen setting.
    public func choose(
        fit: RatingTriples, held: RatingTriples, userCount: Int, itemCount: Int, scale: ClosedRange<Double>,
        options: TrainingOptions, fixLearningRate: Bool, fixRegularization: Bool, fixEpochs: Bool,
        otherFolds: [(fit: RatingTriples, held: RatingTriples)] = [],
        isCancelled: (() -> Bool)?, progress: ((String) -> Void)?
    ) throws -> RatingChoice {
        let started = Date()
        let range = Float(scale.lowerBound)...Float(scale.upperBound)
        var grid: [RatingChoice.Scored] = []
        // The best setting's model on every fold (the carve-out first), for the update simulation.
        var best: (scored: RatingChoice.Scored, models: [FactorModel])?
        var candidates: [(Float, Float)] = []
        for (lr, reg) in settings {
            let setting = (
                fixLearningRate ? options.learningRate : lr, fixRegularization ? options.regularization : reg
            )
            if !candidates.contains(where: { $0 == setting }) { candidates.append(setting) }
        }
        for (lr, reg) in candidates {
            if !grid.isEmpty && Date().timeIntervalSince(started) > budgetSeconds { break }
            do {
                var o = options
                o.learningRate = lr
                o.regularization = reg
                let result = try Trainer.train(
                    train: fit, test: held, userCount: userCount, itemCount: itemCount, scale: range,
                    options: o, isCancelled: isCancelled)
                // Validation RMSE per epoch: on the carve-out, or (`train --folds K`) the mean over the K folds.
                var perEpoch = result.history.map { $0.test?.rmse ?? .infinity }
                var models = [result.model]
                for other in otherFolds {
                    let otherResult = try Trainer.train(
                        train: other.fit, test: other.held, userCount: userCount, itemCount: itemCount, scale: range,
                        options: o, isCancelled: isCancelled)
                    let history = otherResult.history
                    models.append(otherResult.model)
                    for e in perEpoch.indices {
                        perEpoch[e] += e < history.count ? history[e].test?.rmse ?? .infinity : .infinity
                    }
                }
                perEpoch = perEpoch.map { $0 / Double(1 + otherFolds.count) }
                let epochs = perEpoch.enumerated().min { $0.element < $1.element }
                let chosenEpoch = fixEpochs ? perEpoch.count : (epochs?.offset ?? perEpoch.count - 1) + 1
                let rmse = perEpoch[chosenEpoch - 1]
                let scored = RatingChoice.Scored(learningRate: lr, regularization: reg, epochs: chosenEpoch, rmse: rmse)
                grid.append(scored)
                if best == nil || rmse < best!.scored.rmse { best = (scored, models) }
            } catch EngineError.diverged {
                continue  // too large a step for this data: not a candidate
            }
        }
        guard let chosen = best else {
            throw EngineError.invalid("every learning rate tried on the validation carve-out diverged")
        }
        progress?(
            "learning rate \(chosen.scored.learningRate), regularization \(chosen.scored.regularization), "
                + "\(chosen.scored.epochs) epochs: "
                + "validation RMSE \(String(format: "%.4f", chosen.scored.rmse))")

        // Updates: on every fold, stream one half of its held-out ratings into its model and score the other
        // half; each (step, prior) is judged by its mean probe RMSE over the folds.
        let folds = [(fit: fit, held: held)] + otherFolds
        var without = 0.0
        var probeRMSE: [Double] = []
        for (f, fold) in folds.enumerated() {
            let scores = simulateUpdates(
                model: chosen.models[f], fit: fold.fit, held: fold.held, userCount: userCount, itemCount: itemCount,
                learningRate: chosen.scored.learningRate, regularization: chosen.scored.regularization,
                options: options)
            without += scores.without / Double(folds.count)
            if probeRMSE.isEmpty { probeRMSE = [Double](repeating: 0, count: scores.with.count) }
            for c in scores.with.indices { probeRMSE[c] += scores.with[c] / Double(folds.count) }
        }
        var update: (lr: Float, prior: Double, rmse: Double)?
        var c = 0
        for prior in foldInPriors {
            for multiple in updateScales {
                if update == nil || probeRMSE[c] < update!.rmse {
                    update = (chosen.scored.learningRate * multiple, prior, probeRMSE[c])
                }
                c += 1
            }
        }
        progress?(
            "update step \(update!.lr), fold-in prior \(update!.prior): probe RMSE "
                + "\(String(format: "%.4f", update!.rmse)) with updates, "
                + "\(String(format: "%.4f", without)) without")
        return RatingChoice(
            learningRate: chosen.scored.learningRate, regularization: chosen.scored.regularization,
            epochs: chosen.scored.epochs, validationRMSE: chosen.scored.rmse, grid: grid,
            updateLearningRate: update!.lr, foldInPrior: update!.prior, probeRMSEWithoutUpdates: without,
            probeRMSEWithUpdates: update!.rmse,
            seconds: Date().timeIntervalSince(started))
    }

    /// The update simulation on one fold: half of `held` streamed into `model` as `ingest --update` does it,
    /// the other half scored; the probe RMSE without updates, and with each (prior, step multiple) in the
    /// order of `foldInPriors` × `updateScales`.
    func simulateUpdates(
        model trained: FactorModel, fit: RatingTriples, held: RatingTriples, userCount: Int, itemCount: Int,
        learningRate: Float, regularization: Float, options: TrainingOptions
    ) -> (without: Double, with: [Double]) {
        var stream = RatingTriples(), probe = RatingTriples()
        for j in 0..<held.count {
            if TestSplit.isTest(user: held.users[j], item: held.items[j], fraction: 0.5, seed: options.seed &+ 0x5742) {
                probe.append(user: held.users[j], item: held.items[j], rating: held.ratings[j])
            } else {
                stream.append(user: held.users[j], item: held.items[j], rating: held.ratings[j])
            }
        }
        var seenUser = [Bool](repeating: false, count: userCount), seenItem = [Bool](repeating: false, count: itemCount)
        for u in fit.users { seenUser[Int(u)] = true }
        for i in fit.items { seenItem[Int(i)] = true }
        let without = Trainer.evaluate(trained, on: probe, seenUser: seenUser, seenItem: seenItem).metrics.rmse
        // As `ingest --update` does it: users and items without a vector are folded in from their streamed
        // ratings first (regularized least squares with `prior` pseudo-observations), then one SGD step each.
        var streamedByUser: [Int: [(item: Int, rating: Float)]] = [:],
            streamedByItem: [Int: [(user: Int, rating: Float)]] = [:]
        for j in 0..<stream.count {
            streamedByUser[Int(stream.users[j]), default: []].append((Int(stream.items[j]), stream.ratings[j]))
            streamedByItem[Int(stream.items[j]), default: []].append((Int(stream.users[j]), stream.ratings[j]))
        }
        var with: [Double] = []
        for prior in foldInPriors {
            for multiple in updateScales {
                var updater = OnlineUpdater(
                    learningRate: learningRate * multiple, regularization: regularization,
                    biasRegularization: options.biasRegularization, steps: 1, nonnegative: options.nonnegative)
                updater.foldInPrior = prior
                var model = trained
                var knownUser = seenUser, knownItem = seenItem
                for (u, rated) in streamedByUser where !model.hasUser(u) {
                    if updater.foldInUser(&model, user: u, ratings: rated) { knownUser[u] = true }
                }
                for (i, rated) in streamedByItem where !model.hasItem(i) {
                    if updater.foldInItem(&model, item: i, ratings: rated) { knownItem[i] = true }
                }
                for j in 0..<stream.count where knownUser[Int(stream.users[j])] && knownItem[Int(stream.items[j])] {
                    updater.step(
                        &model, user: Int(stream.users[j]), item: Int(stream.items[j]), rating: stream.ratings[j])
                }
                with.append(Trainer.evaluate(model, on: probe, seenUser: knownUser, seenItem: knownItem).metrics.rmse)
            }
        }
        return (without, with)
    }
}
