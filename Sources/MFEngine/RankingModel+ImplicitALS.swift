import Foundation

/// A ranking model imported from implicit ALS (Spark MLlib's `ALS(implicitPrefs=True)`; Hu, Koren and
/// Volinsky 2008), served and updated like a fitted one.
///
/// Its item vectors y_i are Spark's item factors. Its users are Spark's user factors, stored with a hash
/// of the ratings each stood for when imported; a stored vector answers while the user's ratings still hash
/// to it. A user with no stored vector, or whose ratings changed since (a `rate`, an `ingest --update`),
/// gets the ALS user step over their ratings now, as Spark computes it with the item factors fixed:
///
///     p_u = (YᵀY + Σ_{j ∈ R(u)} α r_uj y_j y_jᵀ + λ n_u I)⁻¹ Σ_{j ∈ R(u), r_uj > 0} (1 + α r_uj) y_j
///
/// (Spark's `ALS.computeFactors` with `implicitPrefs`: confidence 1 + α|r|, preference 1 for r > 0, and
/// the regularization scaled by the user's count of positive ratings n_u.) That is the fold-in: exact for
/// the fixed item side, and what the next ALS sweep would give the user. With `nonnegative` the step's
/// negative components are set to 0 (Spark solves that case by NNLS; this is an approximation of it).
/// The item side does not move with new ratings: an item Spark had no factors for keeps no vector until
/// the next import, and lists rank it last.
public struct ImplicitALS: Codable, Sendable, Equatable {
    /// α: confidence per unit of rating.
    public var alpha: Double
    /// λ (Spark's `regParam`), scaled by each user's count of positive ratings.
    public var regularization: Double
    /// Whether the factors were fitted non-negative.
    public var nonnegative: Bool

    /// The settings of the Spark run.
    /// - Parameters:
    ///   - alpha: α, confidence per unit of rating.
    ///   - regularization: λ (Spark's `regParam`).
    ///   - nonnegative: whether the factors were fitted non-negative.
    public init(alpha: Double, regularization: Double, nonnegative: Bool = false) {
        self.alpha = alpha
        self.regularization = regularization
        self.nonnegative = nonnegative
    }
}

extension RankingModel {
    /// An imported implicit-ALS model: item vectors (itemCount × k, a zero row for an item without
    /// factors), stored user vectors with the hashes of the ratings they stood for (`ratingsHash`; 0 for a
    /// user without one), and the popularity prior. Items with a vector count as fitted.
    /// - Parameters:
    ///   - als: the Spark run's settings.
    ///   - factors: k.
    ///   - itemVectors: itemCount × k floats.
    ///   - hasItemVector: per item, whether Spark gave it factors.
    ///   - userVectors: userCount × k floats.
    ///   - userHashes: per user, the hash of the ratings its vector stands for.
    ///   - ratingOffset: the scale minimum.
    /// - Returns: the model.
    public static func importedALS(
        _ als: ImplicitALS, factors: Int, itemVectors: [Float], hasItemVector: [Bool], userVectors: [Float],
        userHashes: [UInt64], ratingOffset: Double
    ) -> RankingModel {
        let items = hasItemVector.count
        let parameters = Parameters(
            factors: factors, exponent: 0, userExponent: 0, spectrumPower: 0, knee: 0, weighting: .rating,
            ratingOffset: ratingOffset, implicitALS: als)
        // Eigenvalues of 1 make the spectral filter 1 for every component: `cosine` and `similar` are then
        // the plain cosine of the item factors, as for any factor model.
        return RankingModel(
            parameters: parameters, itemCount: items, eigenvalues: [Float](repeating: 1, count: factors),
            itemVectors: itemVectors, itemWeights: hasItemVector.map { $0 ? 1 : 0 }, fitted: hasItemVector,
            storedUsers: userVectors, storedUserHashes: userHashes)
    }

    /// An order-independent 64-bit hash of a user's ratings ((item, rating) pairs); 0 only for none.
    /// - Parameter ratings: (item, rating) pairs in any order.
    /// - Returns: the hash.
    public static func ratingsHash<S: Sequence>(_ ratings: S) -> UInt64
    where S.Element == (item: Int32, rating: Float) {
        var sum: UInt64 = 0
        var any = false
        for (item, rating) in ratings {
            // splitmix64's finalizer of (item, rating bits): pairs mix well, and the sum ignores order.
            var z = UInt64(UInt32(bitPattern: item)) << 32 | UInt64(rating.bitPattern)
            z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
            z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
            sum &+= z ^ (z >> 31)
            any = true
        }
        return any ? (sum == 0 ? 1 : sum) : 0
    }

    /// Users with a stored vector slot (see `storedUsers`).
    public var storedUserCount: Int { storedUserHashes.count }

    /// The stored vector of `user` when it still stands for these ratings; nil otherwise.
    /// - Parameters:
    ///   - user: the user's id.
    ///   - ratings: the user's ratings now.
    /// - Returns: the stored vector, or nil.
    public func storedVector(user: Int, ratings: [(item: Int32, rating: Float)]) -> [Float]? {
        guard user >= 0, user < storedUserCount, storedUserHashes[user] != 0,
            storedUserHashes[user] == RankingModel.ratingsHash(ratings)
        else { return nil }
        let width = storedWidth
        return Array(storedUsers[(user * width)..<((user + 1) * width)])
    }

    /// The query vector of a user with these ratings: the stored vector while it stands for them (an
    /// imported model), otherwise `userVector(ratings:)`.
    /// - Parameters:
    ///   - user: the user's id, when stored users may answer.
    ///   - ratings: the user's ratings.
    /// - Returns: k floats.
    public func userVector(user: Int?, ratings: [(item: Int32, rating: Float)]) -> [Float] {
        if let blend = parameters.alsBlend { return blendedUserVector(user: user, ratings: ratings, blend) }
        if let user, let stored = storedVector(user: user, ratings: ratings) { return stored }
        return userVector(ratings: ratings)
    }

    /// The implicit-ALS user step (see `ImplicitALS`); zeros when no rated item has a vector.
    func alsUserStep(ratings: [(item: Int32, rating: Float)], _ als: ImplicitALS) -> [Float] {
        let k = factors
        var a = gram, b = [Double](repeating: 0, count: k)
        var positives = 0, used = 0
        for (item, rating) in ratings where item >= 0 && Int(item) < itemCount && hasFittedVector(Int(item)) {
            let row = Int(item) * k
            let r = Double(rating), c1 = als.alpha * abs(r)
            used += 1
            if r > 0 { positives += 1 }
            for x in 0..<k {
                let yx = Double(itemVectors[row + x])
                if r > 0 { b[x] += (1 + c1) * yx }
                guard c1 != 0 else { continue }
                for z in 0..<k { a[x * k + z] += c1 * yx * Double(itemVectors[row + z]) }
            }
        }
        guard used > 0 else { return [Float](repeating: 0, count: k) }
        let lambda = als.regularization * Double(positives)
        for x in 0..<k { a[x * k + x] += lambda }
        guard let solution = RankingModel.choleskySolve(a, b, size: k) else { return [Float](repeating: 0, count: k) }
        return solution.map { als.nonnegative ? Float(max($0, 0)) : Float($0) }
    }

    /// YᵀY of row-major vectors.
    static func gram(_ vectors: [Float], factors k: Int, itemCount: Int) -> [Double] {
        var g = [Double](repeating: 0, count: k * k)
        for i in 0..<itemCount {
            let row = i * k
            for x in 0..<k {
                let yx = Double(vectors[row + x])
                guard yx != 0 else { continue }
                for z in 0..<k { g[x * k + z] += yx * Double(vectors[row + z]) }
            }
        }
        return g
    }

    /// Keeps `gram` equal to YᵀY when one item's vector changes.
    mutating func updateGram(removing old: [Float], adding new: [Float]) {
        let k = factors
        for x in 0..<k {
            let nx = Double(new[x]), ox = Double(old[x])
            for z in 0..<k {
                let added: Double = nx * Double(new[z])
                let removed: Double = ox * Double(old[z])
                gram[x * k + z] += added - removed
            }
        }
    }

    /// Solves A x = b for a symmetric positive-definite A (row-major) by Cholesky; nil when A is not.
    static func choleskySolve(_ a: [Double], _ b: [Double], size n: Int) -> [Double]? {
        var l = [Double](repeating: 0, count: n * n)
        for i in 0..<n {
            for j in 0...i {
                var sum = a[i * n + j]
                for p in 0..<j { sum -= l[i * n + p] * l[j * n + p] }
                if i == j {
                    guard sum > 0 else { return nil }
                    l[i * n + i] = sum.squareRoot()
                } else {
                    l[i * n + j] = sum / l[j * n + j]
                }
            }
        }
        var y = b
        for i in 0..<n {
            for p in 0..<i { y[i] -= l[i * n + p] * y[p] }
            y[i] /= l[i * n + i]
        }
        for i in stride(from: n - 1, through: 0, by: -1) {
            for p in (i + 1)..<n { y[i] -= l[p * n + i] * y[p] }
            y[i] /= l[i * n + i]
        }
        return y
    }
}
