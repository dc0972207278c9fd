import Foundation
import MFEngine
import MFStore

extension Recommender {
    /// Where the top quarter of a rating scale starts (4 on 1–5): what the popular list counts and what
    /// validation calls relevant.
    static func topQuarter(of scale: ClosedRange<Double>) -> Double {
        scale.lowerBound + 0.75 * (scale.upperBound - scale.lowerBound)
    }

    /// Ranks items by their count of training ratings in the top quarter of the scale (ties by id) and
    /// keeps the first 1,000, each with its mean over training and test ratings.
    static func rankPopular(train: RatingTriples, test: RatingTriples, itemCount: Int, scale: ClosedRange<Double>)
        -> [PopularItem]
    {
        let threshold = Float(topQuarter(of: scale))
        var counts = [Int](repeating: 0, count: itemCount)
        var sums = [Double](repeating: 0, count: itemCount), n = [Int](repeating: 0, count: itemCount)
        for (i, r) in zip(train.items, train.ratings) where r >= threshold { counts[Int(i)] += 1 }
        for set in [train, test] {
            for (i, r) in zip(set.items, set.ratings) where Int(i) < itemCount {
                sums[Int(i)] += Double(r)
                n[Int(i)] += 1
            }
        }
        var ranked: [Int] = (0..<itemCount).filter { counts[$0] > 0 }
        ranked.sort { (a: Int, b: Int) -> Bool in counts[a] != counts[b] ? counts[a] > counts[b] : a < b }
        return ranked.prefix(1000).map { PopularItem(id: Int32($0), mean: sums[$0] / Double(n[$0])) }
    }
}

/// One entry of the popular-items fallback.
struct PopularItem: Codable, Sendable {
    var id: Int32
    var mean: Double
}
