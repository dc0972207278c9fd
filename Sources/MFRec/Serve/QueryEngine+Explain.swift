import Foundation
import MFEngine
import MFStore

extension QueryEngine {
    /// The user's rated items that co-occur most with `item` (cosine of their embedding vectors).
    func cooccurrenceReasons(
        for item: Int, rated: [(item: Int, rating: Double)], embedding: CooccurrenceEmbedding
    ) throws
        -> [Recommendation.Reason]
    {
        try closest(among: rated) { candidate in
            let similarity = embedding.cosine(candidate, item)
            return similarity > 0 ? similarity : nil
        }
    }

    /// The user's items rated at or above their own mean (and at least the scale's midpoint), most
    /// similar to `item` by cosine of the item vectors: "because you rated …".
    func reasons(for item: Int, rated: [(item: Int, rating: Double)], model: FactorModel, matrix: ItemMatrix)
        throws
        -> [Recommendation.Reason]
    {
        guard !rated.isEmpty else { return [] }
        let mean = rated.reduce(0) { $0 + $1.rating } / Double(rated.count)
        let midpoint = Double(model.scaleMin + model.scaleMax) / 2
        let liked = rated.filter { $0.rating >= max(mean, midpoint) }
        let target = matrix.item(item).vector
        let targetNorm = norm(target)
        guard targetNorm > 0 else { return [] }
        return try closest(among: liked) { candidate in
            guard candidate < matrix.itemCount else { return nil }
            let v = matrix.item(candidate).vector
            let n = norm(v)
            return n > 0 ? zip(v, target).reduce(0) { $0 + $1.0 * $1.1 } / (n * targetNorm) : nil
        }
    }

    /// The (at most) `count` candidates with the largest similarity (nil: not a candidate), as reasons.
    func closest(
        among candidates: [(item: Int, rating: Double)], count: Int = 3,
        similarity: (Int) -> Float?
    ) throws -> [Recommendation.Reason] {
        var top = TopN(capacity: count)
        for entry in candidates {
            if let s = similarity(entry.item) { top.offer(score: s, item: Int32(entry.item)) }
        }
        let ratingOf = Dictionary(uniqueKeysWithValues: candidates.map { ($0.item, $0.rating) })
        return try top.sorted().map { hit in
            let info = try self.item(Int(hit.item))
            return .init(
                item: info?.key ?? String(hit.item), title: info?.title, rating: ratingOf[Int(hit.item)] ?? 0,
                similarity: Double(hit.score))
        }
    }

    func norm(_ v: [Float]) -> Float { v.reduce(0) { $0 + $1 * $1 }.squareRoot() }

    /// The popular-items fallback: items ranked by how many ratings in the top quarter of the scale
    /// they received in the live model's training data (ties by id), minus `excluding`; the rating shown
    /// is the item's mean rating.
    func popular(n: Int, excluding: Set<Int32>) throws -> [Recommendation] {
        let ranked = try popularList()
        var out: [Recommendation] = []
        for entry in ranked where !excluding.contains(entry.id) {
            guard out.count < n else { break }
            let info = try self.item(Int(entry.id))
            out.append(
                Recommendation(
                    rank: out.count + 1, item: info?.key ?? String(entry.id), title: info?.title,
                    predictedRating: entry.mean))
        }
        return out
    }
}
