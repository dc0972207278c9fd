import Foundation
import Testing

@testable import MFEngine

@Suite struct ALSBlendTests {
    let spectralParameters = RankingModel.Parameters(factors: 16, exponent: 0.3, spectrumPower: 0.5, weighting: .rating)

    func byUser(_ train: RatingTriples) -> [Int32: [(item: Int32, rating: Float)]] {
        var out: [Int32: [(item: Int32, rating: Float)]] = [:]
        for j in 0..<train.count { out[train.users[j], default: []].append((train.items[j], train.ratings[j])) }
        return out
    }

    @Test func aFitStoppedByItsCallerSaysHowManySweepsItDid() {
        let (train, _, _) = plantedRatings(seed: 5)
        var polls = 0
        let fit = { (stop: (() -> Bool)?) in
            ImplicitALSFit.fit(
                users: train.users, items: train.items, ratings: train.ratings, userCount: 400, itemCount: 260,
                ratingOffset: 1, factors: 8, regularization: 1, alpha: 1, iterations: 6, seed: 3, threads: 2,
                isCancelled: stop)
        }
        let stopped = fit {
            polls += 1
            return polls > 2
        }
        let whole = fit(nil)
        #expect(stopped.sweeps == 2 && whole.sweeps == 6)
        #expect(stopped.items != whole.items)
    }

    @Test func theFitIsTheSameForASeedOnAnyNumberOfThreadsAndFindsTheGroups() {
        let (train, held, popularity) = plantedRatings(seed: 5)
        let fit = { (threads: Int) in
            ImplicitALSFit.fit(
                users: train.users, items: train.items, ratings: train.ratings, userCount: 400, itemCount: 260,
                ratingOffset: 1, factors: 8, regularization: 1, alpha: 1, iterations: 8, seed: 3, threads: threads)
        }
        let one = fit(1), two = fit(2)
        #expect(one.users == two.users && one.items == two.items)
        #expect(one.users.contains { $0 != 0 } && one.items.allSatisfy(\.isFinite))
        let rated = byUser(train)
        let popular = (0..<260).sorted { popularity[$0] != popularity[$1] ? popularity[$0] > popularity[$1] : $0 < $1 }
        var ours = 0, baseline = 0
        for (u, relevant) in held {
            let excluded = Set(rated[u]!.map(\.item))
            let x = one.users[(Int(u) * 8)..<(Int(u) * 8 + 8)]
            let scores = (0..<260).map { i in
                zip(x, one.items[(i * 8)..<(i * 8 + 8)]).reduce(Float(0)) { $0 + $1.0 * $1.1 }
            }
            let top = (0..<260).filter { !excluded.contains(Int32($0)) }.sorted { scores[$0] > scores[$1] }.prefix(10)
            ours += top.filter { relevant.contains(Int32($0)) }.count
            baseline +=
                popular.filter { !excluded.contains(Int32($0)) }.prefix(10).filter { relevant.contains(Int32($0)) }
                .count
        }
        #expect(Double(ours) > 2 * Double(max(baseline, 1)), "hits \(ours) vs popular \(baseline)")
    }

    @Test func blendedVectorsAreTheSpectralOnesFollowedByTheWeightedALSStep() throws {
        let (train, _, _) = plantedRatings(seed: 7)
        let spectral = RankingModel.fit(
            users: train.users, items: train.items, ratings: train.ratings, userCount: 400, itemCount: 260,
            parameters: spectralParameters, threads: 2)
        let blend = ALSBlend(factors: 8, alpha: 1, regularization: 1, iterations: 8, weight: 0.5)
        let model = spectral.withALS(
            blend, users: train.users, items: train.items, ratings: train.ratings, userCount: 400, threads: 2)
        let measured = try #require(model.parameters.alsBlend)
        #expect(model.factors == 24 && model.spectralFactors == 16 && measured.scale > 0)
        let ratings = byUser(train)[3]!
        let v = model.userVector(user: 3, ratings: ratings)
        let p = spectral.userVector(ratings: ratings)
        for c in 0..<16 { #expect(abs(v[c] - p[c]) <= 1e-5 * max(1, abs(p[c]))) }
        // The stored ALS vector and the exact step over the same ratings agree (the fit ends on a user sweep).
        let step = model.blendStep(ratings: ratings, measured)
        let m = Float(measured.weight * measured.scale)
        for c in 0..<8 { #expect(abs(v[16 + c] - m * step[c]) <= 0.05 * max(0.1, abs(m * step[c])), "column \(c)") }
        // The list is the dot product with the concatenated rows.
        let top = try #require(model.topN(ratings: ratings, n: 5, excluded: Set(ratings.map(\.item))))
        let anonymous = model.userVector(ratings: ratings)
        let first = Int(top[0].item)
        let dot = (0..<24).reduce(Float(0)) { $0 + anonymous[$1] * model.itemVectors[first * 24 + $1] }
        #expect(abs(dot - top[0].score) <= 1e-3 * max(1, abs(dot)))
        // A weight-0 blend ranks like the spectral model alone.
        var zero = blend
        zero.weight = 0
        let plain = spectral.withALS(
            zero, users: train.users, items: train.items, ratings: train.ratings, userCount: 400, threads: 2)
        let excluded = Set(ratings.map(\.item))
        #expect(
            plain.topN(ratings: ratings, n: 10, excluded: excluded)!.map(\.item)
                == spectral.topN(ratings: ratings, n: 10, excluded: excluded)!.map(\.item))
    }

    @Test func aBlendedModelRoundTripsThroughItsEncoding() throws {
        let (train, _, _) = plantedRatings(seed: 11)
        let model = RankingModel.fit(
            users: train.users, items: train.items, ratings: train.ratings, userCount: 400, itemCount: 260,
            parameters: spectralParameters, threads: 2
        ).withALS(
            ALSBlend(factors: 8, alpha: 1, regularization: 1, iterations: 5, weight: 1), users: train.users,
            items: train.items, ratings: train.ratings, userCount: 400, threads: 2)
        let decoded = try #require(RankingModel(parameters: model.parameters, encoded: model.encoded()))
        #expect(decoded == model)
        let ratings = byUser(train)[10]!
        #expect(decoded.userVector(user: 10, ratings: ratings) == model.userVector(user: 10, ratings: ratings))
        // Parameters without the ALS part do not decode the blended bytes.
        #expect(RankingModel(parameters: spectralParameters, encoded: model.encoded()) == nil)
    }
}
