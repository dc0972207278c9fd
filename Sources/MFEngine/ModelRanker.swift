/// Top-n over an in-memory `FactorModel` (any snapshot, not only the live one): the same fused
/// score-and-heap pass as `ItemMatrix.topN`, on the model's own padded rows.
public struct ModelRanker: Sendable {
    /// The model ranked with.
    public let model: FactorModel

    /// Ranks with `model`.
    public init(model: FactorModel) { self.model = model }

    /// The n best items for `user` by p_u·q_i + b_i; `excluded` sorted ascending.
    public func topN(user: Int, n: Int, excluded: [Int32]) -> [(item: Int32, score: Float)] {
        // The scan below reads through raw pointers: a user past the model's rows is a caller's bug.
        precondition(user >= 0 && user < model.userCount, "ModelRanker.topN: user \(user) has no row")
        var top = TopN(capacity: n)
        let stride = model.stride
        var skip = 0
        model.userFactors.withUnsafeBufferPointer { userRows in
            model.itemFactors.withUnsafeBufferPointer { itemRows in
                let p = UnsafeRawPointer(userRows.baseAddress! + user * stride)
                for i in 0..<model.itemCount {
                    if skip < excluded.count && excluded[skip] == Int32(i) {
                        skip += 1
                        continue
                    }
                    let q = UnsafeRawPointer(itemRows.baseAddress! + i * stride)
                    var acc = SIMD8<Float>()
                    for c in 0..<stride / 8 {
                        acc +=
                            p.loadUnaligned(fromByteOffset: c * 32, as: SIMD8<Float>.self)
                            * q.loadUnaligned(fromByteOffset: c * 32, as: SIMD8<Float>.self)
                    }
                    let score = acc.sum() + (model.useBias ? model.itemBias[i] : 0)
                    if score >= top.threshold { top.offer(score: score, item: Int32(i)) }
                }
            }
        }
        return top.sorted()
    }
}

extension FactorModel {
    /// `predict(user:item:)` with the dot product over the padded rows in SIMD (batch prediction's inner
    /// loop). Both indices must have rows (checked).
    public func fastPredict(user u: Int, item i: Int) -> Float {
        precondition(u >= 0 && u < userCount && i >= 0 && i < itemCount, "fastPredict: no row")
        let dot = userFactors.withUnsafeBufferPointer { users in
            itemFactors.withUnsafeBufferPointer { items in
                let p = UnsafeRawPointer(users.baseAddress! + u * stride)
                let q = UnsafeRawPointer(items.baseAddress! + i * stride)
                var acc = SIMD8<Float>()
                for c in 0..<stride / 8 {
                    acc +=
                        p.loadUnaligned(fromByteOffset: c * 32, as: SIMD8<Float>.self)
                        * q.loadUnaligned(fromByteOffset: c * 32, as: SIMD8<Float>.self)
                }
                return acc.sum()
            }
        }
        return clip(useBias ? globalMean + userBias[u] + itemBias[i] + dot : dot)
    }
}
