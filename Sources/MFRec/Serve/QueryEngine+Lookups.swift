import Foundation
import MFEngine
import MFStore

extension QueryEngine {
    /// The predicted rating of (user, item); the fallback μ + known bias when either has no vector.
    /// - Parameters:
    ///   - userKey: the user's key.
    ///   - itemKey: the item's key.
    /// - Returns: the rating (clipped to the scale), and whether the fallback gave it.
    /// - Throws: `MFRecError.unknownUser`/`.unknownItem` for keys the database does not have, `.noModel`
    ///   before the first `train`, `.reloadFailed`.
    public func predict(user userKey: String, item itemKey: String) throws -> (rating: Double, fallback: Bool) {
        let model = try current().model
        guard let item = try pool.read({ try $0.itemID(forKey: itemKey) }) else {
            throw MFRecError.unknownItem(itemKey)
        }
        let user = try resolveUser(userKey, in: model)
        let knownUser = user?.hasVector ?? false
        return (
            Double(model.predictOrFallback(user: user?.id ?? 0, knownUser: knownUser, item: item)),
            !(knownUser && model.hasItem(item))
        )
    }

    /// The items nearest to `item` by cosine similarity of their vectors: the rating model's item vectors
    /// (`by: .rating`, the default) or the ranking model's, weighted by its filter (`by: .ranking`, see
    /// `RankingModel.cosine`).
    /// - Parameters:
    ///   - key: the item's key.
    ///   - n: how many items.
    ///   - ranker: whose vectors: `.rating` or `.ranking`.
    /// - Returns: the nearest items, most similar first (the item itself and forgotten items left out).
    /// - Throws: `MFRecError.unknownItem`, `.noItemVector` (no vector to compare), `.noRankingModel`, `.noModel`.
    public func similar(item key: String, n: Int = 10, by ranker: Ranker = .rating) throws -> [SimilarItem] {
        guard let id = try pool.read({ try $0.itemID(forKey: key) }) else { throw MFRecError.unknownItem(key) }
        let forgotten = try consistentState { state, _ in Set(try forgottenItems(state)) }
        let hits: [(item: Int32, score: Float)]
        if ranker == .ranking {
            guard let (ranking, _) = try rankingModel() else { throw MFRecError.noRankingModel }
            guard id < ranking.itemCount else { throw MFRecError.noItemVector(key) }
            hits = ranking.similar(to: id, n: n + forgotten.count)
        } else {
            hits = try consistently { _, matrix in
                guard id < matrix.itemCount else { throw MFRecError.noItemVector(key) }
                return matrix.similar(to: id, n: n + forgotten.count)
            }
        }
        return try hits.filter { !forgotten.contains($0.item) }.prefix(n).enumerated().map { rank, hit in
            let info = try self.item(Int(hit.item))
            return SimilarItem(
                rank: rank + 1, item: info?.key ?? String(hit.item), title: info?.title, similarity: Double(hit.score))
        }
    }
}
