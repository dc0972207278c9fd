import Foundation
import Testing

@testable import MFRec
@testable import MFRecServer

/// The hand-written JSON of the recommendation route decodes to the same list `JSONEncoder` would have
/// written, for titles and ids that need escaping, explanations and cold lists.
@Suite struct JSONTextTests {
    @Test func recommendationListsRoundTrip() throws {
        let awkward = [
            "plain", "quote \" and backslash \\", "tab\tnew\nline\r", "control \u{01}\u{1f}", "ünïcødé ✓ 🙂", "",
            "/slash",
        ]
        var lists: [RecommendationList] = []
        for (n, text) in awkward.enumerated() {
            var items: [Recommendation] = []
            for rank in 1...3 {
                var item = Recommendation(
                    rank: rank, item: "\(text)-\(rank)", title: rank == 2 ? nil : text,
                    predictedRating: Double(rank) * 1.234567891234 + 0.1, because: nil)
                if n % 2 == 0 {
                    item.because = [
                        .init(item: text, title: rank == 3 ? nil : text, rating: 4.5, similarity: 0.987654321),
                        .init(item: "x", title: nil, rating: 1, similarity: -0.25),
                    ]
                }
                items.append(item)
            }
            lists.append(RecommendationList(user: text, ranking: n % 2 == 0 ? .ranking : .popular, items: items))
        }
        lists.append(RecommendationList(user: "nobody", ranking: .popular, items: []))
        for list in lists {
            let bytes = JSONText.encode(list)
            let decoded = try JSONDecoder().decode(RecommendationList.self, from: Data(bytes))
            #expect(decoded == list, "\(String(decoding: bytes, as: UTF8.self))")
            // The same keys, in the same (sorted) order as the encoder's output.
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            let reference = try JSONSerialization.jsonObject(with: try encoder.encode(list)) as? NSDictionary
            let ours = try JSONSerialization.jsonObject(with: Data(bytes)) as? NSDictionary
            #expect(reference == ours)
        }
    }
}
