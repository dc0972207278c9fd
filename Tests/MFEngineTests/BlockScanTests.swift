import Foundation
import Testing

@testable import MFEngine

/// Issue 16: `recommend --all` ranks users a block at a time (`BlockScan`); each user's list must be the
/// list the one-user scan gives, bit for bit — the same items, in the same order, with the same scores, ties
/// broken the same way — in the AVX-512 block kernel (where the CPU has it), the AVX2 one and the portable one.
@Suite(.serialized) struct BlockScanTests {
    /// Runs `body` with each block kernel level this CPU has (2 AVX-512, 1 AVX2, 0 portable), highest first.
    func inEveryKernel(_ body: () throws -> Void) rethrows {
        let detected = ItemMatrix.blockKernelLevel
        for level in stride(from: detected, through: 0, by: -1) {
            ItemMatrix.capKernels(at: level)
            ItemMatrix.usePortableKernels(level == 0)
            defer {
                ItemMatrix.capKernels(at: 2)
                ItemMatrix.usePortableKernels(false)
            }
            #expect(ItemMatrix.blockKernelLevel == level)
            try body()
        }
    }

    /// Sorted, repeat-free random exclusions (some users exclude the unblocked top items).
    func exclusions(items: Int, users: Int, seed: UInt64) -> [[Int32]] {
        var rng = SeededGenerator(seed: seed)
        return (0..<users).map { u in
            let rate = u % 3 == 0 ? 0.0 : u % 3 == 1 ? 0.05 : 0.5
            return (0..<items).filter { _ in rng.nextDouble() < rate }.map(Int32.init)
        }
    }

    @Test(arguments: [(16, 1_000), (64, 2_345), (48, 517)])
    func ratingModelBlocksEqualOneUserScans(k: Int, items: Int) throws {
        let users = 67  // odd: the last user of a block goes through the one-user tail
        let model = randomModel(users: users, items: items, k: k, seed: UInt64(k + items))
        let path = tempPath("block.items")
        defer { try? FileManager.default.removeItem(atPath: path) }
        try ItemMatrix.write(model: model, generation: 1, snapshotID: 1, to: path)
        let matrix = try ItemMatrix.open(path: path, generation: 1, snapshotID: 1, factors: k, itemCount: items)
        let excluded = exclusions(items: items, users: users, seed: 7)
        let queries = (0..<users).map { matrix.queryVector(model.userVector($0)) }
        try inEveryKernel {
            for n in [1, 10, 200] {
                let alone = (0..<users).map { matrix.topN(query: queries[$0], n: n, excluded: excluded[$0]) }
                for size in [1, 2, 5, 64, users] {
                    for start in stride(from: 0, to: users, by: size) {
                        let range = start..<min(start + size, users)
                        let block = matrix.topNBatch(
                            queries: Array(queries[range]), n: n, excluded: Array(excluded[range]))
                        for (u, list) in zip(range, block) {
                            #expect(list.map(\.item) == alone[u].map(\.item), "user \(u), n \(n), block \(size)")
                            #expect(
                                list.map(\.score.bitPattern) == alone[u].map(\.score.bitPattern),
                                "user \(u), n \(n), block \(size)")
                        }
                    }
                }
                // Against exact arithmetic: the same scores to float precision, nothing excluded listed.
                for u in [0, 1, 2, 66] {
                    let exact = (0..<items).map { i in
                        zip(model.userVector(u), model.itemVector(i)).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
                            + Double(model.itemBias[i])
                    }
                    for entry in alone[u] {
                        #expect(abs(Double(entry.score) - exact[Int(entry.item)]) < 1e-3)
                        #expect(!excluded[u].contains(entry.item))
                    }
                }
            }
        }
    }

    /// Writes `model`'s item matrix and checks, in every kernel level, that one blocked pass over all its users
    /// lists exactly what one-user scans list (items and score bit patterns, nothing excluded); `check` then
    /// sees each user's one-user list.
    func expectBlockEqualsAlone(
        _ model: FactorModel, n: Int, file: String, check: (Int, [(item: Int32, score: Float)]) -> Void
    ) throws {
        let path = tempPath(file)
        defer { try? FileManager.default.removeItem(atPath: path) }
        try ItemMatrix.write(model: model, generation: 1, snapshotID: 1, to: path)
        let matrix = try ItemMatrix.open(
            path: path, generation: 1, snapshotID: 1, factors: model.factors, itemCount: model.itemCount)
        let users = model.userCount
        let queries = (0..<users).map { matrix.queryVector(model.userVector($0)) }
        try inEveryKernel {
            let block = matrix.topNBatch(queries: queries, n: n, excluded: [[Int32]](repeating: [], count: users))
            for u in 0..<users {
                let alone = matrix.topN(query: queries[u], n: n, excluded: [])
                #expect(block[u].map(\.item) == alone.map(\.item), "user \(u)")
                #expect(block[u].map(\.score.bitPattern) == alone.map(\.score.bitPattern), "user \(u)")
                check(u, alone)
            }
        }
    }

    /// Ties: items with identical rows get identical scores; both paths keep the smaller ids. 20 users: a
    /// block of 16 or more users takes the AVX-512 panel kernel, whose candidates are re-scored exactly; 40: 32 or
    /// more take the BLAS path below AVX-512 (where a BLAS is installed), whose candidates are re-scored too.
    @Test(arguments: [4, 20, 40])
    func tiesAreBrokenBySmallerIdInBothPaths(users: Int) throws {
        let k = 16, items = 300
        var model = randomModel(users: users, items: items, k: k, seed: 3)
        for i in 0..<items {  // ten distinct rows, each repeated
            for f in 0..<k { model.itemFactors[i * model.stride + f] = model.itemFactors[(i % 10) * model.stride + f] }
            model.itemBias[i] = model.itemBias[i % 10]
        }
        try expectBlockEqualsAlone(model, n: 7, file: "ties.items") { u, alone in
            let best = alone[0].item
            #expect(alone.map(\.item) == (0..<7).map { best + Int32(10 * $0) }, "user \(u)")
        }
    }

    /// A NaN or infinite item row leaves the panel kernel no rounding bound: its block is scored by the block
    /// kernel, so the other rows of that block are still listed, exactly as one-user scans list them.
    @Test(arguments: [20, 40])
    func aNonFiniteRowLeavesTheRestOfItsBlockListed(users: Int) throws {
        let k = 16, items = 400
        var model = randomModel(users: users, items: items, k: k, seed: 11)
        // Row 399 ends the last block (a NaN last in a block once hid the block's maximum norm).
        for row in [5, 399] { for f in 0..<k { model.itemFactors[row * model.stride + f] = .nan } }
        model.itemFactors[300 * model.stride] = .infinity
        try expectBlockEqualsAlone(model, n: 10, file: "nan.items") { u, alone in
            #expect(alone.count == 10 && !alone.contains { $0.item == 5 || $0.item == 399 }, "user \(u)")
        }
    }

    /// Near ties: rows a few float steps apart, so that a BLAS's sums (another order of the same products) may
    /// order them differently from the exact kernel. The block's lists (BLAS path from 32 users) must still equal
    /// the one-user lists bit for bit: the BLAS only picks candidates, within a rounding bound of each threshold.
    @Test func nearTiesAreOrderedByTheExactKernel() throws {
        let k = 64, items = 3_000, users = 40
        var model = randomModel(users: users, items: items, k: k, seed: 21)
        var rng = SeededGenerator(seed: 22)
        for i in 0..<items {  // twelve rows, each repeated with a perturbation of about 1e-7 relative
            for f in 0..<k {
                let base = model.itemFactors[(i % 12) * model.stride + f]
                model.itemFactors[i * model.stride + f] = base * (1 + Float(rng.nextGaussian()) * 1e-7)
            }
            model.itemBias[i] = model.itemBias[i % 12]
        }
        try expectBlockEqualsAlone(model, n: 60, file: "near.items") { u, alone in
            #expect(alone.count == 60, "user \(u)")
        }
    }

    /// CI installs OpenBLAS (`.ci/run` sets MFREC_REQUIRE_BLAS=1): there the tests above must have run the BLAS
    /// path below AVX-512, not silently mfrec's own kernel.
    @Test func theBLASPathIsTakenWhereRequired() {
        let required = ProcessInfo.processInfo.environment["MFREC_REQUIRE_BLAS"] == "1"
        ItemMatrix.capKernels(at: 1)
        defer { ItemMatrix.capKernels(at: 2) }
        #expect(!required || ItemMatrix.usesBLAS)
        #expect(!ItemMatrix.usesBLAS || ItemMatrix.preferredBatch == 256)
    }

    @Test(arguments: [20, 32, 7])
    func rankingModelBlocksEqualOneUserScans(k: Int) throws {
        let items = 1_500, users = 41
        var rng = SeededGenerator(seed: UInt64(k))
        let vectors = (0..<(items * k)).map { _ in Float(rng.nextGaussian()) }
        let popularity = (0..<items).map { _ in Float(rng.nextDouble() * 50) }
        let model = RankingModel(
            parameters: .init(factors: k), itemCount: items, eigenvalues: [Float](repeating: 1, count: k),
            itemVectors: vectors, itemWeights: [Float](repeating: 1, count: items), popularity: popularity)
        let queries = (0..<users).map { _ in (0..<k).map { _ in Float(rng.nextGaussian()) } }
        let excluded = exclusions(items: items, users: users, seed: 9)
        let weights: [Float] = (0..<users).map { [0, 0.5, 2][$0 % 3] }
        try inEveryKernel {
            let block = model.topN(users: queries, n: 25, excluded: excluded, popularityWeights: weights)
            for u in 0..<users {
                let alone = model.topN(
                    user: queries[u], n: 25, excluded: Set(excluded[u]), popularityWeight: weights[u])
                #expect(block[u].map(\.item) == alone.map(\.item), "user \(u)")
                #expect(block[u].map(\.score.bitPattern) == alone.map(\.score.bitPattern), "user \(u)")
                // The blend against its definition in double precision: z(q·v) + w·z(popularity) over the
                // items not excluded; the list's scores agree and nothing left out scores higher.
                let allowed = (0..<items).filter { !excluded[u].contains(Int32($0)) }
                let dots = exactDots(queries[u], vectors, k: k, items: items)
                let z = { (x: [Double]) in zScores(x, over: allowed) }
                let zs = z(dots), zp = z(popularity.map(Double.init))
                let exact = (0..<items).map { weights[u] > 0 ? zs[$0] + Double(weights[u]) * zp[$0] : dots[$0] }
                let cut = exact[Int(alone.last!.item)]
                for entry in alone { #expect(abs(Double(entry.score) - exact[Int(entry.item)]) < 1e-3) }
                let listed = Set(alone.map(\.item))
                for i in allowed where !listed.contains(Int32(i)) { #expect(exact[i] <= cut + 1e-3) }
            }
        }
    }

    /// The blend with the rating model's scores: the many-user call (blended users scanned alone, the others in
    /// a block) gives each user the list the one-user call gives, and that list is the definition's, in double
    /// precision: z(q·v) + w·z(popularity) + w_r·z(rating) over the items not excluded, an item past the end of
    /// the rating scores scoring 0 there.
    @Test func ratingBlendEqualsItsDefinition() throws {
        let k = 12, items = 900, users = 24
        var rng = SeededGenerator(seed: 77)
        let vectors = (0..<(items * k)).map { _ in Float(rng.nextGaussian()) }
        let popularity = (0..<items).map { _ in Float(rng.nextDouble() * 5) }
        let model = RankingModel(
            parameters: .init(factors: k), itemCount: items, eigenvalues: [Float](repeating: 1, count: k),
            itemVectors: vectors, itemWeights: [Float](repeating: 1, count: items), popularity: popularity)
        let queries = (0..<users).map { _ in (0..<k).map { _ in Float(rng.nextGaussian()) } }
        // Rating scores on another scale than the ranking scores (as predicted ratings are); every fourth user
        // has none (no rating-model vector), every fifth fewer than there are items.
        let ratings: [[Float]?] = (0..<users).map { u in
            u % 4 == 3 ? nil : (0..<(u % 5 == 0 ? items - 50 : items)).map { _ in Float(3 + rng.nextGaussian() * 40) }
        }
        let excluded = exclusions(items: items, users: users, seed: 3)
        let weights: [Float] = (0..<users).map { [0, 0.5][$0 % 2] }
        let ratingWeight: Float = 0.7
        try inEveryKernel {
            let block = model.topN(
                users: queries, n: 15, excluded: excluded, popularityWeights: weights, ratingWeight: ratingWeight,
                ratingScores: { ratings[$0] })
            for u in 0..<users {
                let alone = model.topN(
                    user: queries[u], n: 15, excluded: Set(excluded[u]), popularityWeight: weights[u],
                    ratingScores: ratings[u], ratingWeight: ratingWeight)
                #expect(block[u].map(\.item) == alone.map(\.item), "user \(u)")
                #expect(block[u].map(\.score.bitPattern) == alone.map(\.score.bitPattern), "user \(u)")
                let allowed = (0..<items).filter { !excluded[u].contains(Int32($0)) }
                let dots = exactDots(queries[u], vectors, k: k, items: items)
                let z = { (x: [Double]) in zScores(x, over: allowed) }
                let exact: [Double]
                if let scores = ratings[u] {
                    let rating = (0..<items).map { $0 < scores.count ? Double(scores[$0]) : 0 }
                    let zs = z(dots), zp = z(popularity.map(Double.init)), zr = z(rating)
                    exact = (0..<items).map {
                        zs[$0] + (weights[u] > 0 ? Double(weights[u]) * zp[$0] : 0) + Double(ratingWeight) * zr[$0]
                    }
                } else {
                    let zs = z(dots), zp = z(popularity.map(Double.init))
                    exact = (0..<items).map { weights[u] > 0 ? zs[$0] + Double(weights[u]) * zp[$0] : dots[$0] }
                }
                let cut = exact[Int(alone.last!.item)]
                for entry in alone { #expect(abs(Double(entry.score) - exact[Int(entry.item)]) < 1e-3, "user \(u)") }
                let listed = Set(alone.map(\.item))
                for i in allowed where !listed.contains(Int32(i)) { #expect(exact[i] <= cut + 1e-3, "user \(u)") }
                #expect(alone.allSatisfy { !excluded[u].contains($0.item) })
            }
        }
        // The blend changes lists: the rating scores are not ignored.
        let plain = model.topN(user: queries[0], n: 15, excluded: Set(excluded[0]))
        let blended = model.topN(
            user: queries[0], n: 15, excluded: Set(excluded[0]), ratingScores: ratings[0], ratingWeight: 2)
        #expect(plain.map(\.item) != blended.map(\.item))
    }
}

extension BlockScanTests {
    /// `FactorModel.itemScores` is each item's prediction less μ and the user's bias (the same for every item).
    @Test func itemScoresArePredictionsLessTheUserConstant() {
        var model = randomModel(users: 3, items: 70, k: 11, seed: 21)
        model.useBias = true
        model.globalMean = 3.5
        for u in 0..<3 { model.userBias[u] = Float(u) * 0.25 - 0.2 }
        for i in 0..<70 { model.itemBias[i] = Float(i % 9) * 0.1 - 0.4 }
        for u in 0..<3 {
            let scores = model.itemScores(user: model.userVector(u))
            #expect(scores.count == 70)
            for i in 0..<70 {
                let want = model.rawPrediction(user: u, item: i) - model.globalMean - model.userBias[u]
                #expect(abs(scores[i] - want) < 1e-4, "user \(u), item \(i)")
            }
        }
    }
}

/// q · v_i in double precision for every item (rows of k floats).
func exactDots(_ query: [Float], _ vectors: [Float], k: Int, items: Int) -> [Double] {
    (0..<items).map { i in (0..<k).reduce(0.0) { $0 + Double(query[$1]) * Double(vectors[i * k + $1]) } }
}

/// x standardized by the mean and standard deviation of its values at `allowed`.
func zScores(_ x: [Double], over allowed: [Int]) -> [Double] {
    let values = allowed.map { x[$0] }
    let mean = values.reduce(0, +) / Double(values.count)
    let sd = (values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(values.count)).squareRoot()
    return x.map { ($0 - mean) / sd }
}

extension BlockScanTests {
    /// `recommend --all`'s blended lists: the rating scores computed in blocks from the rating model give the
    /// lists that each user's `FactorModel.itemScores` gives, bit for bit, whether the rating model has fewer,
    /// as many or more items than the ranking model, and for queries without a rating-model vector.
    @Test(arguments: [-30, 0, 20])
    func ratingBlendFromTheModelEqualsItsScores(extraItems: Int) throws {
        let k = 20, items = 700, users = 37  // odd: the last user of a block goes through the one-user path
        var rng = SeededGenerator(seed: 5)
        let vectors = (0..<(items * k)).map { _ in Float(rng.nextGaussian()) }
        let popularity = (0..<items).map { _ in Float(rng.nextDouble() * 5) }
        let ranking = RankingModel(
            parameters: .init(factors: k), itemCount: items, eigenvalues: [Float](repeating: 1, count: k),
            itemVectors: vectors, itemWeights: [Float](repeating: 1, count: items), popularity: popularity)
        var rating = randomModel(users: users, items: items + extraItems, k: 9, seed: 6)
        for f in 0..<rating.factors { rating.userFactors[4 * rating.stride + f] = 0 }  // user 4: no vector
        rating.userBias[4] = 0
        #expect(!rating.hasUser(4))
        let rows: [Int?] = (0..<users).map { $0 % 7 == 6 ? nil : ($0 * 5) % users }
        let queries = (0..<users).map { _ in (0..<k).map { _ in Float(rng.nextGaussian()) } }
        let excluded = exclusions(items: items, users: users, seed: 8)
        let weights: [Float] = (0..<users).map { [0, 0.5][$0 % 2] }
        try inEveryKernel {
            let fromModel = ranking.topN(
                users: queries, n: 12, excluded: excluded, popularityWeights: weights, ratingWeight: 0.4,
                ratingModel: rating, ratingUsers: rows)
            let fromScores = ranking.topN(
                users: queries, n: 12, excluded: excluded, popularityWeights: weights, ratingWeight: 0.4,
                ratingScores: { u in rows[u].flatMap { rating.itemScores(user: $0) } })
            let plain = ranking.topN(users: queries, n: 12, excluded: excluded, popularityWeights: weights)
            for u in 0..<users {
                #expect(fromModel[u].map(\.item) == fromScores[u].map(\.item), "user \(u)")
                #expect(fromModel[u].map(\.score.bitPattern) == fromScores[u].map(\.score.bitPattern), "user \(u)")
                let blends = rows[u].map { rating.hasUser($0) } ?? false
                #expect((fromModel[u].map(\.item) == plain[u].map(\.item)) || blends, "user \(u)")
            }
            // The blend changed most of the blended users' lists.
            let changed = (0..<users).filter { fromModel[$0].map(\.item) != plain[$0].map(\.item) }
            #expect(changed.count > users / 2)
        }
    }
}
