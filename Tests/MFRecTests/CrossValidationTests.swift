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
        #expect(throws: TrainingError.self) { try rec.crossValidate(folds: 1, request: request) }
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
}
