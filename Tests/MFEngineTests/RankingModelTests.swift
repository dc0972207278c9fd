import Foundation
import Testing

@testable import MFEngine

/// Users in `groups` taste groups: each rates mostly items of its own group (high ratings) and a few
/// popular items; a held-out share of each user's group items is what a good ranker should find.
private func plantedRatings(users: Int = 400, items: Int = 240, groups: Int = 6, seed: UInt64 = 3)
    -> (train: RatingTriples, held: [Int32: Set<Int32>], popularity: [Int])
{
    var rng = SeededGenerator(seed: seed)
    var train = RatingTriples(), held: [Int32: Set<Int32>] = [:]
    var popularity = [Int](repeating: 0, count: items + 20)
    let perGroup = items / groups
    for u in 0..<users {
        let g = u % groups
        var chosen = Set<Int>()
        while chosen.count < 18 { chosen.insert(g * perGroup + Int(rng.next() % UInt64(perGroup))) }
        while chosen.count < 24 { chosen.insert(items + Int(rng.next() % 20)) }  // 20 popular items, rated by everyone
        for (n, i) in chosen.sorted().enumerated() {
            let rating: Float = i >= items ? 3 : 5
            if n % 4 == 0 && i / perGroup == g {
                held[Int32(u), default: []].insert(Int32(i))
            } else {
                train.append(user: Int32(u), item: Int32(i), rating: rating)
                popularity[i] += 1
            }
        }
    }
    return (train, held, popularity)
}

@Suite struct RankingModelTests {
    @Test func beatsPopularityOnPlantedStructure() {
        let (train, held, popularity) = plantedRatings()
        let model = RankingModel.fit(
            users: train.users, items: train.items, ratings: train.ratings, userCount: 400, itemCount: 260,
            parameters: .init(factors: 16, exponent: 0.3, spectrumPower: 0.5, weighting: .rating), threads: 2)
        var byUser: [Int32: [(item: Int32, rating: Float)]] = [:]
        for j in 0..<train.count { byUser[train.users[j], default: []].append((train.items[j], train.ratings[j])) }
        let popular = (0..<260).sorted { popularity[$0] != popularity[$1] ? popularity[$0] > popularity[$1] : $0 < $1 }
            .map(Int32.init)
        var ours = 0, baseline = 0
        for (u, relevant) in held {
            let rated = byUser[u]!, excluded = Set(rated.map(\.item))
            let top = model.topN(ratings: rated, n: 10, excluded: excluded)!.map(\.item)
            #expect(top.count == 10 && excluded.isDisjoint(with: top))
            ours += top.filter(relevant.contains).count
            baseline += popular.filter { !excluded.contains($0) }.prefix(10).filter(relevant.contains).count
        }
        // Popular items are not what anyone holds out: the model must find the users' groups.
        #expect(Double(ours) > 2 * Double(max(baseline, 1)), "hits \(ours) vs popular \(baseline)")
    }

    @Test func deterministicForASeedAndRoundTripsThroughItsEncoding() {
        let (train, _, _) = plantedRatings(seed: 9)
        let parameters = RankingModel.Parameters(factors: 16, exponent: 0.5, spectrumPower: 1, weighting: .binary)
        let fit = {
            RankingModel.fit(
                users: train.users, items: train.items, ratings: train.ratings, userCount: 400, itemCount: 260,
                parameters: parameters, seed: 7, threads: 1)
        }
        let one = fit(), two = fit()
        #expect(one == two)
        #expect(RankingModel(parameters: parameters, encoded: one.encoded()) == one)
        var damaged = one.encoded()
        damaged.removeLast()
        #expect(RankingModel(parameters: parameters, encoded: damaged) == nil)
        var other = parameters
        other.factors = 8
        #expect(RankingModel(parameters: other, encoded: one.encoded()) == nil)
    }

    @Test func eigenpairsSatisfyTheEigenEquation() {
        // XᵀX V = V Λ for the leading pairs, checked against XᵀX formed densely.
        let (train, _, _) = plantedRatings(users: 120, items: 60, groups: 3, seed: 4)
        let spectrum = Spectrum.fit(
            users: train.users, items: train.items, ratings: train.ratings, userCount: 120, itemCount: 80,
            exponent: 0.3, weighting: .rating, ratingOffset: 1, factors: 6, iterations: 12, threads: 1)
        let n = 80
        var degree = [Int](repeating: 0, count: n)
        for i in train.items { degree[Int(i)] += 1 }
        var x = [[Double]](repeating: [Double](repeating: 0, count: n), count: 120)
        for j in 0..<train.count {
            x[Int(train.users[j])][Int(train.items[j])] =
                Double(train.ratings[j]) * pow(Double(degree[Int(train.items[j])]), -0.3)
        }
        var gram = [[Double]](repeating: [Double](repeating: 0, count: n), count: n)
        for row in x { for a in 0..<n where row[a] != 0 { for b in 0..<n { gram[a][b] += row[a] * row[b] } } }
        #expect(spectrum.values == spectrum.values.sorted(by: >))
        for c in 0..<3 {
            let lambda = Double(spectrum.values[c])
            var residual = 0.0
            for a in 0..<n {
                var s = 0.0
                for b in 0..<n { s += gram[a][b] * Double(spectrum.vectors[b * 6 + c]) }
                residual = max(residual, abs(s - lambda * Double(spectrum.vectors[a * 6 + c])))
            }
            #expect(residual < 1e-3 * lambda, "pair \(c): residual \(residual), λ \(lambda)")
        }
    }
}
