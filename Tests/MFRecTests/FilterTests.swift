import Foundation
import Testing

@testable import MFRec
@testable import MFStore

/// Issue 17: filters at query time are applied inside the scan, so a filtered list is exactly the top-n of
/// a brute-force filtered ranking of every item, for every ranker.
@Suite(.enabled(if: haveML100K)) struct FilterTests {
    @Test func filteredListsAreTheTopNOfTheAllowedItems() throws {
        let (rec, _) = try ServingTests.trained()
        let engine = try rec.queries()
        let store = rec.store
        let keys = try store.itemKeys()
        let counts = try store.itemRatingCounts()
        let comedies = Set(try store.itemIDs(genre: "Comedy").map { keys[Int($0)] })
        #expect(comedies.count > 300 && comedies.count < 700)
        // User 405 rated 737 items (ranked among the other 945); user 1 rated 272, user 850 only 20.
        for user in ["405", "1", "850"] {
            for ranker in [Ranker.ranking, .rating, .cooccurrence, .popular] {
                // Every item the user did not rate, best first: the brute-force ranking to filter.
                let full = try engine.recommend(user: user, n: 100_000, by: ranker).items.map(\.item)
                // The popular list holds only items with ratings in the top quarter of the scale.
                guard full.count > 1_000 || user == "405" || ranker == .popular else {
                    Issue.record("user \(user) by \(ranker): only \(full.count) items ranked")
                    continue
                }
                let cut = min(1_000, full.count / 2)
                let cases: [(String, ItemFilter, (String) -> Bool)] = [
                    (
                        "the unfiltered top \(cut) excluded", ItemFilter(excluded: Set(full.prefix(cut))),
                        { !full.prefix(cut).contains($0) }
                    ),
                    (
                        "only every third item",
                        ItemFilter(only: Set(keys.enumerated().filter { $0.offset % 3 == 0 }.map(\.element))),
                        { keys.firstIndex(of: $0)! % 3 == 0 }
                    ),
                    ("comedies", ItemFilter(genre: "comedy"), { comedies.contains($0) }),
                    (
                        "at least 100 ratings", ItemFilter(minRatings: 100),
                        { counts[keys.firstIndex(of: $0)!] >= 100 }
                    ),
                    (
                        "all four",
                        ItemFilter(
                            excluded: Set(full.prefix(50)), only: Set(keys.prefix(1_200)), genre: "Comedy",
                            minRatings: 20),
                        { item in
                            !full.prefix(50).contains(item) && keys.firstIndex(of: item)! < 1_200
                                && comedies.contains(item)
                                && counts[keys.firstIndex(of: item)!] >= 20
                        }
                    ),
                ]
                for (name, filter, allowed) in cases {
                    let expected = Array(full.filter(allowed).prefix(10))
                    let got = try engine.recommend(user: user, n: 10, by: ranker, filter: filter).items.map(\.item)
                    #expect(got == expected, "user \(user), \(ranker), \(name)")
                }
            }
        }
        #expect(throws: MFRecError.self) { try engine.recommend(user: "1", filter: ItemFilter(genre: "Jazz")) }
    }
}
