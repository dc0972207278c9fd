import CKernels
import Foundation

/// The ranking model: a factor model fitted for top-n lists, not for rating values.
///
/// Why: a model fitted to predict ratings puts obscure items with a few enthusiastic ratings first
/// (on ML-100K its precision@10 is a quarter of the popular list's). A top-n list has to model *which*
/// items a user picks, and how much they liked them.
///
/// What: X is the users × items matrix with x_uj = w(r_uj) · d_j^(−α) for the training ratings
/// (w(r) = r − min + 1 with `.rating` weighting, 1 with `.binary`; d_j the item's rating count, so
/// α > 0 damps popular items). The model is the top-k eigenpairs (λ, V) of XᵀX, found by randomized
/// subspace iteration without forming XᵀX. Scores are a spectral filter of the user's own row:
/// score(u, i) = Σ_j x_uj · (V f(Λ) Vᵀ)_ji. With f(λ) = λ^β, β = 0 is PureSVD's projection (Cremonesi et
/// al. 2010) and β = 1 the low-rank item–item co-occurrence; f(λ) = λ/(λ + λ_m) (the ridge-regression or
/// Wiener shrinkage) lies between them. As a factor model: item vectors q_i = V_i (the scanned side) and
/// user vectors p_u = Σ_j x_uj · V_j f(Λ) (the input side). A user's vector is computed
/// from their stored ratings at query time, so every new rating is reflected at once and exactly: the
/// incremental update of a user is the closed form itself, not an approximation of it.
/// k, α, β and the weighting are chosen on a validation carve-out (see `RankingTuner` in MFRec).
public struct RankingModel: Sendable, Equatable {
    /// How a rating enters X: its value above the scale's bottom, or 1.
    public enum Weighting: String, Codable, Sendable, CaseIterable {
        /// w(r) = r − (scale minimum) + 1: high ratings count more.
        case rating
        /// w(r) = 1: who rated what.
        case binary
    }

    /// What was fitted.
    public struct Parameters: Codable, Sendable, Equatable, CustomStringConvertible {
        /// k: eigenpairs kept.
        public var factors: Int
        /// α of d_j^(−α).
        public var exponent: Double
        /// δ of n_u^(−δ), n_u the user's rating count: damps heavy users' rows in XᵀX (the fit only; a user's
        /// own list does not depend on it).
        public var userExponent: Double
        /// β of the spectral filter f(λ).
        public var spectrumPower: Double
        /// 0: f(λ) = λ^β. m > 0: f(λ) = (λ / (λ + λ_m))^β, a Wiener-like filter that weighs the m leading
        /// components alike (as PureSVD's projection does) and the rest in proportion to λ (as co-occurrence).
        public var knee: Int
        /// Rating or binary weights.
        public var weighting: Weighting
        /// The scale minimum (w(r) = r − ratingOffset + 1).
        public var ratingOffset: Double
        /// Set for a model imported from implicit ALS (Spark's `implicitPrefs=True`): its users are scored
        /// by stored vectors or the ALS user step, not by the spectral filter (see `ImplicitALS`).
        public var implicitALS: ImplicitALS?
        /// Set for a spectral model blended with a fitted implicit-ALS part (see `ALSBlend`): `factors` is then the
        /// spectral part's k, and the rows are `factors + alsBlend.factors` wide.
        public var alsBlend: ALSBlend?

        /// Settings; the defaults are `--tune off`'s.
        /// - Parameters:
        ///   - factors: k.
        ///   - exponent: α.
        ///   - userExponent: δ.
        ///   - spectrumPower: β.
        ///   - knee: m of the Wiener-like filter (0: λ^β).
        ///   - weighting: rating or binary weights.
        ///   - ratingOffset: the scale minimum.
        ///   - implicitALS: the settings of an imported implicit-ALS model.
        ///   - alsBlend: the settings of a blended ALS part.
        public init(
            factors: Int = 64, exponent: Double = 0.3, userExponent: Double = 0, spectrumPower: Double = 0.5,
            knee: Int = 0,
            weighting: Weighting = .rating, ratingOffset: Double = 1, implicitALS: ImplicitALS? = nil,
            alsBlend: ALSBlend? = nil
        ) {
            self.factors = factors
            self.exponent = exponent
            self.userExponent = userExponent
            self.spectrumPower = spectrumPower
            self.knee = knee
            self.weighting = weighting
            self.ratingOffset = ratingOffset
            self.implicitALS = implicitALS
            self.alsBlend = alsBlend
        }

        /// Floats of an item row: k, plus the ALS part's k when blended.
        public var width: Int { factors + (alsBlend?.factors ?? 0) }

        /// "k 64, α 0.3, f(λ) = λ^0.5, rating weights".
        public var description: String {
            if let als = implicitALS { return "k \(factors), implicit ALS (α \(als.alpha), λ \(als.regularization))" }
            return "k \(factors), α \(exponent)" + (userExponent > 0 ? ", δ \(userExponent)" : "") + ", "
                + (knee > 0 ? "f(λ) = (λ/(λ+λ_\(knee)))^\(spectrumPower)" : "f(λ) = λ^\(spectrumPower)")
                + ", \(weighting) weights" + (alsBlend.map { " + \($0)" } ?? "")
        }

        @inline(__always) func weight(_ rating: Float) -> Float {
            weighting == .binary ? 1 : max(rating - Float(ratingOffset) + 1, 0)
        }
    }

    /// The settings it was fitted with.
    public let parameters: Parameters
    /// Floats of an item (and user) vector: k, plus the ALS part's k for a blended model (see `ALSBlend`).
    public var factors: Int { parameters.width }
    /// Whether item i had a rating when the model was fitted (or when the snapshot it was decoded from was
    /// made): its vector is then kept by `absorb`; otherwise `absorb` folds it in.
    /// - Parameter i: the item.
    /// - Returns: whether it had a rating at fitting time.
    public func hasFittedVector(_ i: Int) -> Bool { i < fittedItems.count && fittedItems[i] }
    /// Per item: it had a rating (a non-zero weight) when this model was made or decoded.
    private var fittedItems: [Bool]
    /// Items with a row: those known when it was fitted, and those added since by `absorb`.
    public private(set) var itemCount: Int
    /// λ_1 ≥ … ≥ λ_k of XᵀX.
    public let eigenvalues: [Float]
    /// itemCount × factors, row-major: V (orthonormal columns as fitted; `absorb` moves rows since).
    public private(set) var itemVectors: [Float]
    /// d_j^(−α) per item (0 for an item with no rating).
    public private(set) var itemWeights: [Float]
    /// f(λ_c) per factor: the spectral filter of the scores (computed from `eigenvalues` and `parameters`).
    public let filter: [Float]
    /// The popularity prior: log(1 + the item's training ratings in the top quarter of the scale), for
    /// lists blended with popularity (see `topN(user:n:excluded:popularityWeight:)`).
    public private(set) var popularity: [Float]
    /// Stored user vectors, `storedUserCount` × k (empty for a fitted model, whose users are computed from
    /// their ratings): an imported model's own user factors (see `ImplicitALS`).
    public private(set) var storedUsers: [Float]
    /// Per stored user: `RankingModel.ratingsHash` of the ratings the vector stands for (0: no vector). A
    /// stored vector answers only while the user's ratings hash to it; after a new rating the user's vector
    /// is computed from their ratings again.
    public private(set) var storedUserHashes: [UInt64]
    /// YᵀY of the item vectors (k × k, row-major), for the implicit-ALS user step; empty otherwise.
    var gram: [Double]

    /// A model from its parts (as `fit` and decoding make it).
    /// - Parameters:
    ///   - parameters: the settings.
    ///   - itemCount: items.
    ///   - eigenvalues: the kept eigenvalues.
    ///   - itemVectors: itemCount × k floats.
    ///   - itemWeights: d_j^(−α) per item.
    ///   - popularity: the popularity prior, if any.
    ///   - fitted: per item, whether it had a rating when fitted (all when nil).
    ///   - storedUsers: stored user vectors (an imported ALS model's).
    ///   - storedUserHashes: their ratings hashes.
    public init(
        parameters: Parameters, itemCount: Int, eigenvalues: [Float], itemVectors: [Float], itemWeights: [Float],
        popularity: [Float]? = nil, fitted: [Bool]? = nil, storedUsers: [Float] = [], storedUserHashes: [UInt64] = []
    ) {
        precondition(
            eigenvalues.count == parameters.width && itemVectors.count == parameters.width * itemCount
                && itemWeights.count == itemCount && (popularity?.count ?? itemCount) == itemCount)
        self.parameters = parameters
        self.itemCount = itemCount
        self.eigenvalues = eigenvalues
        self.itemVectors = itemVectors
        self.itemWeights = itemWeights
        self.popularity = popularity ?? [Float](repeating: 0, count: itemCount)
        self.filter = RankingModel.filter(parameters, eigenvalues: eigenvalues)
        self.fittedItems = fitted.flatMap { $0.count == itemCount ? $0 : nil } ?? itemWeights.map { $0 > 0 }
        precondition(storedUsers.count == storedUserHashes.count * (parameters.alsBlend?.factors ?? parameters.width))
        self.storedUsers = storedUsers
        self.storedUserHashes = storedUserHashes
        if let blend = parameters.alsBlend {
            self.gram = RankingModel.blendGram(
                itemVectors, width: parameters.width, from: parameters.factors, k2: blend.factors, itemCount: itemCount)
        } else {
            self.gram =
                parameters.implicitALS == nil
                ? [] : RankingModel.gram(itemVectors, factors: parameters.factors, itemCount: itemCount)
        }
    }

    /// This model with the popularity prior of training ratings at or above `relevantAt` (log(1 + count)).
    /// - Parameters:
    ///   - users: the training ratings' users.
    ///   - items: their items.
    ///   - ratings: their values.
    ///   - relevantAt: the least rating that counts.
    /// - Returns: the model with the prior.
    public func withPopularity(users: [Int32], items: [Int32], ratings: [Float], relevantAt: Float) -> RankingModel {
        var counts = [Int](repeating: 0, count: itemCount)
        for j in 0..<items.count where ratings[j] >= relevantAt && Int(items[j]) < itemCount {
            counts[Int(items[j])] += 1
        }
        var copy = self
        copy.popularity = counts.map { Float(log1p(Double($0))) }
        return copy
    }

    /// This model with the popularity prior of these per-item counts of relevant ratings (log(1 + count)).
    /// - Parameter counts: per item, its relevant ratings.
    /// - Returns: the model with the prior.
    public func withPopularity(relevantCounts counts: [Int]) -> RankingModel {
        var copy = self
        copy.popularity = (0..<itemCount).map { Float(log1p(Double($0 < counts.count ? counts[$0] : 0))) }
        return copy
    }

    /// Fits the model to training ratings (each (user, item) pair once).
    /// - Parameters:
    ///   - users: the ratings' dense user ids.
    ///   - items: the ratings' dense item ids.
    ///   - ratings: the ratings (same length as `users` and `items`).
    ///   - userCount: users (every id below it).
    ///   - itemCount: items (every id below it).
    ///   - parameters: k, α, δ, filter and weighting, and the ALS part if any (see `ALSBlend`).
    ///   - iterations: subspace iterations (each costs two passes over the ratings).
    ///   - seed: seed of the random start.
    ///   - threads: passes over more than 100,000 ratings are split between threads.
    ///   - isCancelled: polled before each iteration; once true, a less converged model comes back.
    /// - Returns: the fitted model.
    public static func fit(
        users: [Int32], items: [Int32], ratings: [Float], userCount: Int, itemCount: Int,
        parameters: Parameters, iterations: Int = 6, seed: UInt64 = 42,
        threads: Int = ProcessInfo.processInfo.activeProcessorCount,
        isCancelled: (() -> Bool)? = nil
    ) -> RankingModel {
        var spectral = parameters
        spectral.alsBlend = nil
        let spectrum = Spectrum.fit(
            users: users, items: items, ratings: ratings, userCount: userCount, itemCount: itemCount,
            exponent: parameters.exponent, userExponent: parameters.userExponent, weighting: parameters.weighting,
            ratingOffset: parameters.ratingOffset, factors: parameters.factors,
            iterations: iterations, seed: seed, threads: threads, isCancelled: isCancelled)
        let model = spectrum.model(spectral)
        guard let blend = parameters.alsBlend else { return model }
        return model.withALS(
            blend, users: users, items: items, ratings: ratings, userCount: userCount, seed: seed, threads: threads,
            isCancelled: isCancelled)
    }

    // MARK: Incremental updates

    /// Items the model has a row for, up to `count` (new rows are zero: no vector, no ratings).
    /// - Parameter count: the new item count (a smaller one changes nothing).
    public mutating func grow(itemCount count: Int) {
        guard count > itemCount else { return }
        itemVectors += [Float](repeating: 0, count: (count - itemCount) * factors)
        itemWeights += [Float](repeating: 0, count: count - itemCount)
        popularity += [Float](repeating: 0, count: count - itemCount)
        fittedItems += [Bool](repeating: false, count: count - itemCount)
        itemCount = count
    }

    /// The rating count d_j that item j's weight d_j^(−α) stands for (0 without ratings). With α = 0 every
    /// rated item weighs 1 whatever its count, so counts are not kept and a rated item reads as 1.
    /// - Parameter j: the item.
    /// - Returns: d_j.
    public func ratingCount(item j: Int) -> Int {
        guard j >= 0, j < itemCount, itemWeights[j] > 0 else { return 0 }
        guard parameters.exponent > 0 else { return 1 }
        return max(1, Int((pow(Double(itemWeights[j]), -1 / parameters.exponent)).rounded()))
    }

    /// Item j's row: its vector, its rating count (see `ratingCount`) and its popularity prior.
    /// - Parameter j: the item.
    /// - Returns: the vector, the rating count and the prior.
    public func itemRow(_ j: Int) -> (vector: [Float], ratings: Int, popularity: Float) {
        (Array(itemVectors[(j * factors)..<((j + 1) * factors)]), ratingCount(item: j), popularity[j])
    }

    /// Replaces item j's row (growing the model when j is new); a vector of another length is ignored.
    /// The vector array is written only when the row's vector changed, so patching a shared copy with rows
    /// whose count or prior alone moved (a fitted item rated again) does not copy every item vector.
    /// - Parameters:
    ///   - j: the item.
    ///   - vector: its vector (k floats).
    ///   - ratings: its rating count.
    ///   - popularity: its popularity prior.
    public mutating func setItem(_ j: Int, vector: [Float], ratings: Int, popularity: Float) {
        guard j >= 0, vector.count == factors else { return }
        grow(itemCount: j + 1)
        if !(0..<factors).allSatisfy({ itemVectors[j * factors + $0] == vector[$0] }) {
            if !gram.isEmpty {
                let k1 = parameters.alsBlend == nil ? 0 : spectralFactors
                let old = Array(itemRow(j).vector)
                updateGram(removing: Array(old[k1...]), adding: Array(vector[k1...]))
            }
            for c in 0..<factors { itemVectors[j * factors + c] = vector[c] }
        }
        itemWeights[j] = ratings > 0 ? Float(pow(Double(ratings), -parameters.exponent)) : 0
        self.popularity[j] = popularity
    }

    /// Removes item j: its vector, weight, popularity prior and fitted flag become zero, so it scores nothing, counts
    /// for no user's vector and reads as absent (`mfrec forget item`).
    /// - Parameter j: the item.
    public mutating func forgetItem(_ j: Int) {
        guard j >= 0, j < itemCount else { return }
        setItem(j, vector: [Float](repeating: 0, count: factors), ratings: 0, popularity: 0)
        fittedItems[j] = false
    }

    /// Removes user u's stored vector and ratings hash (an imported ALS model's; other models store no users).
    /// - Parameter u: the user.
    public mutating func forgetUser(_ u: Int) {
        guard u >= 0, u < storedUserHashes.count else { return }
        let width = storedWidth
        for c in 0..<width { storedUsers[u * width + c] = 0 }
        storedUserHashes[u] = 0
    }

    /// Removes one rating (r by a user, of item j) from the item side's counts: d_j falls by one and, for a rating
    /// at or above `relevantAt`, the popularity prior too. Fitted vectors stay (see `absorb`). `mfrec delete rating`.
    /// - Parameters:
    ///   - rating: the removed rating's value.
    ///   - j: its item.
    ///   - relevantAt: the least rating the prior counts.
    public mutating func remove(rating: Float, item j: Int, relevantAt: Float) {
        guard j >= 0, j < itemCount else { return }
        let row = itemRow(j)
        let prior =
            rating >= relevantAt ? Float(log1p(max(0, expm1(Double(row.popularity)).rounded() - 1))) : row.popularity
        // Without popularity damping (α = 0) the weight does not depend on the count (see `ratingCount`).
        setItem(
            j, vector: row.vector, ratings: parameters.exponent > 0 ? max(0, row.ratings - 1) : row.ratings,
            popularity: prior)
    }

    /// Moves the item side toward one user's new ratings: items without a fitted vector get one by the
    /// fold-in identity of the fit; every rated item's count and popularity prior follow.
    ///
    /// For the fitted eigenvectors V_i = Λ⁻¹ Σ_u x_ui s_u exactly, where s_u = Σ_j x_uj V_j is user u's
    /// projection. For an item the fit had no rating of (a new item, grown here, or one rated only outside
    /// the training part), each new rating is one more term of that sum: q_i += x_ui · Λ⁻¹ s_u, with s_u
    /// from the user's ratings as they are now. A new pair raises the item's count d_i by one, so its
    /// earlier terms first shrink by ((d_i + 1)/d_i)^(−α); a re-rating adds the difference of the two
    /// weights. Items with a fitted vector keep it: one more term moves the components with small λ by far
    /// more than their fitted size (the other raters' terms that balance it are not at hand), and on
    /// ML-100K in random order moving them took the ranking model's NDCG@10 on the probe from 0.275 to
    /// 0.058; damping the step by the filter still left it below not moving them (`mfrec-bench
    /// incremental`). Their weight d_i^(−α) and prior still follow the new count. The user side needs
    /// nothing: a user's vector is computed from their ratings at query time.
    ///
    /// Cost: O((ratings of u + new ratings) · k), never a pass over a popular item's ratings.
    /// - Parameters:
    ///   - userRatings: every rating of the user now (the new ones included); called only when an item
    ///     without a fitted vector is among `new`.
    ///   - new: the user's new ratings, with the value each replaced (nil for a new pair).
    ///   - relevantAt: ratings at or above it count for the popularity prior.
    /// - Returns: the items whose rows changed.
    /// - Throws: what `userRatings` throws; the model is unchanged then.
    public mutating func absorb(
        userRatings: () throws -> [(item: Int32, rating: Float)], new: [(item: Int32, rating: Float, previous: Float?)],
        relevantAt: Float
    ) rethrows -> [Int] {
        guard let top = new.map({ Int($0.item) }).max(), top >= 0 else { return [] }
        grow(itemCount: top + 1)
        // s_u with the weights as they are before this update's count changes (one projection per batch). Only
        // a fold-in needs it: the user's ratings are not even read when every rated item has a fitted vector
        // (on a large catalog, reading their rows from memory is most of an update's cost).
        var projection = [Float](repeating: 0, count: factors)
        var userWeight: Float = 1
        let foldsIn = parameters.implicitALS == nil  // an imported ALS model's items keep their vectors
        if foldsIn && new.contains(where: { $0.item >= 0 && !hasFittedVector(Int($0.item)) }) {
            let rated = try userRatings()
            if parameters.userExponent > 0 && !rated.isEmpty {
                userWeight = Float(pow(Double(rated.count), -parameters.userExponent))
            }
            for (item, rating) in rated where item >= 0 && Int(item) < itemCount {
                let j = Int(item), w = parameters.weight(rating) * itemWeights[j] * userWeight
                guard w != 0 else { continue }
                for c in 0..<factors { projection[c] += w * itemVectors[j * factors + c] }
            }
        }
        let inverse = eigenvalues.map { $0 > 0 ? 1 / $0 : 0 }
        var changed: [Int] = []
        for (item, rating, previous) in new where item >= 0 {
            let i = Int(item), row = i * factors
            if previous == nil {
                let before = ratingCount(item: i)
                if before > 0 && parameters.exponent > 0 && !hasFittedVector(i) {
                    let shrink = Float(pow(Double(before + 1) / Double(before), -parameters.exponent))
                    for c in 0..<factors { itemVectors[row + c] *= shrink }
                }
                itemWeights[i] = Float(pow(Double(before + 1), -parameters.exponent))
            }
            let wasRelevant = previous.map { $0 >= relevantAt } ?? false
            if (rating >= relevantAt) != wasRelevant {
                let count = max(0, (expm1(Double(popularity[i]))).rounded() + (wasRelevant ? -1 : 1))
                popularity[i] = Float(log1p(count))
            }
            let delta =
                (parameters.weight(rating) - (previous.map(parameters.weight) ?? 0)) * itemWeights[i] * userWeight
            if foldsIn && delta != 0 && !hasFittedVector(i) {
                for c in 0..<factors { itemVectors[row + c] += delta * projection[c] * inverse[c] }
            }
            changed.append(i)
        }
        return changed
    }

    /// The input-side row of item j for a rating r: w(r) · d_j^(−α) · V_j Λ^β, added into `out`.
    @inline(__always) func accumulate(
        item j: Int, rating: Float, into out: UnsafeMutableBufferPointer<Float>, vectors: UnsafeBufferPointer<Float>,
        powers: UnsafeBufferPointer<Float>
    ) {
        let w = parameters.weight(rating) * itemWeights[j]
        guard w != 0 else { return }
        let row = j * factors
        precondition(row + factors <= vectors.count && out.count >= factors && powers.count >= factors)
        // Each lane in the order out[c] + (w · v) · f: unchecked, and through a pointer to the row (an overflow check
        // on row + c kept the loop scalar), so it runs in vector registers.
        let v = vectors.baseAddress! + row
        for c in 0..<factors { out[c] += w * v[c] * powers[c] }
    }

    /// f(λ) per factor (see `Parameters.knee`).
    var powers: [Float] { filter }

    /// f(λ) per factor for these parameters and eigenvalues.
    static func filter(_ parameters: Parameters, eigenvalues: [Float]) -> [Float] {
        let knee =
            parameters.knee > 0 && parameters.knee < eigenvalues.count
            ? Double(max(eigenvalues[parameters.knee], 0)) : nil
        // A blended model's ALS columns take no part in the spectral filter (their eigenvalues are 0).
        return eigenvalues.enumerated().map { c, value in
            guard c < parameters.factors else { return 0 }
            let lambda = Double(max(value, 0))
            let base = knee.map { lambda + $0 > 0 ? lambda / (lambda + $0) : 0 } ?? lambda
            return Float(pow(base, parameters.spectrumPower))
        }
    }

    /// A user's vector from their ratings (items unknown to the model are skipped); all zeros when none
    /// of the rated items has a vector.
    /// - Parameter ratings: the user's (item, rating) pairs.
    /// - Returns: k floats.
    public func userVector(ratings: [(item: Int32, rating: Float)]) -> [Float] {
        if let als = parameters.implicitALS { return alsUserStep(ratings: ratings, als) }
        if let blend = parameters.alsBlend { return blendedUserVector(user: nil, ratings: ratings, blend) }
        return spectralUserVector(ratings: ratings)
    }

    /// The spectral part of a user's vector, Σ_j x_uj V_j f(Λ) (a blended model's ALS columns 0).
    func spectralUserVector(ratings: [(item: Int32, rating: Float)]) -> [Float] {
        var out = [Float](repeating: 0, count: factors)
        let powers = self.powers
        out.withUnsafeMutableBufferPointer { out in
            itemVectors.withUnsafeBufferPointer { vectors in
                powers.withUnsafeBufferPointer { powers in
                    for (item, rating) in ratings where item >= 0 && Int(item) < itemCount {
                        accumulate(item: Int(item), rating: rating, into: out, vectors: vectors, powers: powers)
                    }
                }
            }
        }
        return out
    }

    /// The n items with the largest q_i · user, minus `excluded` (TopN order: ties by smaller id). With a
    /// `popularityWeight` w > 0, the items with the largest z(q_i · user) + w · z(popularity_i), z the
    /// standardization over all items — a blend with the popularity prior, still a dot product of the
    /// user's [user / σ_u, w / σ_pop] with the item's [q_i, popularity_i].
    /// - Parameters:
    ///   - user: the user's vector.
    ///   - n: how many items.
    ///   - excluded: item ids left out.
    ///   - popularityWeight: w; 0 for no blend.
    ///   - ratingScores: the rating model's scores for this user (`FactorModel.itemScores`), for a blend with
    ///     them: z(q_i · user) + w · z(popularity_i) + w_r · z(rating_i) (see `ItemScan.topN`).
    ///   - ratingWeight: w_r; 0 for no blend with the rating model.
    /// - Returns: (item, score) pairs, best first.
    public func topN(
        user: [Float], n: Int, excluded: Set<Int32>, popularityWeight: Float = 0, ratingScores: [Float]? = nil,
        ratingWeight: Float = 0
    ) -> [(item: Int32, score: Float)] {
        ItemScan.topN(
            vectors: itemVectors, factors: factors, itemCount: itemCount, query: user, n: n, excluded: excluded,
            prior: popularityWeight > 0 ? popularity : nil, priorWeight: popularityWeight, ratingScores: ratingScores,
            ratingWeight: ratingWeight)
    }

    /// `topN(user:n:excluded:popularityWeight:)` for many users in one blocked pass over the item vectors
    /// (the lists are the same, bit for bit); `excluded[u]` sorted ascending without repeats.
    /// - Parameters:
    ///   - users: the users' vectors.
    ///   - n: how many items each.
    ///   - excluded: per user, item ids left out.
    ///   - popularityWeights: per user, w.
    ///   - ratingWeight: w_r of the blend with the rating model; 0 for none.
    ///   - ratingScores: per user (by index), the rating model's scores for the blend, or nil for none.
    /// - Returns: one list per user.
    public func topN(
        users: [[Float]], n: Int, excluded: [[Int32]], popularityWeights: [Float], ratingWeight: Float = 0,
        ratingScores: ((Int) -> [Float]?)? = nil
    ) -> [[(item: Int32, score: Float)]] {
        ItemScan.topN(
            vectors: itemVectors, factors: factors, itemCount: itemCount, queries: users, n: n, excluded: excluded,
            prior: popularity, priorWeights: popularityWeights, ratingWeight: ratingWeight, ratingScores: ratingScores)
    }

    /// `topN(users:n:excluded:popularityWeights:ratingWeight:ratingScores:)` with the blend's rating scores
    /// computed here, in blocks of users, from the rating model (the same floats as `FactorModel.itemScores`, so
    /// the same lists): `ratingUsers[u]` is query u's row there; nil, or a row without a vector, for no blend.
    /// - Parameters:
    ///   - users: the users' vectors.
    ///   - n: how many items each.
    ///   - excluded: per user, item ids left out (ascending, no repeats).
    ///   - popularityWeights: per user, w.
    ///   - ratingWeight: w_r of the blend with the rating model (0: no blend, the plain lists).
    ///   - ratingModel: the rating model.
    ///   - ratingUsers: per user, their row in `ratingModel`, or nil.
    /// - Returns: one list per user.
    public func topN(
        users: [[Float]], n: Int, excluded: [[Int32]], popularityWeights: [Float], ratingWeight: Float,
        ratingModel: FactorModel, ratingUsers: [Int?]
    ) -> [[(item: Int32, score: Float)]] {
        precondition(ratingUsers.count == users.count && users.allSatisfy { $0.count == factors })
        precondition(excluded.count == users.count && popularityWeights.count == users.count)
        guard ratingWeight > 0, n > 0, itemCount > 0 else {
            return topN(users: users, n: n, excluded: excluded, popularityWeights: popularityWeights)
        }
        return FloatRows.with(itemVectors) { rows in
            FloatRows.with(popularity) { prior in
                ItemScan.blendedTopN(
                    rows: rows, stride: factors, factors: factors, itemCount: itemCount, queries: users, n: n,
                    excluded: excluded, prior: prior, priorWeights: popularityWeights,
                    ratingWeight: ratingWeight, source: .model(ratingModel, users: ratingUsers))
            }
        }
    }

    /// The top-n of a user with these ratings; nil when none of the rated items has a vector. `user`, when
    /// given, lets a stored vector answer (see `userVector(user:ratings:)`).
    /// - Parameters:
    ///   - user: the user's id, when a stored vector may answer.
    ///   - ratings: the user's (item, rating) pairs.
    ///   - n: how many items.
    ///   - excluded: item ids left out.
    ///   - popularityWeight: w; 0 for no blend.
    ///   - ratingScores: the rating model's scores for the user, for a blend with them (nil: none).
    ///   - ratingWeight: w_r of that blend.
    /// - Returns: (item, score) pairs, best first.
    public func topN(
        user: Int? = nil, ratings: [(item: Int32, rating: Float)], n: Int, excluded: Set<Int32>,
        popularityWeight: Float = 0, ratingScores: [Float]? = nil, ratingWeight: Float = 0
    ) -> [(item: Int32, score: Float)]? {
        let query = userVector(user: user, ratings: ratings)
        guard query.contains(where: { $0 != 0 }) else { return nil }
        return topN(
            user: query, n: n, excluded: excluded, popularityWeight: popularityWeight, ratingScores: ratingScores,
            ratingWeight: ratingWeight)
    }

    /// `topN(user:ratings:n:excluded:popularityWeight:)` scanning the ranking section of a mapped item matrix
    /// written from this model (the same list); the in-memory rows when `matrix` holds no section of this
    /// model's shape, or no matrix is given.
    /// - Parameters:
    ///   - matrix: the mapped item matrix of the live generation this model belongs to, if any.
    ///   - user: the user's id, when a stored vector may answer.
    ///   - ratings: the user's (item, rating) pairs.
    ///   - n: how many items.
    ///   - excluded: item ids left out.
    ///   - popularityWeight: w; 0 for no blend.
    /// - Returns: (item, score) pairs, best first; nil when none of the rated items has a vector.
    public func topN(
        in matrix: ItemMatrix?, user: Int? = nil, ratings: [(item: Int32, rating: Float)], n: Int,
        excluded: Set<Int32>, popularityWeight: Float = 0
    ) -> [(item: Int32, score: Float)]? {
        topN(
            in: matrix, user: user, ratings: ratings, n: n, sortedExclusions: excluded.sorted(),
            popularityWeight: popularityWeight)
    }

    /// `topN(in:user:ratings:n:excluded:popularityWeight:)` with the excluded items already sorted ascending,
    /// without repeats.
    /// - Parameters:
    ///   - matrix: the mapped item matrix of the live generation this model belongs to, if any.
    ///   - user: the user's id, when a stored vector may answer.
    ///   - ratings: the user's (item, rating) pairs.
    ///   - n: how many items.
    ///   - sortedExclusions: item ids left out, ascending, no repeats.
    ///   - popularityWeight: w; 0 for no blend.
    ///   - ratingScores: the rating model's scores for the user, for a blend with them (nil: none).
    ///   - ratingWeight: w_r of that blend.
    /// - Returns: (item, score) pairs, best first; nil when none of the rated items has a vector.
    public func topN(
        in matrix: ItemMatrix?, user: Int? = nil, ratings: [(item: Int32, rating: Float)], n: Int,
        sortedExclusions: [Int32], popularityWeight: Float = 0, ratingScores: [Float]? = nil, ratingWeight: Float = 0
    ) -> [(item: Int32, score: Float)]? {
        precondition(
            zip(sortedExclusions, sortedExclusions.dropFirst()).allSatisfy { $0 < $1 },
            "RankingModel.topN: sortedExclusions must be ascending without repeats")
        let query = userVector(user: user, ratings: ratings)
        guard query.contains(where: { $0 != 0 }) else { return nil }
        guard let matrix, matrix.ranking == ItemMatrix.Shape(itemCount: itemCount, factors: factors) else {
            return ItemScan.topN(
                vectors: itemVectors, factors: factors, itemCount: itemCount, queries: [query], n: n,
                excluded: [sortedExclusions], prior: popularityWeight > 0 ? popularity : nil,
                priorWeights: [popularityWeight], ratingWeight: ratingWeight,
                ratingScores: ratingScores.map { scores in { _ in scores } })[0]
        }
        return matrix.rankingTopN(
            query: query, n: n, sortedExclusions: sortedExclusions, popularityWeight: popularityWeight,
            ratingScores: ratingScores, ratingWeight: ratingWeight)
    }

    /// How alike two items are to this model: the cosine of their rows weighted by the filter,
    /// V_a f(Λ) V_bᵀ / (‖V_a‖_f ‖V_b‖_f). That is the item–item affinity the scores are made of
    /// (score(u, i) = Σ_j x_uj · V_j f(Λ) V_iᵀ), so components the filter damps count as little here as in
    /// a list (a plain cosine of the rows let the faint tail components pair obscure items). 0 when either
    /// row is zero or unknown.
    /// - Parameters:
    ///   - a: an item.
    ///   - b: another item.
    /// - Returns: the filter-weighted cosine.
    public func cosine(_ a: Int, _ b: Int) -> Float {
        guard a >= 0, b >= 0, a < itemCount, b < itemCount else { return 0 }
        var dot: Float = 0, na: Float = 0, nb: Float = 0
        let ra = a * factors, rb = b * factors
        for c in 0..<factors {
            let x = itemVectors[ra + c], y = itemVectors[rb + c], f = filter[c]
            dot += f * x * y
            na += f * x * x
            nb += f * y * y
        }
        return na > 0 && nb > 0 ? dot / (na * nb).squareRoot() : 0
    }

    /// The n items most alike `item` by `cosine`, largest first (ties by smaller id); empty for an
    /// unknown item or a zero row.
    /// - Parameters:
    ///   - item: the item.
    ///   - n: how many.
    /// - Returns: (item, cosine) pairs.
    public func similar(to item: Int, n: Int) -> [(item: Int32, score: Float)] {
        guard item >= 0, item < itemCount, n > 0 else { return [] }
        let row = item * factors
        var query = [Float](repeating: 0, count: factors)
        var norm: Float = 0
        for c in 0..<factors {
            query[c] = filter[c] * itemVectors[row + c]
            norm += query[c] * itemVectors[row + c]
        }
        guard norm > 0 else { return [] }
        var top = TopN(capacity: n)
        for other in 0..<itemCount where other != item {
            var dot: Float = 0, nb: Float = 0
            let r = other * factors
            for c in 0..<factors {
                let y = itemVectors[r + c]
                dot += query[c] * y
                nb += filter[c] * y * y
            }
            guard nb > 0 else { continue }
            let score = dot / (norm * nb).squareRoot()
            if score >= top.threshold { top.offer(score: score, item: Int32(other)) }
        }
        return top.sorted().map { ($0.item, $0.score) }
    }

    // MARK: Encoding

    static let magic: [UInt8] = Array("MFRK".utf8)

    /// The model's arrays as bytes: magic, version 2, factors, item count (UInt32 each), then eigenvalues,
    /// item weights, the popularity prior and item vectors as little-endian float32, then one byte per item:
    /// 1 when it has a fitted vector (see `hasFittedVector`; version 1 had no such bytes). Parameters are
    /// stored beside it as JSON.
    /// Version 3 (a model with stored users) appends the stored user count (UInt32), their vectors
    /// (float32) and their ratings hashes (UInt64 each).
    /// - Returns: the bytes.
    public func encoded() -> [UInt8] {
        var out = RankingModel.magic
        let users = storedUserHashes.count
        out.reserveCapacity(
            20 + 4 * (factors + 2 * itemCount + itemVectors.count) + itemCount + users * (4 * storedWidth + 8))
        for v in [UInt32(users > 0 ? 3 : 2), UInt32(factors), UInt32(itemCount)] { LittleEndian.append(v, to: &out) }
        for array in [eigenvalues, itemWeights, popularity, itemVectors] {
            LittleEndian.append(floats: array, to: &out)
        }
        out += fittedItems.map { $0 ? 1 : 0 }
        if users > 0 {
            LittleEndian.append(UInt32(users), to: &out)
            LittleEndian.append(floats: storedUsers, to: &out)
            for hash in storedUserHashes { LittleEndian.append(hash, to: &out) }
        }
        return out
    }

    /// Decodes `encoded()`; nil when the bytes are not such an encoding, or do not match `parameters`.
    /// - Parameters:
    ///   - parameters: the settings stored beside the bytes.
    ///   - bytes: the encoding.
    public init?(parameters: Parameters, encoded bytes: [UInt8]) {
        guard bytes.count >= 16, Array(bytes[0..<4]) == RankingModel.magic else { return nil }
        func u32(_ at: Int) -> UInt32 { LittleEndian.integer(UInt32.self, in: bytes, at: at)! }  // count checked above
        let version = u32(4), k = Int(u32(8)), n = Int(u32(12))
        guard (1...3).contains(version), k == parameters.width, k > 0 else { return nil }
        let storedWidth = parameters.alsBlend?.factors ?? k
        let (kn, overflow1) = k.multipliedReportingOverflow(by: n)
        let (total, overflow2) = (k + 2 * n + kn).multipliedReportingOverflow(by: 4)
        guard !overflow1, !overflow2 else { return nil }
        let flagsEnd = 16 + total + (version >= 2 ? n : 0)
        var users = 0, storedUsers: [Float] = [], hashes: [UInt64] = []
        if version == 3 {
            guard bytes.count >= flagsEnd + 4 else { return nil }
            users = Int(u32(flagsEnd))
            let (rowFloats, overflow3) = users.multipliedReportingOverflow(by: storedWidth)
            guard !overflow3, users > 0, bytes.count == flagsEnd + 4 + rowFloats * 4 + users * 8,
                let rows = LittleEndian.floats(in: bytes, at: flagsEnd + 4, count: rowFloats),
                rows.allSatisfy({ $0.isFinite })
            else { return nil }
            storedUsers = rows
            let hashesAt = flagsEnd + 4 + rowFloats * 4
            hashes = (0..<users).map { LittleEndian.integer(UInt64.self, in: bytes, at: hashesAt + 8 * $0)! }
        } else {
            guard bytes.count == flagsEnd else { return nil }
        }
        guard let floats = LittleEndian.floats(in: bytes, at: 16, count: k + 2 * n + kn),
            floats.allSatisfy({ $0.isFinite })
        else { return nil }
        let flags = version >= 2 ? bytes[(16 + total)..<flagsEnd] : []
        guard flags.allSatisfy({ $0 <= 1 }) else { return nil }
        self.init(
            parameters: parameters, itemCount: n, eigenvalues: Array(floats[0..<k]),
            itemVectors: Array(floats[(k + 2 * n)..<(k + 2 * n + kn)]), itemWeights: Array(floats[k..<(k + n)]),
            popularity: Array(floats[(k + n)..<(k + 2 * n)]), fitted: version >= 2 ? flags.map { $0 == 1 } : nil,
            storedUsers: storedUsers, storedUserHashes: hashes)
    }
}

/// The top eigenpairs of XᵀX for one (α, weighting): every k up to `factors` and every β are read off
/// it without fitting again (tuning uses this).
public struct Spectrum: Sendable {
    /// Items.
    public let itemCount: Int
    /// α: the item popularity damping.
    public let exponent: Double
    /// δ: the heavy-user damping.
    public let userExponent: Double
    /// Rating or binary weights.
    public let weighting: RankingModel.Weighting
    /// The scale's bottom (w(r) = r − offset + 1).
    public let ratingOffset: Double
    /// Largest first.
    public let values: [Float]
    /// itemCount × values.count, row-major.
    public let vectors: [Float]
    /// d_j^(−α) per item.
    public let itemWeights: [Float]

    /// The top eigenpairs of XᵀX for the given weighting, α and δ.
    /// - Parameters:
    ///   - users: the ratings' users.
    ///   - items: their items.
    ///   - ratings: their values.
    ///   - userCount: users.
    ///   - itemCount: items.
    ///   - exponent: α.
    ///   - userExponent: δ.
    ///   - weighting: rating or binary weights.
    ///   - ratingOffset: the scale minimum.
    ///   - factors: eigenpairs wanted.
    ///   - iterations: subspace iterations.
    ///   - seed: the random start's seed.
    ///   - threads: threads of each product.
    ///   - isCancelled: polled before each iteration.
    /// - Returns: the eigenpairs and item weights.
    public static func fit(
        users: [Int32], items: [Int32], ratings: [Float], userCount: Int, itemCount: Int,
        exponent: Double, userExponent: Double = 0, weighting: RankingModel.Weighting, ratingOffset: Double,
        factors: Int,
        iterations: Int = 6, seed: UInt64 = 42,
        threads: Int = ProcessInfo.processInfo.activeProcessorCount,
        isCancelled: (() -> Bool)? = nil
    ) -> Spectrum {
        precondition(users.count == items.count && items.count == ratings.count && factors > 0)
        var degree = [Int](repeating: 0, count: itemCount)
        for i in items { degree[Int(i)] += 1 }
        let itemWeights = degree.map { $0 > 0 ? Float(pow(Double($0), -exponent)) : 0 }
        let parameters = RankingModel.Parameters(
            factors: factors, exponent: exponent, spectrumPower: 0, weighting: weighting,
            ratingOffset: ratingOffset)
        // x_uj for every rating, indexed by the rating's position (n_u^(−δ) damps heavy users in the fit).
        var userDegree = [Int](repeating: 0, count: userCount)
        if userExponent != 0 { for u in users { userDegree[Int(u)] += 1 } }
        let userWeights = userDegree.map { $0 > 0 ? Float(pow(Double($0), -userExponent)) : 1 }
        var x = [Float](repeating: 0, count: ratings.count)
        for r in 0..<ratings.count {
            x[r] = parameters.weight(ratings[r]) * itemWeights[Int(items[r])] * userWeights[Int(users[r])]
        }
        let positions = (0..<Int32(ratings.count)).map { $0 }
        let (values, vectors) = CooccurrenceEmbedding.topEigenpairs(
            users: users, items: items, weightIndex: positions, weight: x, userCount: userCount, itemCount: itemCount,
            factors: factors, oversampling: max(8, min(32, factors / 4)), iterations: iterations, seed: seed,
            threads: threads,
            isCancelled: isCancelled)
        return Spectrum(
            itemCount: itemCount, exponent: exponent, userExponent: userExponent, weighting: weighting,
            ratingOffset: ratingOffset,
            values: values, vectors: vectors, itemWeights: itemWeights)
    }

    /// The model with the first `parameters.factors` eigenpairs (at most the fitted number).
    /// - Parameter parameters: the settings (k, filter, …).
    /// - Returns: the model.
    public func model(_ parameters: RankingModel.Parameters) -> RankingModel {
        let fitted = values.count, k = min(parameters.factors, fitted)
        var p = parameters
        p.factors = k
        p.exponent = exponent
        p.userExponent = userExponent
        p.weighting = weighting
        p.ratingOffset = ratingOffset
        var v = [Float](repeating: 0, count: itemCount * k)
        for r in 0..<itemCount { for c in 0..<k { v[r * k + c] = vectors[r * fitted + c] } }
        return RankingModel(
            parameters: p, itemCount: itemCount, eigenvalues: Array(values.prefix(k)), itemVectors: v,
            itemWeights: itemWeights)
    }
}

/// Top-n over in-memory item rows by dot product with a query: the SIMD kernel of the item matrix
/// scan where the row width allows it, a plain loop otherwise.
enum ItemScan {
    /// The cosine of rows a and b (0 when either is zero or out of range).
    static func cosine(vectors: [Float], factors: Int, itemCount: Int, _ a: Int, _ b: Int) -> Float {
        guard a >= 0, b >= 0, a < itemCount, b < itemCount else { return 0 }
        var dot: Float = 0, na: Float = 0, nb: Float = 0
        for c in 0..<factors {
            let x = vectors[a * factors + c], y = vectors[b * factors + c]
            dot += x * y
            na += x * x
            nb += y * y
        }
        return na > 0 && nb > 0 ? dot / (na * nb).squareRoot() : 0
    }

    /// The n best items for one query (see the many-query form below).
    static func topN(
        vectors: [Float], factors: Int, itemCount: Int, query: [Float], n: Int,
        excluded: Set<Int32>, prior: [Float]? = nil, priorWeight: Float = 0, ratingScores: [Float]? = nil,
        ratingWeight: Float = 0
    ) -> [(item: Int32, score: Float)] {
        topN(
            vectors: vectors, factors: factors, itemCount: itemCount, queries: [query], n: n,
            excluded: [excluded.sorted()], prior: prior, priorWeights: [priorWeight], ratingWeight: ratingWeight,
            ratingScores: ratingScores.map { scores in { _ in scores } })[0]
    }

    /// The n best items for each query, minus its `excluded` (sorted ascending, no repeats), in one blocked
    /// pass (`BlockScan`): by q · v_i, or for a query with a prior weight w > 0 by z(q · v_i) + w · z(prior_i),
    /// z the standardization over the items not excluded. The blend ranks as q · v_i + (w σ_s / σ_prior) ·
    /// prior_i does, so it is one more term of the same scan; σ_s comes from Σ s and Σ s² over all items (a
    /// first pass of the same kernel) minus the excluded items' own scores. TopN order: ties by smaller id.
    static func topN(
        vectors: [Float], factors: Int, itemCount: Int, queries: [[Float]], n: Int, excluded: [[Int32]],
        prior: [Float]? = nil, priorWeights: [Float], ratingWeight: Float = 0, ratingScores: ((Int) -> [Float]?)? = nil
    ) -> [[(item: Int32, score: Float)]] {
        precondition(vectors.count >= factors * itemCount)
        return FloatRows.with(vectors) { rows in
            guard let prior else {
                return topN(
                    rows: rows, stride: factors, factors: factors, itemCount: itemCount, queries: queries, n: n,
                    excluded: excluded, prior: nil, priorWeights: priorWeights, ratingWeight: ratingWeight,
                    ratingScores: ratingScores)
            }
            return FloatRows.with(prior) { prior in
                topN(
                    rows: rows, stride: factors, factors: factors, itemCount: itemCount, queries: queries, n: n,
                    excluded: excluded, prior: prior, priorWeights: priorWeights, ratingWeight: ratingWeight,
                    ratingScores: ratingScores)
            }
        }
    }

    /// The many-query top-n over rows of `stride` floats (the first `factors` of each are the vector): the
    /// in-memory rows above, or the ranking section of the mapped item matrix. The same kernels either way,
    /// so both give the same lists, bit for bit.
    ///
    /// With a `ratingWeight` w_r > 0, a query for which `ratingScores` gives the rating model's scores (see
    /// `FactorModel.itemScores`) ranks by z(q · v_i) + w · z(prior_i) + w_r · z(rating_i) instead: still a dot
    /// product, of [query / σ_s, w / σ_prior, w_r / σ_rating] with [v_i, prior_i, rating_i] (the rating part
    /// being [p_u, 1] · [q_i, b_i], the rating model's vectors). Such queries go through `blendedTopN`, which
    /// keeps all of a query's scores for their standardization.
    static func topN(
        rows: FloatRows, stride: Int, factors: Int, itemCount: Int, queries: [[Float]], n: Int, excluded: [[Int32]],
        prior: FloatRows?, priorWeights: [Float], ratingWeight: Float = 0, ratingScores: ((Int) -> [Float]?)? = nil
    ) -> [[(item: Int32, score: Float)]] {
        precondition(queries.allSatisfy { $0.count == factors })
        precondition(excluded.count == queries.count && priorWeights.count == queries.count)
        guard n > 0, itemCount > 0 else { return queries.map { _ in [] } }
        if ratingWeight > 0, let ratingScores {
            return blendedTopN(
                rows: rows, stride: stride, factors: factors, itemCount: itemCount, queries: queries, n: n,
                excluded: excluded, prior: prior, priorWeights: priorWeights, ratingWeight: ratingWeight,
                source: .scores(ratingScores))
        }
        let blend = prior == nil ? [] : priorWeights.indices.filter { priorWeights[$0] > 0 }
        var scales = [Float](repeating: 0, count: queries.count)
        // For a blended query: what turns its scan score back into z(s) + w · z(prior).
        var shifts = [(offset: Double, sd: Double)?](repeating: nil, count: queries.count)
        if let prior, !blend.isEmpty {
            precondition(prior.count >= itemCount)
            let sums = BlockScan.moments(
                queries: blend.map { queries[$0] }, k: factors, rows: rows, stride: stride, count: itemCount)
            var priorSum = 0.0, priorSquares = 0.0
            for i in 0..<itemCount {
                let p = Double(prior[i])
                priorSum += p
                priorSquares += p * p
            }
            for (j, u) in blend.enumerated() {
                var s = (sum: sums.sum[j], squares: sums.sumOfSquares[j]),
                    p = (sum: priorSum, squares: priorSquares)
                var count = Double(itemCount)
                for item in excluded[u] where item >= 0 && Int(item) < itemCount {
                    let x = Double(BlockScan.dot(queries[u], rows: rows, at: Int(item) * stride, k: factors))
                    let y = Double(prior[Int(item)])
                    s = (s.sum - x, s.squares - x * x)
                    p = (p.sum - y, p.squares - y * y)
                    count -= 1
                }
                let ms = standardization(s.sum, s.squares, count), mp = standardization(p.sum, p.squares, count)
                let c = Double(priorWeights[u]) * ms.sd / mp.sd
                scales[u] = Float(c)
                shifts[u] = (ms.mean + Double(scales[u]) * mp.mean, ms.sd)
            }
        }
        let tops = BlockScan.topN(
            queries: queries, k: factors, rows: rows, stride: stride, count: itemCount,
            bias: blend.isEmpty ? nil : prior, scales: scales, excluded: excluded, n: n)
        return tops.enumerated().map { u, top in
            top.sorted().map { entry in
                guard let shift = shifts[u] else { return entry }
                return (entry.item, Float((Double(entry.score) - shift.offset) / shift.sd))
            }
        }
    }

    /// Where a blended list's rating-model scores come from.
    enum RatingSource {
        /// Per query (by index), its scores (`FactorModel.itemScores`), or nil: that query does not blend.
        case scores((Int) -> [Float]?)
        /// Per query, the rating model's user row, or nil (no blend); the scores computed in blocks of users
        /// from the model's rows, the same floats as `FactorModel.itemScores` gives.
        case model(FactorModel, users: [Int?])
    }

    /// The many-query top-n where a query may rank by z(q · v_i) + w · z(prior_i) + w_r · z(rating_i), z over
    /// the items not excluded; the queries without rating scores rank as in `topN(rows:…)` without them. Items
    /// past the end of a query's rating scores (added after the rating model was made) score 0 there, as an
    /// item the rating model never saw. The blended queries go in groups: every ranking and rating score of the
    /// group is computed by the block kernel (the same floats as one query at a time), then each query's
    /// moments are summed from its scores in item order and its blend formed and selected in double precision.
    /// So a list is the same bit for bit whether its query came alone or with others.
    static func blendedTopN(
        rows: FloatRows, stride: Int, factors: Int, itemCount: Int, queries: [[Float]], n: Int, excluded: [[Int32]],
        prior: FloatRows?, priorWeights: [Float], ratingWeight: Float, source: RatingSource
    ) -> [[(item: Int32, score: Float)]] {
        var lists = [[(item: Int32, score: Float)]](repeating: [], count: queries.count)
        var plain: [Int] = [], blended: [Int] = []
        for u in queries.indices {
            let blends =
                switch source {
                case .scores: true  // asked once per group below
                case .model(let model, let users): users[u].map { model.hasUser($0) } ?? false
                }
            if blends { blended.append(u) } else { plain.append(u) }
        }
        // A group's scores: two floats per item per query, about 32 MiB at most.
        let group = max(1, min(16, (1 << 22) / max(itemCount, 1)))
        var dots = [Float](repeating: 0, count: min(group, blended.count) * itemCount)
        // A query's rating scores: its first `itemCount` floats, zeros past the rating model's items; a wider row
        // when the rating model has items the ranking model does not rank.
        let ratingStride: Int
        switch source {
        case .scores: ratingStride = itemCount
        case .model(let model, _): ratingStride = max(itemCount, model.itemCount)
        }
        var ratings = [Float](repeating: 0, count: min(group, blended.count) * ratingStride)
        var start = 0
        while start < blended.count {
            let members = Array(blended[start..<min(start + group, blended.count)])
            start += members.count
            var flat: [Float] = []
            flat.reserveCapacity(members.count * factors)
            for u in members { flat += queries[u] }
            var blends = [Bool](repeating: true, count: members.count)
            flat.withUnsafeBufferPointer { q in
                dots.withUnsafeMutableBufferPointer { out in
                    BlockScan.dots(
                        queries: q.baseAddress!, nu: members.count, k: factors, rows: rows, stride: stride,
                        count: itemCount, bias: nil, into: out.baseAddress!, ostride: itemCount)
                }
            }
            ratings.withUnsafeMutableBufferPointer { out in
                switch source {
                case .scores(let scores):
                    for (j, u) in members.enumerated() {
                        let row = out.baseAddress! + j * ratingStride
                        guard let given = scores(u) else {
                            blends[j] = false
                            continue
                        }
                        let copied = min(given.count, itemCount)
                        given.withUnsafeBufferPointer { row.update(from: $0.baseAddress!, count: copied) }
                        row.advanced(by: copied).update(repeating: 0, count: itemCount - copied)
                    }
                case .model(let model, let users):
                    var vectors: [Float] = []
                    vectors.reserveCapacity(members.count * model.factors)
                    for u in members { vectors += model.userVector(users[u]!) }
                    for j in members.indices {
                        (out.baseAddress! + j * ratingStride + model.itemCount).update(
                            repeating: 0, count: ratingStride - model.itemCount)
                    }
                    vectors.withUnsafeBufferPointer { v in
                        model.itemScores(
                            queries: v.baseAddress!, nu: members.count, into: out.baseAddress!, ostride: ratingStride)
                    }
                }
            }
            for (j, u) in members.enumerated() where blends[j] {
                lists[u] = dots.withUnsafeBufferPointer { d in
                    ratings.withUnsafeBufferPointer { r in
                        blendedSelect(
                            dots: UnsafeBufferPointer(rebasing: d[(j * itemCount)..<((j + 1) * itemCount)]),
                            ratings: UnsafeBufferPointer(
                                rebasing: r[(j * ratingStride)..<(j * ratingStride + itemCount)]),
                            n: n, excluded: excluded[u], prior: priorWeights[u] > 0 ? prior : nil,
                            priorWeight: priorWeights[u], ratingWeight: ratingWeight)
                    }
                }
            }
            for (j, u) in members.enumerated() where !blends[j] { plain.append(u) }
        }
        if !plain.isEmpty {
            plain.sort()
            let tops = topN(
                rows: rows, stride: stride, factors: factors, itemCount: itemCount,
                queries: plain.map { queries[$0] }, n: n, excluded: plain.map { excluded[$0] }, prior: prior,
                priorWeights: plain.map { priorWeights[$0] })
            for (j, u) in plain.enumerated() { lists[u] = tops[j] }
        }
        return lists
    }

    /// One query's top-n by z(dots_i) + w · z(prior_i) + w_r · z(ratings_i), z over the items not `excluded`
    /// (ascending), from all its scores: their moments summed in double precision (four partial sums of
    /// items i ≡ 0, 1, 2, 3 mod 4, added in that order), then each item's blend formed in double as
    /// dots_i · a + ratings_i · c + prior_i · e − offset (a = 1 / σ_s, c = w_r / σ_r, e = w / σ_prior) and rounded
    /// to a float before the selection. The same operations however the scores were computed, so the same list.
    static func blendedSelect(
        dots: UnsafeBufferPointer<Float>, ratings: UnsafeBufferPointer<Float>, n: Int, excluded: [Int32],
        prior: FloatRows?, priorWeight: Float, ratingWeight: Float
    ) -> [(item: Int32, score: Float)] {
        let itemCount = dots.count
        precondition(ratings.count == itemCount && (prior?.count ?? itemCount) >= itemCount)
        let weighted = prior.map { _ in priorWeight > 0 } ?? false
        let priorValues = weighted ? prior!.copy(from: 0, count: itemCount) : []
        func moments(_ x: (Int) -> Double) -> (sum: Double, squares: Double) {
            var sum = SIMD4<Double>(), squares = SIMD4<Double>()
            var i = 0
            while i + 4 <= itemCount {
                let v = SIMD4(x(i), x(i + 1), x(i + 2), x(i + 3))
                sum += v
                squares += v * v
                i += 4
            }
            var tail = (sum: 0.0, squares: 0.0)
            while i < itemCount {
                let v = x(i)
                tail = (tail.sum + v, tail.squares + v * v)
                i += 1
            }
            return (
                ((sum[0] + sum[1]) + (sum[2] + sum[3])) + tail.sum,
                ((squares[0] + squares[1]) + (squares[2] + squares[3])) + tail.squares
            )
        }
        var s = moments { Double(dots[$0]) }, r = moments { Double(ratings[$0]) }
        var p: (sum: Double, squares: Double) =
            weighted ? priorValues.withUnsafeBufferPointer { v in moments { Double(v[$0]) } } : (0, 0)
        var count = Double(itemCount)
        for item in excluded where item >= 0 && Int(item) < itemCount {
            let x = Double(dots[Int(item)]), y = Double(ratings[Int(item)])
            s = (s.sum - x, s.squares - x * x)
            r = (r.sum - y, r.squares - y * y)
            if weighted {
                let z = Double(priorValues[Int(item)])
                p = (p.sum - z, p.squares - z * z)
            }
            count -= 1
        }
        let ms = standardization(s.sum, s.squares, count), mr = standardization(r.sum, r.squares, count)
        let mp = standardization(p.sum, p.squares, count)
        let a = 1 / ms.sd, c = Double(ratingWeight) / mr.sd, e = weighted ? Double(priorWeight) / mp.sd : 0
        let offset = ms.mean * a + mr.mean * c + (weighted ? mp.mean * e : 0)
        var scores = [Float](repeating: 0, count: itemCount)
        scores.withUnsafeMutableBufferPointer { out in
            if weighted {
                priorValues.withUnsafeBufferPointer { v in
                    for i in 0..<itemCount {
                        out[i] = Float(Double(dots[i]) * a + Double(ratings[i]) * c + Double(v[i]) * e - offset)
                    }
                }
            } else {
                for i in 0..<itemCount { out[i] = Float(Double(dots[i]) * a + Double(ratings[i]) * c - offset) }
            }
        }
        for item in excluded where item >= 0 && Int(item) < itemCount { scores[Int(item)] = -.infinity }
        var top = TopN(capacity: n)
        var threshold = top.threshold
        scores.withUnsafeBufferPointer { scores in
            for i in 0..<itemCount where scores[i] >= threshold {
                let score = scores[i]
                if score == -.infinity && BlockScan.contains(excluded[...], Int32(i)) { continue }
                top.offer(score: score, item: Int32(i))
                threshold = top.threshold
            }
        }
        return top.sorted()
    }

    /// Mean and standard deviation from Σ x, Σ x² and the count ((0, 1) for no values; the deviation at
    /// least 1e-12).
    static func standardization(_ sum: Double, _ squares: Double, _ count: Double) -> (mean: Double, sd: Double) {
        guard count > 0 else { return (0, 1) }
        let mean = sum / count
        return (mean, max(max(squares / count - mean * mean, 0).squareRoot(), 1e-12))
    }
}
