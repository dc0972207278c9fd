import Foundation
import Testing

@testable import MFEngine

@Suite struct CooccurrenceTests {
    /// Random distinct (user, item) pairs.
    func pairs(users: Int, items: Int, density: Double, seed: UInt64) -> (users: [Int32], items: [Int32]) {
        var rng = SeededGenerator(seed: seed)
        var us: [Int32] = [], its: [Int32] = []
        for u in 0..<users {
            for i in 0..<items where rng.nextDouble() < density {
                us.append(Int32(u))
                its.append(Int32(i))
            }
        }
        return (us, its)
    }

    /// S_ij = Σ_u B_ui B_uj / (d_i d_j)^α, formed densely.
    func similarity(users: [Int32], items: [Int32], itemCount: Int, exponent: Double) -> [Double] {
        var byUser: [Int32: [Int]] = [:]
        for (u, i) in zip(users, items) { byUser[u, default: []].append(Int(i)) }
        var degree = [Double](repeating: 0, count: itemCount)
        for i in items { degree[Int(i)] += 1 }
        var s = [Double](repeating: 0, count: itemCount * itemCount)
        for list in byUser.values { for a in list { for b in list { s[a * itemCount + b] += 1 } } }
        for a in 0..<itemCount {
            for b in 0..<itemCount where s[a * itemCount + b] != 0 {
                s[a * itemCount + b] /= pow(degree[a] * degree[b], exponent)
            }
        }
        return s
    }

    @Test func fullRankEmbeddingReproducesTheSimilarityExactly() {
        // With as many factors as items, E Eᵀ must be S itself.
        let items = 12
        let (us, its) = pairs(users: 60, items: items, density: 0.3, seed: 5)
        let e = CooccurrenceEmbedding.fit(
            users: us, items: its, userCount: 60, itemCount: items, factors: items, exponent: 0.3)
        let s = similarity(users: us, items: its, itemCount: items, exponent: 0.3)
        var worst = 0.0, largest = 0.0
        for a in 0..<items {
            for b in 0..<items {
                var dot = 0.0
                for c in 0..<items { dot += Double(e.vectors[a * items + c]) * Double(e.vectors[b * items + c]) }
                worst = max(worst, abs(dot - s[a * items + b]))
                largest = max(largest, abs(s[a * items + b]))
            }
        }
        #expect(largest > 1)
        #expect(worst < 1e-4 * largest, "max |E Eᵀ − S| = \(worst)")
    }

    @Test func truncatedEmbeddingCapturesTheLeadingEigenvalues() {
        // Rank-k truncation: ‖E‖² (the sum of the k kept eigenvalues) must match the exact top-k sum.
        let items = 40
        let (us, its) = pairs(users: 200, items: items, density: 0.2, seed: 9)
        // A random matrix has a flat spectrum after the first eigenvalue, the slow case for subspace iteration.
        let k = 6
        let (values, _) = CooccurrenceEmbedding.symmetricEigen(
            similarity(users: us, items: its, itemCount: items, exponent: 0.5), size: items)
        let exact = values.sorted(by: >).prefix(k).reduce(0, +)
        for (iterations, tolerance) in [(4, 1e-2), (16, 1e-4)] {
            let e = CooccurrenceEmbedding.fit(
                users: us, items: its, userCount: 200, itemCount: items, factors: k, exponent: 0.5,
                iterations: iterations)
            let captured = e.vectors.reduce(0.0) { $0 + Double($1) * Double($1) }
            #expect(captured <= exact * (1 + 1e-6))
            #expect(
                abs(captured - exact) < tolerance * exact,
                "\(iterations) iterations: captured \(captured), exact top-\(k) \(exact)")
        }
    }

    @Test func symmetricEigenDiagonalizes() {
        let m: [Double] = [4, 1, 2, 1, 3, 0.5, 2, 0.5, 1]
        let (values, v) = CooccurrenceEmbedding.symmetricEigen(m, size: 3)
        for j in 0..<3 {  // M v_j = λ_j v_j
            for r in 0..<3 {
                let mv = (0..<3).reduce(0.0) { $0 + m[r * 3 + $1] * v[$1 * 3 + j] }
                #expect(abs(mv - values[j] * v[r * 3 + j]) < 1e-9)
            }
        }
        #expect(abs(values.reduce(0, +) - 8) < 1e-9)  // the trace
    }

    @Test func usersOfOneGroupAreRecommendedThatGroup() {
        // Items 0..<10 are rated by users 0..<50, items 10..<20 by users 50..<100, plus some noise.
        var us: [Int32] = [], its: [Int32] = []
        var rng = SeededGenerator(seed: 3)
        for u in 0..<100 {
            let group = u < 50 ? 0 : 10
            for i in 0..<20 {
                let inGroup = (group..<(group + 10)).contains(i)
                if rng.nextDouble() < (inGroup ? 0.6 : 0.05) {
                    us.append(Int32(u))
                    its.append(Int32(i))
                }
            }
        }
        let e = CooccurrenceEmbedding.fit(users: us, items: its, userCount: 100, itemCount: 20, factors: 4)
        let rated: [Int32] = [12, 15]
        let top = e.topN(user: e.userVector(ratedItems: rated), n: 5, excluded: Set(rated))
        #expect(top.count == 5)
        #expect(top.allSatisfy { (10..<20).contains($0.item) && !rated.contains($0.item) }, "\(top)")
        #expect(zip(top, top.dropFirst()).allSatisfy { $0.score >= $1.score })
    }

    @Test func encodingRoundTripsAndRejectsWrongSizes() throws {
        let (us, its) = pairs(users: 30, items: 25, density: 0.3, seed: 1)
        let e = CooccurrenceEmbedding.fit(users: us, items: its, userCount: 30, itemCount: 25, factors: 5)
        let bytes = e.encodedVectors()
        #expect(CooccurrenceEmbedding(factors: 5, itemCount: 25, exponent: e.exponent, encoded: bytes) == e)
        #expect(CooccurrenceEmbedding(factors: 5, itemCount: 26, exponent: e.exponent, encoded: bytes) == nil)
        #expect(
            CooccurrenceEmbedding(factors: 5, itemCount: 25, exponent: e.exponent, encoded: Array(bytes.dropLast()))
                == nil)
    }

    @Test func itemsWithoutRatingsAndEmptyInputGiveZeroVectors() {
        let e = CooccurrenceEmbedding.fit(users: [0, 1], items: [0, 0], userCount: 2, itemCount: 3, factors: 2)
        #expect(e.vectors[2 * 2] == 0 && e.vectors[2 * 2 + 1] == 0)  // item 2 has no ratings
        #expect(e.cosine(0, 2) == 0)
        let empty = CooccurrenceEmbedding.fit(users: [], items: [], userCount: 0, itemCount: 4, factors: 3)
        #expect(empty.vectors.allSatisfy { $0 == 0 } && empty.vectors.count == 12)
    }

    @Test func threadsSplitTheProductWithoutChangingIt() {
        // Over 100,000 pairs the passes are split between threads, each adding into its own output.
        let (us, its) = pairs(users: 600, items: 300, density: 0.6, seed: 21)
        #expect(us.count > 100_000)
        let one = CooccurrenceEmbedding.fit(
            users: us, items: its, userCount: 600, itemCount: 300, factors: 8, threads: 1)
        let two = CooccurrenceEmbedding.fit(
            users: us, items: its, userCount: 600, itemCount: 300, factors: 8, threads: 2)
        func gram(_ e: CooccurrenceEmbedding, _ a: Int, _ b: Int) -> Double {
            (0..<e.factors).reduce(0.0) {
                $0 + Double(e.vectors[a * e.factors + $1]) * Double(e.vectors[b * e.factors + $1])
            }
        }
        var worst = 0.0
        for a in stride(from: 0, to: 300, by: 7) {
            for b in stride(from: 0, to: 300, by: 11) {
                worst = max(worst, abs(gram(one, a, b) - gram(two, a, b)) / max(abs(gram(one, a, b)), 1e-3))
            }
        }
        #expect(worst < 1e-3, "largest relative difference of E Eᵀ entries: \(worst)")
    }

    @Test(arguments: [16, 32, 12])
    func topNEqualsAFullSort(factors: Int) {
        // 16 and 32 go through the SIMD kernel in chunks of 2,048 rows (5,000 items: a partial last chunk);
        // 12 through the plain loop.
        var rng = SeededGenerator(seed: UInt64(factors))
        let items = 5_000
        let e = CooccurrenceEmbedding(
            factors: factors, itemCount: items, exponent: 0.3,
            vectors: (0..<(items * factors)).map { _ in Float(rng.nextGaussian()) })
        let rated: [Int32] = [3, 2_500, 4_999]
        let q = e.userVector(ratedItems: rated)
        func dot(_ i: Int) -> Float {
            var s: Float = 0
            for c in 0..<factors { s += e.vectors[i * factors + c] * q[c] }
            return s
        }
        var all: [(item: Int32, score: Float)] = []
        for i in 0..<items where !rated.contains(Int32(i)) { all.append((Int32(i), dot(i))) }
        all.sort { $0.score != $1.score ? $0.score > $1.score : $0.item < $1.item }
        let expected = Array(all.prefix(25))
        let top = e.topN(user: q, n: 25, excluded: Set(rated))
        #expect(top.map { $0.item } == expected.map { $0.item })
        #expect(zip(top, expected).allSatisfy { abs($0.score - $1.score) < 1e-3 })
    }

    @Test func recencyWeightsHalveBackInTimeAndWeightTheUserVector() {
        #expect(CooccurrenceEmbedding.recencyWeights(count: 4, decay: 0.5) == [0.125, 0.25, 0.5, 1])
        #expect(CooccurrenceEmbedding.recencyWeights(count: 3, decay: 1) == [1, 1, 1])
        #expect(CooccurrenceEmbedding.recencyWeights(count: 0, decay: 0.7).isEmpty)
        let (us, its) = pairs(users: 80, items: 30, density: 0.25, seed: 9)
        let e = CooccurrenceEmbedding.fit(
            users: us, items: its, userCount: 80, itemCount: 30, factors: 6, exponent: 0.3, threads: 1)
        let rated: [Int32] = [3, 17, 8, 25]
        let weights: [Float] = [0.2, 0.5, 1, 3]
        let weighted = e.userVector(ratedItems: rated, weights: weights)
        for c in 0..<6 {
            var sum: Float = 0
            for (item, w) in zip(rated, weights) { sum += w * e.vectors[Int(item) * 6 + c] }
            #expect(abs(weighted[c] - sum) <= 1e-5 * max(1, abs(sum)))
        }
        // Weights of 1 are the plain sum, bit for bit, so a decay of 1 leaves every list as it was.
        #expect(e.userVector(ratedItems: rated, weights: [1, 1, 1, 1]) == e.userVector(ratedItems: rated))
        let prior = (0..<30).map { Float(($0 * 7) % 11) }
        let plain = e.topN(rated: rated, n: 8, excluded: Set(rated), prior: prior, weight: 2)!
        let ones = e.topN(
            rated: rated, n: 8, excluded: Set(rated), prior: prior, weight: 2, ratedWeights: [1, 1, 1, 1])!
        #expect(plain.map(\.item) == ones.map(\.item) && plain.map(\.score) == ones.map(\.score))
        // The newest item alone (the others weighted almost 0) ranks its own neighbours first.
        let newest = e.topN(
            rated: rated, n: 5, excluded: Set(rated), prior: prior, weight: 0, ratedWeights: [1e-6, 1e-6, 1e-6, 1])!
        #expect(newest.map(\.item) == e.topN(rated: [25], n: 5, excluded: Set(rated))!.map(\.item))
    }
}
