import Foundation
import Testing

@testable import MFEngine
@testable import MFRec
@testable import MFStore

/// Issue 17: `crossValidate` partitions the ratings into folds, is deterministic for a seed, and leaves
/// the database (live model, snapshots) as it was.
@Suite struct CrossValidationTests {
    @Test func foldsPartitionTheRatingsAndNothingIsStored() throws {
        let dir = tempFolder()
        let data = dir.appendingPathComponent("r.data").path
        _ = try SyntheticRatings(users: 200, items: 150, ratings: 6_000, seed: 5).write(to: data)
        let rec = try Recommender(path: dir.appendingPathComponent("t.db").path)
        try rec.ingest(path: data)
        var request = TrainRequest()
        request.options.epochs = 5
        request.rankingParameters.factors = 8
        let before = try dump(rec.store)
        let report = try rec.crossValidate(folds: 5, request: request)
        #expect(try dump(rec.store) == before)
        #expect(report.folds.count == 5)
        #expect(report.folds.allSatisfy { $0.trainRatings + $0.testRatings == 6_000 })
        #expect(report.folds.map(\.testRatings).reduce(0, +) == 6_000)  // every rating held out exactly once
        #expect(report.folds.allSatisfy { $0.testRatings > 900 && $0.testRatings < 1_500 })
        #expect(report.rmse.mean > 0.5 && report.rmse.mean < 1.5 && report.rmse.sd > 0)
        #expect(report.folds.allSatisfy { ($0.ranking?.users ?? 0) > 50 })
        // The fold of a rating depends on the seed and the pair alone.
        var seen = [Int](repeating: 0, count: 5)
        for u in Int32(0)..<200 {
            for i in Int32(0)..<150 { seen[Recommender.fold(user: u, item: i, folds: 5, seed: 42)] += 1 }
        }
        #expect(seen.allSatisfy { abs($0 - 6_000) < 300 }, "\(seen)")
        let again = try rec.crossValidate(folds: 5, request: request)
        #expect(again.folds.map(\.error) == report.folds.map(\.error))
        #expect(again.folds.map(\.ranking) == report.folds.map(\.ranking))
        #expect(throws: EngineError.self) { try rec.crossValidate(folds: 1, request: request) }
    }

    /// `train --folds K`: the tuners' K carve-outs hold out every training rating exactly once, and a tuned
    /// training with folds chooses from a grid scored on them.
    @Test func tuningFoldsPartitionTheTrainingRatings() throws {
        var train = RatingTriples()
        var rng = SeededGenerator(seed: 9)
        for _ in 0..<5_000 {
            train.append(
                user: Int32(rng.next() % 200), item: Int32(rng.next() % 100), rating: Float(1 + rng.next() % 5))
        }
        var tuner = RankingTuner()
        tuner.folds = 4
        var heldTimes = [Int](repeating: 0, count: train.count)
        var heldTotal = 0
        for fold in 0..<4 {
            let (fit, held) = tuner.carve(train, fold: fold)
            #expect(fit.count + held.count == train.count)
            #expect(held.count > train.count / 6 && held.count < train.count / 3, "fold \(fold): \(held.count)")
            heldTotal += held.count
            // Held-out pairs of one fold are in no other fold's held-out part.
            for j in 0..<train.count
            where Recommender.fold(user: train.users[j], item: train.items[j], folds: 4, seed: tuner.seed &+ 0x5EED)
                == fold
            {
                heldTimes[j] += 1
            }
        }
        #expect(heldTotal == train.count && heldTimes.allSatisfy { $0 == 1 })

        let (rec, dir) = try trainedSmallDatabase()
        defer { try? FileManager.default.removeItem(at: dir) }
        var request = TrainRequest()
        request.folds = 3
        request.tuneSeconds = 5
        request.options.factors = 8
        let outcome = try rec.train(request)
        let choice = try #require(outcome.ranking)
        #expect(choice.tuned && !choice.grid.isEmpty)
        #expect(try #require(outcome.rating).grid.count > 0)
    }

    /// `train --folds K`: the update step and fold-in prior are chosen by their probe RMSE averaged over
    /// every fold, each fold's model streaming half of its own held-out ratings.
    @Test func updateStepIsChosenByItsMeanOverFolds() throws {
        var ratings = RatingTriples()
        var rng = SeededGenerator(seed: 21)
        for _ in 0..<6_000 {
            let u = Int32(rng.next() % 150), i = Int32(rng.next() % 80)
            ratings.append(user: u, item: i, rating: Float(1 + (Int(u) + Int(i) * 3) % 5))
        }
        var carver = RankingTuner()
        carver.folds = 3
        let folds = (0..<3).map { carver.carve(ratings, fold: $0) }
        var options = TrainingOptions()
        options.factors = 4
        options.epochs = 5
        options.threads = 1  // deterministic SGD: the test refits the same models
        var tuner = RatingTuner()
        tuner.settings = [(0.02, 0.1)]
        let choice = try tuner.choose(
            fit: folds[0].fit, held: folds[0].held, userCount: 150, itemCount: 80, scale: 1...5, options: options,
            fixLearningRate: false, fixRegularization: false, fixEpochs: false, otherFolds: Array(folds.dropFirst()),
            isCancelled: nil, progress: nil)
        // The same simulation, fold by fold, on models fitted the same way.
        var without = 0.0
        var with: [Double] = []
        for fold in folds {
            let model = try Trainer.train(
                train: fold.fit, test: fold.held, userCount: 150, itemCount: 80, scale: 1...5, options: options,
                isCancelled: nil
            ).model
            let scores = tuner.simulateUpdates(
                model: model, fit: fold.fit, held: fold.held, userCount: 150, itemCount: 80, learningRate: 0.02,
                regularization: 0.1, options: options)
            without += scores.without / 3
            if with.isEmpty { with = [Double](repeating: 0, count: scores.with.count) }
            for c in scores.with.indices { with[c] += scores.with[c] / 3 }
        }
        #expect(with.count == tuner.foldInPriors.count * tuner.updateScales.count)
        let best = try #require(with.indices.min { with[$0] < with[$1] })
        #expect(abs(choice.probeRMSEWithoutUpdates - without) < 1e-9)
        #expect(abs(choice.probeRMSEWithUpdates - with[best]) < 1e-9)
        #expect(choice.foldInPrior == tuner.foldInPriors[best / tuner.updateScales.count])
        #expect(choice.updateLearningRate == 0.02 * tuner.updateScales[best % tuner.updateScales.count])
    }

    /// Without timestamps, the light-user rule is chosen on every fold's validation users: a rule that wins on
    /// the first fold alone but loses on the others is not taken.
    @Test func lightRuleCountsEveryFold() {
        // Three users a fold: two light (3 ratings), one heavy (50). One alternative: the popular list.
        func fold(main: [Double], popular: [Double]) -> RankingTuner.LightAlternatives {
            RankingTuner.LightAlternatives(
                counts: [3, 3, 50], mainPerUser: main, byCooccurrence: [0, 0, 0], byPopularity: popular,
                alternatives: [(.popular, 0, popular)])
        }
        let first = fold(main: [0.1, 0.1, 0.5], popular: [0.3, 0.3, 0])  // light users gain 0.4 here
        let second = fold(main: [0.4, 0.4, 0.5], popular: [0.1, 0.1, 0])  // and lose 0.6 here
        let alone = RankingTuner.lightRule([first])
        #expect(alone.below == 5 && alone.ranker == .popular)
        #expect(abs(alone.meanNDCG - 1.1 / 3) < 1e-12)
        let both = RankingTuner.lightRule([first, second])
        #expect(both.below == 0)
        #expect(abs(both.meanNDCG - 2.0 / 6) < 1e-12)
    }
}
