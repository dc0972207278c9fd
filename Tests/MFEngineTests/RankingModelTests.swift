import Foundation
import Testing

@testable import MFEngine

/// Users in `groups` taste groups: each rates mostly items of its own group (high ratings) and a few
/// popular items; a held-out share of each user's group items is what a good ranker should find.
func plantedRatings(users: Int = 400, items: Int = 240, groups: Int = 6, seed: UInt64 = 3)
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
        // Which items were folded in survives the encoding; version 1 (stored before fold-ins existed, no
        // flag bytes) still decodes, every rated item counting as fitted.
        var grown = one
        _ = grown.absorb(userRatings: { [(1, 1)] }, new: [(Int32(265), 1, nil)], relevantAt: 1)
        let decoded = RankingModel(parameters: parameters, encoded: grown.encoded())
        #expect(decoded == grown && decoded?.hasFittedVector(265) == false && decoded?.hasFittedVector(1) == true)
        var version1 = Array(one.encoded().dropLast(one.itemCount))
        version1[4] = 1
        #expect(RankingModel(parameters: parameters, encoded: version1) == one)
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

    @Test func absorbingAnItemsRatingsRebuildsItsRowByTheFoldInIdentity() {
        let (train, _, _) = plantedRatings(seed: 5)
        let exponent = 0.4
        let model = RankingModel.fit(
            users: train.users, items: train.items, ratings: train.ratings, userCount: 400, itemCount: 260,
            parameters: .init(factors: 8, exponent: exponent, spectrumPower: 1, weighting: .rating),
            iterations: 40, threads: 2
        )
        .withPopularity(users: train.users, items: train.items, ratings: train.ratings, relevantAt: 4)
        var byUser: [Int32: [(item: Int32, rating: Float)]] = [:]
        for j in 0..<train.count { byUser[train.users[j], default: []].append((train.items[j], train.ratings[j])) }
        let target = 3  // an item of taste group 0
        let raters = byUser.filter { $0.value.contains { $0.item == Int32(target) } }.sorted { $0.key < $1.key }
        #expect(raters.count > 10)
        // The same model as if the item had no rating in the fit; then its ratings arrive one user at a
        // time, each user's projection taken over their other items.
        var vectors = model.itemVectors, weights = model.itemWeights, prior = model.popularity
        for c in 0..<8 { vectors[target * 8 + c] = 0 }
        weights[target] = 0
        prior[target] = 0
        var rebuilt = RankingModel(
            parameters: model.parameters, itemCount: 260, eigenvalues: model.eigenvalues, itemVectors: vectors,
            itemWeights: weights, popularity: prior)
        #expect(model.hasFittedVector(target) && !rebuilt.hasFittedVector(target))
        for (_, rated) in raters {
            let rating = rated.first { $0.item == Int32(target) }!.rating
            let changed = rebuilt.absorb(
                userRatings: { rated.filter { $0.item != Int32(target) } }, new: [(Int32(target), rating, nil)],
                relevantAt: 4)
            #expect(changed == [target])
        }
        #expect(rebuilt.ratingCount(item: target) == raters.count)
        #expect(abs(rebuilt.itemWeights[target] - model.itemWeights[target]) < 1e-6)
        #expect(rebuilt.popularity[target] == model.popularity[target])
        // For converged eigenvectors V_i = Λ⁻¹ Σ_u x_ui s_u, s_u over all of u's items. Without item i's own
        // term in s_u, the rebuilt row is V_i − Λ⁻¹ (Σ_u x_ui²) V_i.
        let weight = model.itemWeights[target]
        let squares = raters.map { _, rated in
            let x = (rated.first { $0.item == Int32(target) }!.rating) * weight  // w(r) = r − 1 + 1
            return x * x
        }.reduce(0, +)
        let original = model.itemRow(target).vector, absorbed = rebuilt.itemRow(target).vector
        var error: Float = 0, norm: Float = 0
        for c in 0..<8 {
            let expected = original[c] - squares * original[c] / model.eigenvalues[c]
            error += (absorbed[c] - expected) * (absorbed[c] - expected)
            norm += original[c] * original[c]
        }
        #expect(error.squareRoot() < 0.02 * norm.squareRoot(), "error \(error.squareRoot()), norm \(norm.squareRoot())")
        // Only that row changed; another item's new rating grows the model by the new rows.
        #expect((0..<260).filter { $0 != target }.allSatisfy { rebuilt.itemRow($0) == model.itemRow($0) })
        let grown = rebuilt.absorb(userRatings: { raters[0].value }, new: [(Int32(270), 5, nil)], relevantAt: 4)
        #expect(grown == [270] && rebuilt.itemCount == 271 && rebuilt.ratingCount(item: 265) == 0)
        #expect(rebuilt.itemRow(270).vector.contains { $0 != 0 } && !rebuilt.hasFittedVector(270))
        // A fitted item keeps its vector; its count and prior follow.
        let other = raters[0].value.first { $0.item != Int32(target) }!.item
        var moved = model
        let before = model.itemRow(Int(other))
        var asked = false
        _ = moved.absorb(
            userRatings: {
                asked = true
                return raters[1].value
            }, new: [(other, 5, nil)], relevantAt: 4)
        #expect(!asked)  // no fold-in: the user's ratings are not read
        #expect(moved.itemRow(Int(other)).vector == before.vector)
        #expect(moved.ratingCount(item: Int(other)) == before.ratings + 1)
        #expect(moved.popularity[Int(other)] > before.popularity)
    }
}
