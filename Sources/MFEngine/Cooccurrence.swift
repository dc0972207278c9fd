import CKernels
import Dispatch
import Foundation

/// An item embedding whose dot products approximate how often two items are rated by the same users:
/// the ranking used for users with few ratings.
///
/// Why: a rating model (μ + b_u + b_i + p_u·q_i) learns *how much* a user likes an item, not *which*
/// items a user is likely to pick. For a user with ten ratings its top-n are obscure, highly rated
/// items; measured on ML-100K (users first seen in the last 10% by time, after ten ratings) its
/// precision@10 is a quarter of the popular list's. Items rated by the same people are what such a
/// user rates next.
///
/// What: with B the binary users × items matrix of training ratings and d_i the number of ratings of
/// item i, the similarity is S_ij = Σ_u B_ui B_uj / (d_i d_j)^α. α = 0.5 is the cosine; the default
/// 0.3 keeps a little more popularity and was chosen on a validation window of ML-100K, not the test
/// window (`mfrec-bench incremental --validation --exponent A`). The embedding is the best rank-k factorization S ≈ E Eᵀ (E = V_k Λ_k^½
/// from the top eigenpairs), computed by randomized subspace iteration on X = B D^(−α), S = XᵀX,
/// without ever forming S: each iteration costs two passes over the ratings. A user's vector is
/// the sum of the vectors of the items they rated, so a new rating changes it at once and a user
/// needs no fitting: score(u, i) = e_i · Σ_{j rated by u} e_j ≈ Σ_j S_ij.
public struct CooccurrenceEmbedding: Sendable, Equatable {
    /// The popularity damping exponent `train` uses.
    public static let defaultExponent = 0.3
    /// k `train` uses.
    public static let defaultFactors = 32

    /// k: the length of each item's vector.
    public let factors: Int
    /// Items known when it was fitted; later items have no vector (they are not ranked by it).
    public let itemCount: Int
    /// The popularity damping exponent of the fit.
    public let exponent: Double
    /// itemCount × factors, row-major.
    public let vectors: [Float]

    /// An embedding of `itemCount` vectors of `factors` floats, item by item.
    /// - Parameters:
    ///   - factors: k.
    ///   - itemCount: items.
    ///   - exponent: the popularity damping exponent of the fit.
    ///   - vectors: itemCount × factors floats, row-major.
    public init(factors: Int, itemCount: Int, exponent: Double, vectors: [Float]) {
        precondition(vectors.count == factors * itemCount)
        self.factors = factors
        self.itemCount = itemCount
        self.exponent = exponent
        self.vectors = vectors
    }

    /// Fits the embedding to the (user, item) pairs of `users`/`items` (each pair once).
    /// - Parameters:
    ///   - users: the pairs' dense user ids.
    ///   - items: the pairs' dense item ids (same length).
    ///   - userCount: users (every id below it).
    ///   - itemCount: items (every id below it).
    ///   - factors: k.
    ///   - exponent: the popularity damping exponent.
    ///   - iterations: subspace iterations after the random start (each costs two passes over the pairs).
    ///   - seed: seed of the random start.
    ///   - threads: above 100,000 pairs each pass is split between threads; sums then run in another
    ///     order, so the vectors agree across thread counts to rounding (not bit for bit, unlike training).
    ///   - isCancelled: polled before each iteration; once true, a less converged result comes back.
    /// - Returns: the embedding (zero vectors when there are no pairs).
    public static func fit(
        users: [Int32], items: [Int32], userCount: Int, itemCount: Int,
        factors: Int = defaultFactors, exponent: Double = defaultExponent,
        iterations: Int = 4, seed: UInt64 = 42,
        threads: Int = ProcessInfo.processInfo.activeProcessorCount,
        isCancelled: (() -> Bool)? = nil
    ) -> CooccurrenceEmbedding {
        precondition(users.count == items.count && factors > 0)
        // The products below write through raw pointers: an id past its count would write out of bounds.
        precondition(
            users.allSatisfy { $0 >= 0 && Int($0) < userCount } && items.allSatisfy { $0 >= 0 && Int($0) < itemCount },
            "CooccurrenceEmbedding.fit: a user or item id is outside 0..<userCount or 0..<itemCount")
        let width = min(factors + 8, itemCount)  // oversampled subspace
        guard width > 0, !users.isEmpty else {
            return CooccurrenceEmbedding(
                factors: factors, itemCount: itemCount, exponent: exponent,
                vectors: [Float](repeating: 0, count: itemCount * factors))
        }
        var degree = [Int](repeating: 0, count: itemCount)
        for i in items { degree[Int(i)] += 1 }
        let weight = degree.map { $0 > 0 ? Float(pow(Double($0), -exponent)) : 0 }

        let (values, basis) = topEigenpairs(
            users: users, items: items, weightIndex: items, weight: weight,
            userCount: userCount, itemCount: itemCount, factors: factors, oversampling: 8,
            iterations: iterations, seed: seed, threads: threads, isCancelled: isCancelled)
        var vectors = [Float](repeating: 0, count: itemCount * factors)
        for c in 0..<values.count {
            let scale = Float(max(Double(values[c]), 0).squareRoot())
            for r in 0..<itemCount { vectors[r * factors + c] = basis[r * values.count + c] * scale }
        }
        return CooccurrenceEmbedding(factors: factors, itemCount: itemCount, exponent: exponent, vectors: vectors)
    }

    /// The top `factors` eigenpairs of XᵀX, where X is the users × items matrix with entry
    /// weight[weightIndex[r]] at (users[r], items[r]): randomized subspace iteration (a Gaussian start
    /// of `factors + oversampling` columns, `iterations` products with XᵀX, each two passes over the
    /// entries) and Rayleigh–Ritz. Eigenvalues largest first; vectors itemCount × count, row-major,
    /// orthonormal columns. Fewer pairs come back when there are fewer items.
    ///
    /// `isCancelled` is polled before each iteration: once it answers true the iterations stop and a
    /// less converged result comes back, which the caller (who polls the same check) discards.
    /// - Parameters:
    ///   - users: the entries' user ids.
    ///   - items: the entries' item ids.
    ///   - weightIndex: each entry's index into `weight`.
    ///   - weight: the distinct weights.
    ///   - userCount: users (every id below it).
    ///   - itemCount: items (every id below it).
    ///   - factors: eigenpairs wanted.
    ///   - oversampling: extra columns of the subspace.
    ///   - iterations: products with XᵀX.
    ///   - seed: the Gaussian start's seed.
    ///   - threads: threads of each product.
    ///   - isCancelled: polled before each iteration.
    /// - Returns: the eigenvalues and the eigenvectors.
    public static func topEigenpairs(
        users: [Int32], items: [Int32], weightIndex: [Int32], weight: [Float],
        userCount: Int, itemCount: Int, factors: Int, oversampling: Int, iterations: Int,
        seed: UInt64, threads: Int, isCancelled: (() -> Bool)? = nil
    )
        -> (values: [Float], vectors: [Float])
    {
        let width = min(factors + oversampling, itemCount)
        let kept = min(factors, width)
        guard width > 0, !users.isEmpty else {
            return ([Float](repeating: 0, count: factors), [Float](repeating: 0, count: itemCount * factors))
        }
        var rng = SeededGenerator(seed: seed)
        var basis = (0..<(itemCount * width)).map { _ in Float(rng.nextGaussian()) }
        orthonormalizeFast(&basis, rows: itemCount, columns: width)
        // XᵀX·M for an itemCount × width matrix M, as Xᵀ(X M): two passes over the entries, each split over
        // `threads` threads that add into private copies of the output (summed after).
        func multiply(_ m: [Float]) -> [Float] {
            let perUser = ScatterJob(
                input: m, from: items, to: users, weightIndex: weightIndex, weight: weight,
                rows: userCount, width: width
            ).run(threads: threads)
            return ScatterJob(
                input: perUser, from: users, to: items, weightIndex: weightIndex, weight: weight,
                rows: itemCount, width: width
            ).run(threads: threads)
        }
        for iteration in 0..<iterations {
            if isCancelled?() == true { break }
            basis = multiply(basis)
            // One CholeskyQR pass is orthonormal to float precision while the columns' condition number
            // is modest (each product with XᵀX stretches it by at most λ_1/λ_width); the last gets two.
            orthonormalizeFast(&basis, rows: itemCount, columns: width, passes: iteration == iterations - 1 ? 2 : 1)
        }
        // Cancelled: the caller discards the result, so skip the Rayleigh–Ritz step (one more product and a
        // width² cross product: most of a second under load at width 300, past the 1 s cancellation bound).
        if isCancelled?() == true {
            return ([Float](repeating: 0, count: factors), [Float](repeating: 0, count: itemCount * factors))
        }
        // Rayleigh–Ritz: the small matrix Ωᵀ S Ω and its eigenpairs.
        let image = multiply(basis)
        var small = crossProduct(basis, image, rows: itemCount, columns: width)
        for a in 0..<width {
            for b in 0..<a {
                let s = (small[a * width + b] + small[b * width + a]) / 2
                small[a * width + b] = s
                small[b * width + a] = s
            }
        }
        let (values, eigenvectors) = symmetricEigen(small, size: width, isCancelled: isCancelled)
        let order = Array((0..<width).sorted { values[$0] > values[$1] }.prefix(kept))
        var out = [Float](repeating: 0, count: itemCount * factors)
        var outValues = [Float](repeating: 0, count: factors)
        // The chosen eigenvectors as a width × kept matrix, then basis · that, row by row.
        var rotation = [Double](repeating: 0, count: width * kept)
        for (column, j) in order.enumerated() {
            outValues[column] = Float(max(values[j], 0))
            for a in 0..<width { rotation[a * kept + column] = eigenvectors[a * width + j] }
        }
        var row = [Double](repeating: 0, count: kept)
        for r in 0..<itemCount {
            for c in 0..<kept { row[c] = 0 }
            for a in 0..<width {
                let x = Double(basis[r * width + a])
                if x == 0 { continue }
                for c in 0..<kept { row[c] += x * rotation[a * kept + c] }
            }
            for c in 0..<kept { out[r * factors + c] = Float(row[c]) }
        }
        return (outValues, out)
    }

    /// Orthonormal columns by CholeskyQR2 (Fukaya et al. 2014): G = MᵀM, G = LLᵀ, M ← M L⁻ᵀ, twice, which
    /// costs two passes of contiguous row-wise products instead of Gram–Schmidt's column sweeps (many
    /// times faster for hundreds of columns). Falls back to Gram–Schmidt when G is not numerically
    /// positive definite (dependent or zero columns).
    static func orthonormalizeFast(_ m: inout [Float], rows: Int, columns n: Int, passes: Int = 2) {
        for _ in 0..<passes {
            let g = crossProduct(m, m, rows: rows, columns: n, symmetric: true)
            guard let l = cholesky(g, size: n) else {
                orthonormalize(&m, rows: rows, columns: n)
                return
            }
            // Each row x of M becomes x L⁻ᵀ (forward substitution), rows split between two threads.
            solveRows(&m, lower: l, rows: rows, columns: n, parts: max(1, min(2, rows / 512)))
        }
    }

    /// The lower-triangular Cholesky factor of a symmetric matrix; nil unless clearly positive definite.
    static func cholesky(_ a: [Double], size n: Int) -> [Double]? {
        var l = [Double](repeating: 0, count: n * n)
        let scale = (0..<n).reduce(0.0) { max($0, a[$1 * n + $1]) }
        guard scale > 0 else { return nil }
        for i in 0..<n {
            for j in 0...i {
                var s = a[i * n + j]
                for k in 0..<j { s -= l[i * n + k] * l[j * n + k] }
                if i == j {
                    guard s > 1e-10 * scale else { return nil }
                    l[i * n + i] = s.squareRoot()
                } else {
                    l[i * n + j] = s / l[j * n + j]
                }
            }
        }
        return l
    }

    /// Gram–Schmidt, twice over ("twice is enough"), on the columns of a row-major rows × columns
    /// matrix; a column that is (numerically) in the span of the previous ones becomes zero.
    static func orthonormalize(_ m: inout [Float], rows: Int, columns: Int) {
        var column = [Double](repeating: 0, count: rows)
        var done: [[Double]] = []
        for c in 0..<columns {
            for r in 0..<rows { column[r] = Double(m[r * columns + c]) }
            let original = column.reduce(0) { $0 + $1 * $1 }.squareRoot()
            for _ in 0..<2 {
                for q in done {
                    var dot = 0.0
                    for r in 0..<rows { dot += q[r] * column[r] }
                    for r in 0..<rows { column[r] -= dot * q[r] }
                }
            }
            let norm = column.reduce(0) { $0 + $1 * $1 }.squareRoot()
            if norm > 1e-9 * max(original, 1e-300) && norm > 0 {
                for r in 0..<rows { column[r] /= norm }
            } else {
                for r in 0..<rows { column[r] = 0 }
            }
            done.append(column)
            for r in 0..<rows { m[r * columns + c] = Float(column[r]) }
        }
    }

    /// Eigenvalues and eigenvectors (columns of the row-major result) of a symmetric matrix, by cyclic
    /// Jacobi rotations: exact to rounding for the small (k + 8)² matrices used here.
    static func symmetricEigen(_ input: [Double], size n: Int, isCancelled: (() -> Bool)? = nil)
        -> (values: [Double], vectors: [Double])
    {
        var a = input
        var v = [Double](repeating: 0, count: n * n)
        for i in 0..<n { v[i * n + i] = 1 }
        let total = a.reduce(0) { $0 + $1 * $1 }
        for _ in 0..<100 {
            if isCancelled?() == true { break }  // the caller discards the result
            var off = 0.0
            for p in 0..<n { for q in 0..<n where p != q { off += a[p * n + q] * a[p * n + q] } }
            if off <= 1e-24 * max(total, 1e-300) { break }
            for p in 0..<n {
                for q in (p + 1)..<n where a[p * n + q] != 0 {
                    let theta = (a[q * n + q] - a[p * n + p]) / (2 * a[p * n + q])
                    let t = (theta >= 0 ? 1 : -1) / (abs(theta) + (theta * theta + 1).squareRoot())
                    let c = 1 / (t * t + 1).squareRoot(), s = t * c
                    for k in 0..<n {  // A ← A J (columns p, q)
                        let akp = a[k * n + p], akq = a[k * n + q]
                        a[k * n + p] = c * akp - s * akq
                        a[k * n + q] = s * akp + c * akq
                    }
                    for k in 0..<n {  // A ← Jᵀ A (rows p, q)
                        let apk = a[p * n + k], aqk = a[q * n + k]
                        a[p * n + k] = c * apk - s * aqk
                        a[q * n + k] = s * apk + c * aqk
                    }
                    for k in 0..<n {
                        let vkp = v[k * n + p], vkq = v[k * n + q]
                        v[k * n + p] = c * vkp - s * vkq
                        v[k * n + q] = s * vkp + c * vkq
                    }
                }
            }
        }
        return ((0..<n).map { a[$0 * n + $0] }, v)
    }

    /// A user's vector: the sum of the vectors of the items they rated (items unknown to the
    /// embedding are skipped).
    /// - Parameter ratedItems: the user's item ids.
    /// - Returns: k floats.
    public func userVector<S: Sequence>(ratedItems: S) -> [Float] where S.Element == Int32 {
        var out = [Float](repeating: 0, count: factors)
        for item in ratedItems where item >= 0 && Int(item) < itemCount {
            let row = Int(item) * factors
            for c in 0..<factors { out[c] += vectors[row + c] }
        }
        return out
    }

    /// A user's vector with each rated item's vector weighted: Σ weights[j] · e_{rated[j]} (items unknown to the
    /// embedding are skipped).
    /// - Parameters:
    ///   - rated: the user's item ids.
    ///   - weights: one weight per item of `rated`.
    /// - Returns: k floats.
    public func userVector(ratedItems rated: [Int32], weights: [Float]) -> [Float] {
        precondition(rated.count == weights.count, "userVector: one weight per rated item")
        var out = [Float](repeating: 0, count: factors)
        for (item, weight) in zip(rated, weights) where item >= 0 && Int(item) < itemCount {
            let row = Int(item) * factors
            for c in 0..<factors { out[c] += weight * vectors[row + c] }
        }
        return out
    }

    /// The weights of a recency-weighted user vector over `count` ratings in time order (oldest first): the
    /// newest counts 1 and each older one `decay` times the next newer one, decay^(count − 1 − position).
    ///
    /// Why: a newcomer's next ratings follow their latest ones more than their first ones (a session drifts);
    /// on ML-100K's newcomer windows (10 ratings known) a decay of 0.7–0.9 raised precision@10 of the light-user
    /// list on both the validation and the test window (`mfrec-bench incremental`); `train` chooses the decay.
    /// - Parameters:
    ///   - count: the ratings.
    ///   - decay: the factor per step back in time, in (0, 1] (1: every rating counts alike).
    /// - Returns: `count` weights, oldest first.
    public static func recencyWeights(count: Int, decay: Float) -> [Float] {
        precondition(decay > 0 && decay <= 1, "recencyWeights: decay must be in (0, 1]")
        var out = [Float](repeating: 1, count: count)
        var w: Float = 1
        for j in stride(from: count - 1, through: 0, by: -1) {
            out[j] = w
            w *= decay
        }
        return out
    }

    /// The top-n of a user who rated `rated` (their vector: the sum of those items' vectors), minus
    /// `excluded`; nil when none of the rated items has a vector (nothing to rank by).
    /// - Parameters:
    ///   - rated: the user's item ids.
    ///   - n: how many items.
    ///   - excluded: item ids left out.
    /// - Returns: (item, score) pairs, best first.
    public func topN(rated: [Int32], n: Int, excluded: Set<Int32>) -> [(item: Int32, score: Float)]? {
        let query = userVector(ratedItems: rated)
        guard query.contains(where: { $0 != 0 }) else { return nil }
        return topN(user: query, n: n, excluded: excluded)
    }

    /// The top-n blended with a popularity prior: z(e_i · user) + weight · z(prior_i) (see `RankingModel.topN`);
    /// nil when none of the rated items has a vector.
    /// - Parameters:
    ///   - rated: the user's item ids.
    ///   - n: how many items.
    ///   - excluded: item ids left out.
    ///   - prior: the popularity prior, one per item.
    ///   - weight: the prior's weight w (0: no blend).
    ///   - ratedWeights: one weight per item of `rated` (see `userVector(ratedItems:weights:)`); nil: all 1.
    /// - Returns: (item, blended score) pairs, best first.
    public func topN(
        rated: [Int32], n: Int, excluded: Set<Int32>, prior: [Float], weight: Float, ratedWeights: [Float]? = nil
    ) -> [(item: Int32, score: Float)]? {
        let query = ratedWeights.map { userVector(ratedItems: rated, weights: $0) } ?? userVector(ratedItems: rated)
        guard query.contains(where: { $0 != 0 }) else { return nil }
        guard weight > 0, prior.count >= itemCount else { return topN(user: query, n: n, excluded: excluded) }
        return ItemScan.topN(
            vectors: vectors, factors: factors, itemCount: itemCount, query: query, n: n, excluded: excluded,
            prior: prior, priorWeight: weight)
    }

    /// The n items with the largest e_i · user, minus `excluded` (TopN order: ties by smaller id).
    /// - Parameters:
    ///   - user: the user's vector (k floats).
    ///   - n: how many items.
    ///   - excluded: item ids left out.
    /// - Returns: (item, score) pairs, best first.
    public func topN(user: [Float], n: Int, excluded: Set<Int32>) -> [(item: Int32, score: Float)] {
        precondition(user.count == factors)
        return ItemScan.topN(
            vectors: vectors, factors: factors, itemCount: itemCount, query: user, n: n, excluded: excluded)
    }

    /// The cosine of two items' vectors (0 when either is zero or unknown).
    /// - Parameters:
    ///   - a: an item id.
    ///   - b: another item id.
    /// - Returns: the cosine.
    public func cosine(_ a: Int, _ b: Int) -> Float {
        ItemScan.cosine(vectors: vectors, factors: factors, itemCount: itemCount, a, b)
    }

    /// The vectors as little-endian float32 bytes (what the store keeps).
    /// - Returns: 4 × itemCount × factors bytes.
    public func encodedVectors() -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(vectors.count * 4)
        LittleEndian.append(floats: vectors, to: &out)
        return out
    }

    /// Decodes `encodedVectors()`; nil when the size does not match.
    /// - Parameters:
    ///   - factors: k.
    ///   - itemCount: items.
    ///   - exponent: the fit's exponent.
    ///   - bytes: the encoded vectors.
    public init?(factors: Int, itemCount: Int, exponent: Double, encoded bytes: [UInt8]) {
        guard factors > 0, itemCount >= 0, bytes.count == factors * itemCount * 4 else { return nil }
        guard let vectors = LittleEndian.floats(in: bytes, at: 0, count: factors * itemCount) else { return nil }
        self.init(factors: factors, itemCount: itemCount, exponent: exponent, vectors: vectors)
    }
}
