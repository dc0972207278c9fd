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
}
