import Foundation
import TestFixtures
import Testing

@testable import MFEngine
@testable import MFRec

/// Issue 13 (newcomers): when the newcomer simulation chooses a recency decay, a light user's default list is the
/// co-occurrence embedding's with each rated item weighted by its recency (newest 1, each older one `decay` times
/// the next newer one), blended with popularity — the same list from `recommend`, `recommend --all` and an
/// anonymous session with the ratings in the same order; the order of the ratings changes it, the ranker asked by
/// name (`by: .cooccurrence`) does not weight them.
@Suite struct LightRecencyTests {
    @Test(.enabled(if: Fixtures.haveMovieLens)) func aLightUsersListWeightsTheirNewerRatingsMore() throws {
        let (rec, dir) = try SessionTests.trained()
        defer { try? FileManager.default.removeItem(at: dir) }
        let engine = try rec.queries()
        let (_, choice) = try #require(try engine.rankingModel())
        #expect(choice.lightRanker == .cooccurrence && choice.lightBelow > 6, "the rule this test needs: \(choice)")
        let decay = choice.lightDecay
        #expect(decay < 1, "the newcomer simulation chose no recency decay on this split: \(choice)")
        let embedding = try #require(try engine.cooccurrence())
        let keys = try rec.store.itemKeys()
        // Six items rated one at a time (no timestamps: the order written is the time order), by two new users in
        // opposite orders.
        let items = ["50", "181", "1", "121", "258", "100"]
        for (user, order) in [("forward", items), ("backward", Array(items.reversed()))] {
            for item in order { try rec.rate(user: user, item: item, rating: 4) }
        }
        let fresh = try rec.queries()
        let (liveRanking, _) = try #require(try fresh.rankingModel())
        func byHand(_ order: [String]) throws -> [String] {
            let ids = try order.map { try #require(keys.firstIndex(of: $0)).asInt32 }
            return try #require(
                embedding.topN(
                    rated: ids, n: 10, excluded: Set(ids), prior: liveRanking.popularity,
                    weight: choice.lightPopularityWeight,
                    ratedWeights: CooccurrenceEmbedding.recencyWeights(count: ids.count, decay: decay))
            ).map { keys[Int($0.item)] }
        }
        let forward = try fresh.recommend(user: "forward", n: 10),
            backward = try fresh.recommend(user: "backward", n: 10)
        #expect(forward.ranking == .cooccurrence && backward.ranking == .cooccurrence)
        #expect(forward.items.map(\.item) == (try byHand(items)))
        #expect(backward.items.map(\.item) == (try byHand(items.reversed())))
        #expect(forward.items.map(\.item) != backward.items.map(\.item), "the order of the ratings changed nothing")
        // Asked by name, co-occurrence weights every rating alike: the same list for both orders.
        let named = try ["forward", "backward"].map { try fresh.recommend(user: $0, n: 10, by: .cooccurrence) }
        #expect(named[0].items.map(\.item) == named[1].items.map(\.item))
        // recommend --all gives both users the same lists as recommend.
        let out = dir.appendingPathComponent("all.csv").path
        _ = try fresh.recommendAll(n: 10, to: out, batch: 4, threads: 2)
        let rows = try String(contentsOfFile: out, encoding: .utf8).split(separator: "\n").map {
            $0.split(separator: ",").map(String.init)
        }
        for list in [forward, backward] {
            #expect(rows.filter { $0[0] == list.user }.map { $0[2] } == list.items.map(\.item), "\(list.user)")
        }
        // An anonymous session with the ratings in the same order is ranked alike.
        let session = try fresh.recommend(ratings: items.reversed().map { ($0, 4.0) }, n: 10).list
        #expect(session.items.map(\.item) == backward.items.map(\.item))
    }
}

extension Int {
    fileprivate var asInt32: Int32 { Int32(self) }
}
