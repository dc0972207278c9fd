import Foundation

/// An implicit-ALS part blended into the spectral ranking model: the model's vectors are the concatenation of the
/// two, so a list is still one dot product and one scan.
///
/// Item rows are [V_i | y_i] (the spectral item vector, then the ALS item factors of `ImplicitALSFit`), user
/// vectors [p_u | w · c · x_u], so score(u, i) = p_u · V_i + w · c · (x_u · y_i): the spectral score plus w times
/// the ALS score rescaled by c, the ratio of the two scores' typical spread over the catalog (the mean over users
/// of each score's standard deviation across items, measured when fitted), so w is the weight of the ALS
/// score in units of the spectral one. (A per-user standardization of each score ranked the same as this global
/// one on ML-100K's validation carve-outs: NDCG@10 within ±0.001, numpy, by hand.) x_u is the ALS user step over
/// the user's ratings (`ImplicitALSFit`'s objective with the item factors fixed), stored for the users of the fit
/// with the hash of the ratings it stood for, as an imported ALS model's are; a user whose ratings changed since
/// gets the step again at query time, exactly. w, k, λ and α are chosen on the validation carve-out
/// (`RankingTuner`); w = 0 is always a candidate, so the blend is kept only when it ranks better there.
public struct ALSBlend: Codable, Sendable, Equatable, CustomStringConvertible {
    /// k of the ALS part.
    public var factors: Int
    /// α: confidence α · w(r) (w(r) = r − min + 1).
    public var alpha: Double
    /// λ (not scaled by counts).
    public var regularization: Double
    /// Sweeps of the fit.
    public var iterations: Int
    /// w: the ALS score's weight, in units of the spectral score's spread.
    public var weight: Double
    /// c: the spectral scores' spread over that of the ALS scores (measured when fitted).
    public var scale: Double

    /// Sweeps of a fit unless told otherwise.
    public static let defaultIterations = 15

    /// Settings of the ALS part (`scale` is measured by the fit).
    /// - Parameters:
    ///   - factors: k of the ALS part.
    ///   - alpha: α of the confidence.
    ///   - regularization: λ.
    ///   - iterations: sweeps of the fit.
    ///   - weight: w, the ALS score's weight in units of the spectral score's spread.
    ///   - scale: c, the ratio of the two scores' spread (1 until the fit measures it).
    public init(
        factors: Int, alpha: Double, regularization: Double, iterations: Int = defaultIterations, weight: Double,
        scale: Double = 1
    ) {
        self.factors = factors
        self.alpha = alpha
        self.regularization = regularization
        self.iterations = iterations
        self.weight = weight
        self.scale = scale
    }

    /// "ALS k 128, λ 30, α 1, weight 0.5".
    public var description: String {
        "implicit ALS k \(factors), λ \(regularization), α \(alpha), weight \(weight)"
    }
}

extension RankingModel {
    /// Columns of the spectral part (the ALS part's follow).
    public var spectralFactors: Int { parameters.factors }

    /// Floats of a stored user vector: the ALS part's k for a blended model, the whole row for an imported one.
    var storedWidth: Int { parameters.alsBlend?.factors ?? factors }

    /// This spectral model with an ALS part fitted on the same ratings and blended with weight `blend.weight`
    /// (see `ALSBlend`); the users of the ratings get stored ALS vectors with their ratings' hashes.
    /// - Parameters:
    ///   - blend: the ALS settings (its `scale` is measured here).
    ///   - users: the ratings' users.
    ///   - items: their items.
    ///   - ratings: their values.
    ///   - userCount: users.
    ///   - seed: seed of the ALS start.
    ///   - threads: threads.
    ///   - isCancelled: polled between sweeps.
    /// - Returns: the blended model.
    public func withALS(
        _ blend: ALSBlend, users: [Int32], items: [Int32], ratings: [Float], userCount: Int, seed: UInt64 = 42,
        threads: Int = ProcessInfo.processInfo.activeProcessorCount, isCancelled: (() -> Bool)? = nil
    ) -> RankingModel {
        let fitted = ImplicitALSFit.fit(
            users: users, items: items, ratings: ratings, userCount: userCount, itemCount: itemCount,
            ratingOffset: parameters.ratingOffset, factors: blend.factors, regularization: blend.regularization,
            alpha: blend.alpha, iterations: blend.iterations, seed: seed, threads: threads, isCancelled: isCancelled)
        return withALS(blend, fitted: fitted, users: users, items: items, ratings: ratings, userCount: userCount)
    }

    /// `withALS(_:users:items:ratings:userCount:…)` with the ALS factors already fitted (the tuner fits once and
    /// tries several weights).
    /// - Parameters:
    ///   - blend: the ALS settings (its `scale` is measured here).
    ///   - fitted: the ALS factors, fitted on these ratings with `blend`'s k, λ and α.
    ///   - users: the ratings' users.
    ///   - items: their items.
    ///   - ratings: their values.
    ///   - userCount: users.
    /// - Returns: the blended model.
    public func withALS(
        _ blend: ALSBlend, fitted: ImplicitALSFit.Factors, users: [Int32], items: [Int32], ratings: [Float],
        userCount: Int
    ) -> RankingModel {
        precondition(parameters.alsBlend == nil && parameters.implicitALS == nil && fitted.factors == blend.factors)
        let k1 = factors, k2 = blend.factors, width = k1 + k2
        let byUser = ImplicitALSFit.CSR(
            rows: users, columns: items, values: ratings, rowCount: userCount)
        var measured = blend
        measured.scale = RankingModel.spreadRatio(
            spectral: self, alsItems: fitted.items, alsUsers: fitted.users, k2: k2, byUser: byUser)
        var p = parameters
        p.alsBlend = measured
        var rows = [Float](repeating: 0, count: itemCount * width)
        for i in 0..<itemCount {
            for c in 0..<k1 { rows[i * width + c] = itemVectors[i * k1 + c] }
            for c in 0..<k2 { rows[i * width + k1 + c] = fitted.items[i * k2 + c] }
        }
        var hashes = [UInt64](repeating: 0, count: userCount)
        for u in 0..<userCount {
            let from = Int(byUser.indptr[u]), to = Int(byUser.indptr[u + 1])
            guard to > from else { continue }
            hashes[u] = RankingModel.ratingsHash(
                (from..<to).map { (item: byUser.indices[$0], rating: byUser.values[$0]) })
        }
        return RankingModel(
            parameters: p, itemCount: itemCount, eigenvalues: eigenvalues + [Float](repeating: 0, count: k2),
            itemVectors: rows, itemWeights: itemWeights, popularity: popularity,
            fitted: (0..<itemCount).map { hasFittedVector($0) }, storedUsers: fitted.users,
            storedUserHashes: hashes)
    }

    /// c of `ALSBlend`: the mean over (up to 2,000, evenly spaced) users of the spread of their spectral scores
    /// over the catalog, over the same for their ALS scores. A score's spread is sqrt(pᵀ Σ p), Σ the covariance
    /// of the item rows.
    static func spreadRatio(
        spectral: RankingModel, alsItems: [Float], alsUsers: [Float], k2: Int, byUser: ImplicitALSFit.CSR
    ) -> Double {
        func covariance(_ rows: [Float], k: Int, count: Int) -> [Double] {
            var mean = [Double](repeating: 0, count: k), c = [Double](repeating: 0, count: k * k)
            for i in 0..<count {
                for a in 0..<k {
                    let x = Double(rows[i * k + a])
                    mean[a] += x
                    guard x != 0 else { continue }
                    for b in 0..<k { c[a * k + b] += x * Double(rows[i * k + b]) }
                }
            }
            let n = Double(max(count, 1))
            for a in 0..<k { for b in 0..<k { c[a * k + b] = c[a * k + b] / n - mean[a] * mean[b] / (n * n) } }
            return c
        }
        func spread(_ v: [Float], _ c: [Double], k: Int) -> Double {
            var s = 0.0
            for a in 0..<k {
                var row = 0.0
                for b in 0..<k { row += c[a * k + b] * Double(v[b]) }
                s += Double(v[a]) * row
            }
            return max(s, 0).squareRoot()
        }
        let k1 = spectral.factors, items = spectral.itemCount
        let c1 = covariance(spectral.itemVectors, k: k1, count: items)
        let c2 = covariance(alsItems, k: k2, count: items)
        let users = byUser.rowCount
        let step = max(1, users / 2_000)
        var s1 = 0.0, s2 = 0.0
        for u in stride(from: 0, to: users, by: step) {
            let from = Int(byUser.indptr[u]), to = Int(byUser.indptr[u + 1])
            guard to > from else { continue }
            let p = spectral.userVector(
                ratings: (from..<to).map { (item: byUser.indices[$0], rating: byUser.values[$0]) })
            let x = Array(alsUsers[(u * k2)..<((u + 1) * k2)])
            s1 += spread(p, c1, k: k1)
            s2 += spread(x, c2, k: k2)
        }
        return s1 > 0 && s2 > 0 ? s1 / s2 : 1
    }

    /// The blended user vector [p_u | w · c · x_u]: x_u the stored ALS vector when it stands for these ratings
    /// (`user` given), otherwise the ALS user step over them.
    func blendedUserVector(user: Int?, ratings: [(item: Int32, rating: Float)], _ blend: ALSBlend) -> [Float] {
        var out = spectralUserVector(ratings: ratings)
        let x = user.flatMap { storedVector(user: $0, ratings: ratings) } ?? blendStep(ratings: ratings, blend)
        let k1 = spectralFactors, m = Float(blend.weight * blend.scale)
        for c in 0..<blend.factors { out[k1 + c] = m * x[c] }
        return out
    }

    /// The ALS user step of the blend's part: (YᵀY + λI + Σ_j (c_j − 1) y_j y_jᵀ)⁻¹ Σ_j c_j y_j with
    /// c_j = α · w(r_uj), over the rated items with an ALS row; zeros when there are none.
    func blendStep(ratings: [(item: Int32, rating: Float)], _ blend: ALSBlend) -> [Float] {
        let k1 = spectralFactors, k2 = blend.factors, width = factors
        var a = gram, b = [Double](repeating: 0, count: k2)
        var used = 0
        for (item, rating) in ratings where item >= 0 && Int(item) < itemCount {
            let row = Int(item) * width + k1
            guard (0..<k2).contains(where: { itemVectors[row + $0] != 0 }) else { continue }
            let confidence = blend.alpha * Double(max(rating - Float(parameters.ratingOffset) + 1, 0))
            let c = confidence - 1
            used += 1
            for x in 0..<k2 {
                let yx = Double(itemVectors[row + x])
                b[x] += confidence * yx
                guard c != 0 else { continue }
                for z in 0..<k2 { a[x * k2 + z] += c * yx * Double(itemVectors[row + z]) }
            }
        }
        guard used > 0 else { return [Float](repeating: 0, count: k2) }
        for x in 0..<k2 { a[x * k2 + x] += blend.regularization }
        guard let solution = RankingModel.choleskySolve(a, b, size: k2) else {
            return [Float](repeating: 0, count: k2)
        }
        return solution.map { Float($0) }
    }

    /// YᵀY of the ALS part's columns (k2 × k2).
    static func blendGram(_ vectors: [Float], width: Int, from k1: Int, k2: Int, itemCount: Int) -> [Double] {
        var g = [Double](repeating: 0, count: k2 * k2)
        for i in 0..<itemCount {
            let row = i * width + k1
            for x in 0..<k2 {
                let yx = Double(vectors[row + x])
                guard yx != 0 else { continue }
                for z in 0..<k2 { g[x * k2 + z] += yx * Double(vectors[row + z]) }
            }
        }
        return g
    }
}
