import Foundation
import TestFixtures
import Testing

@testable import MFRec
@testable import MFStore

/// `recommend(ratings:)`: an anonymous session's list is the list a stored user with the same ratings, added in one
/// `ingest --update` batch, gets — by default (below and above the light-user threshold validation chose) and by
/// each ranker — and asking for it writes nothing, on a database opened read-only.
@Suite struct SessionTests {
    /// ML-100K's fixed 80/20 training part, trained with tuning as `mfrec train --test-fraction 0` does (the light-user
    /// rule then comes from validation: on this split, co-occurrence blended with popularity below 11 ratings).
    static func trained() throws -> (Recommender, URL) {
        let dir = tempFolder()
        let split = Fixtures.movieLens100K.deletingLastPathComponent().appendingPathComponent("ml-100k-split")
        let rec = try Recommender(path: dir.appendingPathComponent("s.db").path)
        try rec.ingest(path: split.appendingPathComponent("train.tsv").path)
        var request = TrainRequest()
        request.testFraction = 0
        try rec.train(request)
        return (rec, dir)
    }

    @Test(.enabled(if: Fixtures.haveMovieLens)) func aSessionIsRankedAsAStoredUserWithItsRatings() throws {
        let (rec, dir) = try Self.trained()
        defer { try? FileManager.default.removeItem(at: dir) }
        let choice = try #require(try rec.queries().rankingModel()?.1)
        #expect(choice.lightBelow > 5 && choice.lightBelow <= 30, "the rule this test straddles: \(choice)")
        // Two sessions from stored users' ratings, in their stored order: 5 ratings (a light user) and 30.
        let store = rec.store, keys = try store.itemKeys()
        func ratings(of key: String, count: Int) throws -> [(item: String, rating: Double)] {
            try store.ratings(ofUser: try #require(try store.userID(forKey: key))).prefix(count).map {
                (keys[$0.item], $0.rating)
            }
        }
        let sessions = [
            ("new-light", try ratings(of: "13", count: 5)), ("new-heavy", try ratings(of: "92", count: 30)),
        ]
        // Each session in turn: its anonymous lists on a read-only open, then its ratings stored for a new user in one
        // batch (one session's SGD steps move the items it rated, which may sit in the other's list).
        for (name, given) in sessions {
            let readOnly = try Recommender(path: rec.path, mode: .read)
            let before = try dump(readOnly.store)
            var anonymous: [Ranker?: RecommendationList] = [:]
            for by in [nil, Ranker.ranking, .rating, .cooccurrence] {
                anonymous[by] = try readOnly.queries().recommend(ratings: given, n: 10, by: by).list
            }
            #expect(try dump(readOnly.store) == before, "a session wrote to the database")
            #expect(anonymous[nil]!.ranking == (given.count < choice.lightBelow ? choice.lightRanker : .ranking))
            let lines = given.map { "\(name)\t\($0.item)\t\(Int($0.rating))\t1" }
            try rec.ingestUpdating(path: writeFile(dir, "\(name).data", lines.joined(separator: "\n") + "\n"))
            let engine = try rec.queries()
            for by in [nil, Ranker.ranking, .rating, .cooccurrence] {
                let stored = try engine.recommend(user: name, n: 10, by: by), session = anonymous[by]!
                #expect(stored.ranking == session.ranking, "\(name) by \(String(describing: by))")
                #expect(stored.items.map(\.item) == session.items.map(\.item), "\(name) by \(String(describing: by))")
                for (a, b) in zip(stored.items, session.items) {
                    #expect(abs(a.predictedRating - b.predictedRating) < 1e-4, "\(name) \(a.item)")
                }
            }
        }
    }

    @Test(.enabled(if: Fixtures.haveMovieLens)) func unknownItemsAreLeftOutAndCounted() throws {
        let dir = tempFolder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let rec = try Recommender(path: dir.appendingPathComponent("u.db").path)
        try rec.ingest(path: Fixtures.uData)
        var request = TrainRequest()
        request.tune = false
        request.options.epochs = 5
        try rec.train(request)
        let engine = try rec.queries()
        let (list, ignored) = try engine.recommend(ratings: [("50", 5), ("no-such-item", 4), ("181", 5)], n: 5)
        #expect(ignored == 1 && list.items.count == 5 && !list.coldStart)
        #expect(!list.items.contains { ["50", "181"].contains($0.item) })
        let none = try engine.recommend(ratings: [("no-such-item", 4)], n: 5)
        #expect(none.ignored == 1 && none.list.coldStart)
        #expect(throws: MFRecError.self) { try engine.recommend(ratings: [("50", 7)], n: 5) }
    }
}
