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
                    let score =
                        FactorModel.paddedDot(p, q, blocks: stride / 8) + (model.useBias ? model.itemBias[i] : 0)
                    if score >= top.threshold { top.offer(score: score, item: Int32(i)) }
                }
            }
        }
        return top.sorted()
    }
}

extension FactorModel {
    /// The dot product of two padded rows (`blocks` runs of 8 floats each), in SIMD: the one inner loop of
    /// `ModelRanker.topN` and `predictPairs`.
    @inline(__always) static func paddedDot(_ p: UnsafeRawPointer, _ q: UnsafeRawPointer, blocks: Int) -> Float {
        var acc = SIMD8<Float>()
        for c in 0..<blocks {
            acc +=
                p.loadUnaligned(fromByteOffset: c * 32, as: SIMD8<Float>.self)
                * q.loadUnaligned(fromByteOffset: c * 32, as: SIMD8<Float>.self)
        }
        return acc.sum()
    }

    /// `predict(user:item:)` for many pairs at once (batch prediction's inner loop): the dot products over the
    /// padded rows in SIMD, the rows reached through one pointer per matrix for the whole batch. A pair whose
    /// user or item is -1 (no row, or no vector: the caller decides) gets NaN, for the caller's fallback.
    public func predictPairs(users: [Int32], items: [Int32], into out: inout [Float]) {
        precondition(users.count == items.count)
        out.removeAll(keepingCapacity: true)
        out.reserveCapacity(users.count)
        userFactors.withUnsafeBufferPointer { p in
            itemFactors.withUnsafeBufferPointer { q in
                userBias.withUnsafeBufferPointer { bu in
                    itemBias.withUnsafeBufferPointer { bi in
                        let base = (UnsafeRawPointer(p.baseAddress!), UnsafeRawPointer(q.baseAddress!))
                        let rowBytes = stride * 4, blocks = stride / 8
                        for j in 0..<users.count {
                            let u = Int(users[j]), i = Int(items[j])
                            guard u >= 0 && u < userCount && i >= 0 && i < itemCount else {
                                out.append(.nan)
                                continue
                            }
                            let dot = FactorModel.paddedDot(
                                base.0 + u * rowBytes, base.1 + i * rowBytes, blocks: blocks)
                            out.append(clip(useBias ? globalMean + bu[u] + bi[i] + dot : dot))
                        }
                    }
                }
            }
        }
    }
}
