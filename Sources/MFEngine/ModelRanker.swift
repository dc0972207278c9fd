/// Top-n over an in-memory `FactorModel` (any snapshot, not only the live one): the same fused
/// score-and-heap pass as `ItemMatrix.topN`, on the model's own padded rows.
public struct ModelRanker: Sendable {
    /// The model ranked with.
    public let model: FactorModel

    /// Ranks with `model`.
    /// - Parameter model: the model.
    public init(model: FactorModel) { self.model = model }

    /// The n best items for `user` by p_u·q_i + b_i; `excluded` sorted ascending.
    /// - Parameters:
    ///   - user: the user's row (it must exist).
    ///   - n: how many items.
    ///   - excluded: item ids left out, ascending.
    /// - Returns: (item, score) pairs, best first (ties by smaller id).
    public func topN(user: Int, n: Int, excluded: [Int32]) -> [(item: Int32, score: Float)] {
        var top = TopN(capacity: n)
        model.scanItems(user: user, excluded: excluded, into: &top)
        return top.sorted()
    }
}
