import Foundation
import Testing

@testable import MFEngine

/// A dense rank-3 matrix with values in about 1…5 (no noise), split 90/10 by a seeded coin.
func lowRankProblem(users: Int = 120, items: Int = 90, seed: UInt64 = 1) -> (train: RatingTriples, test: RatingTriples)
{
    var rng = SeededGenerator(seed: seed)
    let rank = 3
    let p = (0..<users * rank).map { _ in Float(rng.nextGaussian()) * 0.6 }
    let q = (0..<items * rank).map { _ in Float(rng.nextGaussian()) * 0.6 }
    var train = RatingTriples(), test = RatingTriples()
    for u in 0..<users {
        for i in 0..<items {
            var r: Float = 3
            for f in 0..<rank { r += p[u * rank + f] * q[i * rank + f] }
            if rng.nextDouble() < 0.1 {
                test.append(user: Int32(u), item: Int32(i), rating: r)
            } else {
                train.append(user: Int32(u), item: Int32(i), rating: r)
            }
        }
    }
    return (train, test)
}

@Suite struct TrainerTests {
    func options(_ body: (inout TrainingOptions) -> Void = { _ in }) -> TrainingOptions {
        var o = TrainingOptions()
        o.factors = 8
        o.epochs = 40
        o.regularization = 0.001
        o.biasRegularization = 0.001
        o.learningRate = 0.02
        o.learningRateDecay = 0.98
        o.initScale = 0.1
        body(&o)
        return o
    }

    @Test func recoversALowRankMatrix() throws {
        let (train, test) = lowRankProblem()
        // Predicting the mean scores RMSE ≈ the ratings' spread; a rank-3 matrix seen at 90% density
        // is fully determined, so k = 8 with little regularization must get far below it.
        let mean = train.ratings.reduce(0, +) / Float(train.count)
        let baseline = ErrorMetrics(predictions: [Float](repeating: mean, count: test.count), truth: test.ratings).rmse
        let result = try Trainer.train(
            train: train, test: test, userCount: 120, itemCount: 90, scale: -10...20, options: options())
        #expect(baseline > 0.5)
        #expect(result.final!.rmse < 0.1, "test RMSE \(result.final!.rmse), baseline \(baseline)")
        #expect(result.unseenTestPairs == 0)
    }

    @Test func sameSeedSameModelWhateverTheThreads() throws {
        let (train, test) = lowRankProblem(seed: 2)
        let one = try Trainer.train(
            train: train, test: test, userCount: 120, itemCount: 90, scale: 1...5,
            options: options {
                $0.threads = 1
                $0.epochs = 5
            })
        let again = try Trainer.train(
            train: train, test: test, userCount: 120, itemCount: 90, scale: 1...5,
            options: options {
                $0.threads = 1
                $0.epochs = 5
            })
        let two = try Trainer.train(
            train: train, test: test, userCount: 120, itemCount: 90, scale: 1...5,
            options: options {
                $0.threads = 2
                $0.epochs = 5
            })
        #expect(one.model == again.model)
        #expect(one.model == two.model)
        #expect(one.history.map(\.trainMSE) == two.history.map(\.trainMSE))
        let other = try Trainer.train(
            train: train, test: test, userCount: 120, itemCount: 90, scale: 1...5,
            options: options {
                $0.seed = 43
                $0.epochs = 5
            })
        #expect(other.model != one.model)
    }

    @Test func nonnegativeKeepsEveryFactorAtLeastZero() throws {
        let (train, test) = lowRankProblem(seed: 3)
        let result = try Trainer.train(
            train: train, test: test, userCount: 120, itemCount: 90, scale: 1...5,
            options: options {
                $0.nonnegative = true
                $0.epochs = 10
            })
        #expect(result.model.userFactors.allSatisfy { $0 >= 0 })
        #expect(result.model.itemFactors.allSatisfy { $0 >= 0 })
        #expect(result.model.userFactors.contains { $0 > 0 })
    }

    @Test func divergenceIsCaughtAndNamesTheEpoch() {
        let (train, test) = lowRankProblem(seed: 4)
        let error = #expect(throws: EngineError.self) {
            try Trainer.train(
                train: train, test: test, userCount: 120, itemCount: 90, scale: 1...5,
                options: options {
                    $0.learningRate = 50
                    $0.learningRateDecay = 1
                })
        }
        guard case .diverged(let epoch, _, let lr) = error else {
            Issue.record("expected divergence, got \(String(describing: error))")
            return
        }
        #expect(epoch >= 1)
        #expect(lr == 50)
        #expect(error!.description.contains("smaller --learning-rate"))
    }

    @Test func unseenUsersAndItemsUseTheFallback() throws {
        let train = RatingTriples(users: [0, 0, 1, 1], items: [0, 1, 0, 1], ratings: [5, 3, 4, 2])
        // user 2 and item 2 have no training rating.
        let test = RatingTriples(users: [2, 0, 2], items: [0, 2, 2], ratings: [4, 4, 4])
        let result = try Trainer.train(
            train: train, test: test, userCount: 3, itemCount: 3, scale: 1...5,
            options: options { $0.epochs = 3 })
        #expect(result.unseenTestPairs == 3)
        let m = result.model
        let (metrics, unseen) = Trainer.evaluate(
            m, on: test, seenUser: [true, true, false], seenItem: [true, true, false])
        #expect(unseen == 3)
        let expected: [Float] = [
            m.clip(m.globalMean + m.itemBias[0]), m.clip(m.globalMean + m.userBias[0]), m.clip(m.globalMean),
        ]
        #expect(metrics == ErrorMetrics(predictions: expected, truth: test.ratings))
        // Cold rows are zeroed after training.
        #expect(m.userVector(2).allSatisfy { $0 == 0 } && m.userBias[2] == 0)
        #expect(m.itemVector(2).allSatisfy { $0 == 0 } && m.itemBias[2] == 0)
    }

    /// The per-epoch test metrics are computed on two threads when the test set is large (about 5 s of a 20-epoch
    /// 25M training on one): the figures must not depend on that.
    @Test func evaluationOnTwoThreadsEqualsOneThread() throws {
        let (train, _) = lowRankProblem(seed: 11)
        let model = try Trainer.train(
            train: train, test: nil, userCount: 120, itemCount: 90, scale: 1...5, options: options { $0.epochs = 3 }
        ).model
        // 200,000 pairs (three parts of at least 65,536), some of them with a user or item training never saw.
        var rng = SeededGenerator(seed: 3)
        var test = RatingTriples()
        for _ in 0..<200_000 {
            test.append(
                user: Int32.random(in: 0..<125, using: &rng), item: Int32.random(in: 0..<92, using: &rng),
                rating: Float(Int.random(in: 1...5, using: &rng)))
        }
        let seenUser = (0..<120).map { $0 != 7 }, seenItem = (0..<90).map { $0 != 4 }
        let one = Trainer.evaluate(model, on: test, seenUser: seenUser, seenItem: seenItem, threads: 1)
        let two = Trainer.evaluate(model, on: test, seenUser: seenUser, seenItem: seenItem, threads: 2)
        #expect(one.metrics == two.metrics)
        #expect(one.unseen == two.unseen && one.unseen > 0)
        // And both are the plain loop's figures.
        var predictions: [Float] = []
        for j in 0..<test.count {
            let u = Int(test.users[j]), i = Int(test.items[j])
            let knownUser = u < 120 && seenUser[u], knownItem = i < 90 && seenItem[i]
            predictions.append(
                knownUser && knownItem
                    ? model.predict(user: u, item: i)
                    : model.fallbackPrediction(user: u, knownUser: knownUser, item: i, knownItem: knownItem))
        }
        #expect(two.metrics == ErrorMetrics(predictions: predictions, truth: test.ratings))
    }

    @Test func plainDotProductModelHasNoBiases() throws {
        let (train, test) = lowRankProblem(seed: 5)
        let result = try Trainer.train(
            train: train, test: test, userCount: 120, itemCount: 90, scale: 1...5,
            options: options {
                $0.useBias = false
                $0.epochs = 10
            })
        #expect(result.model.userBias.allSatisfy { $0 == 0 } && result.model.itemBias.allSatisfy { $0 == 0 })
        let u = 3, i = 7
        let dot = zip(result.model.userVector(u), result.model.itemVector(i)).reduce(Float(0)) { $0 + $1.0 * $1.1 }
        #expect(abs(result.model.rawPrediction(user: u, item: i) - dot) < 1e-5)
    }

    @Test func emptyTrainingSetIsAnError() {
        #expect(throws: EngineError.noTrainingRatings) {
            try Trainer.train(
                train: RatingTriples(), test: nil, userCount: 1, itemCount: 1, scale: 1...5, options: TrainingOptions())
        }
    }
}

@Suite struct MetricsTests {
    @Test func errorMetricsByHand() {
        let m = ErrorMetrics(predictions: [1, 2, 3], truth: [2, 4, 3])
        #expect(m.count == 3)
        #expect(abs(m.mae - 1.0) < 1e-12)  // (1 + 2 + 0) / 3
        #expect(abs(m.mse - 5.0 / 3) < 1e-12)  // (1 + 4 + 0) / 3
        #expect(abs(m.rmse - (5.0 / 3).squareRoot()) < 1e-12)
    }

    @Test func rankingMetricsByHand() {
        var acc = RankingAccumulator(k: 3, itemCount: 10)
        // User A: ranked [1, 2, 3], relevant {2, 9}: one hit at rank 2.
        acc.add(ranked: [1, 2, 3], relevant: [2, 9])
        // User B: ranked [4, 5, 6], relevant {4}: hit at rank 1.
        acc.add(ranked: [4, 5, 6], relevant: [4])
        // User C has nothing relevant: counts for coverage only.
        acc.add(ranked: [7, 1, 2], relevant: [])
        let r = acc.result
        #expect(r.users == 2)
        #expect(abs(r.precision - (1.0 / 3 + 1.0 / 3) / 2) < 1e-12)
        #expect(abs(r.recall - (0.5 + 1.0) / 2) < 1e-12)
        let ndcgA = (1 / log2(3.0)) / (1 + 1 / log2(3.0))
        #expect(abs(r.ndcg - (ndcgA + 1) / 2) < 1e-12)
        #expect(abs(r.map - ((0.5 / 2) + 1) / 2) < 1e-12)  // AP_A = (1/2)/min(2,3)
        #expect(r.hitRate == 1)
        #expect(abs(r.coverage - 0.7) < 1e-12)  // items 1…7 of 10
    }
}

@Suite struct FactorModelEncodingTests {
    @Test func roundTrips() throws {
        let (train, _) = lowRankProblem(users: 20, items: 15, seed: 6)
        var o = TrainingOptions()
        o.factors = 5
        o.epochs = 2
        let model = try Trainer.train(train: train, test: nil, userCount: 20, itemCount: 15, scale: 1...5, options: o)
            .model
        #expect(try FactorModel(decoding: model.encoded()) == model)
    }

    @Test func truncatedOrForeignBytesAreErrorsNotCrashes() throws {
        var model = FactorModel(factors: 3, userCount: 2, itemCount: 2, useBias: true, globalMean: 3, scale: 1...5)
        model.userFactors[0] = 1
        let bytes = model.encoded()
        for cut in [0, 3, 20, bytes.count - 1] {
            #expect(throws: EngineError.self) { try FactorModel(decoding: Array(bytes.prefix(cut))) }
        }
        var foreign = bytes
        foreign[0] ^= 0xFF
        #expect(throws: EngineError.self) { try FactorModel(decoding: foreign) }
    }
}
