import Foundation
import Testing

@testable import MFEngine

/// The item matrix's ranking section: the ranking model's item vectors and popularity prior, mapped beside
/// the rating model's rows, scanned with the same kernels as the in-memory rows and updated in place.
@Suite struct ItemMatrixRankingTests {
    /// A ranking model of k factors over `items` items fitted to random ratings, with a popularity prior.
    func rankingModel(items: Int, k: Int, seed: UInt64) -> RankingModel {
        var rng = SeededGenerator(seed: seed)
        var train = RatingTriples()
        var counts = [Int](repeating: 0, count: items)
        for u in 0..<120 {
            for _ in 0..<12 {
                let i = Int(rng.next() % UInt64(items))
                train.append(user: Int32(u), item: Int32(i), rating: Float(1 + rng.next() % 5))
                counts[i] += 1
            }
        }
        return RankingModel.fit(
            users: train.users, items: train.items, ratings: train.ratings, userCount: 120, itemCount: items,
            parameters: .init(factors: k), threads: 1
        ).withPopularity(relevantCounts: counts)
    }

    /// A rating model (k = `k`) and a ranking model (k = `rankingK`) over `items` items, written to a new file.
    func written(items: Int, k: Int, rankingK: Int, seed: UInt64, generation: UInt64, snapshotID: UInt64) throws -> (
        model: FactorModel, ranking: RankingModel, path: String, shape: ItemMatrix.Shape
    ) {
        let ranking = rankingModel(items: items, k: rankingK, seed: seed)
        let model = randomModel(users: 2, items: items, k: k, seed: seed + 1)
        let path = tempPath("r.items")
        try ItemMatrix.write(model: model, ranking: ranking, generation: generation, snapshotID: snapshotID, to: path)
        return (model, ranking, path, ItemMatrix.Shape(itemCount: items, factors: rankingK))
    }

    @Test(arguments: [(7, 50), (16, 300), (20, 123)])
    func mappedScanEqualsTheInMemoryScanBitForBit(k: Int, items: Int) throws {
        let ranking = rankingModel(items: items, k: k, seed: UInt64(k * 31 + items))
        let model = randomModel(users: 3, items: items, k: 5, seed: 4)
        let path = tempPath("r.items")
        try ItemMatrix.write(model: model, ranking: ranking, generation: 6, snapshotID: 2, to: path)
        let shape = ItemMatrix.Shape(itemCount: items, factors: k)
        let matrix = try ItemMatrix.open(
            path: path, generation: 6, snapshotID: 2, factors: 5, itemCount: items, ranking: shape)
        #expect(matrix.ranking == shape)
        var rng = SeededGenerator(seed: 5)
        for trial in 0..<20 {
            let query = (0..<k).map { _ in Float(rng.nextGaussian()) }
            let excluded = Set((0..<(trial % 7)).map { _ in Int32(rng.next() % UInt64(items)) })
            for weight: Float in [0, 0.4] {
                let mapped = matrix.rankingTopN(query: query, n: 10, excluded: excluded, popularityWeight: weight)
                let memory = ranking.topN(user: query, n: 10, excluded: excluded, popularityWeight: weight)
                #expect(mapped.map(\.item) == memory.map(\.item))
                #expect(mapped.map(\.score.bitPattern) == memory.map(\.score.bitPattern))
                // Blended with a rating model's scores: the mapped scan gives the in-memory list too.
                let scores = model.itemScores(user: model.userVector(trial % 3))
                let blendedMapped = matrix.rankingTopN(
                    query: query, n: 10, sortedExclusions: excluded.sorted(), popularityWeight: weight,
                    ratingScores: scores, ratingWeight: 0.3)
                let blendedMemory = ranking.topN(
                    user: query, n: 10, excluded: excluded, popularityWeight: weight, ratingScores: scores,
                    ratingWeight: 0.3)
                #expect(blendedMapped.map(\.item) == blendedMemory.map(\.item))
                #expect(blendedMapped.map(\.score.bitPattern) == blendedMemory.map(\.score.bitPattern))
            }
        }
        for i in [0, items / 2, items - 1] {
            let row = matrix.rankingItem(i), want = ranking.itemRow(i)
            #expect(row.vector == want.vector && row.popularity == want.popularity)
        }
        // The rating section is unchanged by the ranking one behind it.
        #expect(matrix.item(items - 1).vector == Array(model.itemVector(items - 1)))
    }

    @Test func shapeAndDamageOfTheRankingSectionAreDetected() throws {
        let (model, ranking, path, shape) = try written(
            items: 40, k: 4, rankingK: 8, seed: 1, generation: 3, snapshotID: 1)
        func open(_ expected: ItemMatrix.Shape) throws -> ItemMatrix {
            try ItemMatrix.open(path: path, generation: 3, snapshotID: 1, factors: 4, itemCount: 40, ranking: expected)
        }
        _ = try open(shape)
        // A file without the ranking section, or with another one, is stale for the live state.
        #expect(throws: EngineError.itemMatrixStale) { try open(.none) }
        #expect(throws: EngineError.itemMatrixStale) { try open(ItemMatrix.Shape(itemCount: 40, factors: 9)) }
        try ItemMatrix.write(model: model, generation: 3, snapshotID: 1, to: path)
        #expect(throws: EngineError.itemMatrixStale) { try open(shape) }
        _ = try open(.none)
        // One flipped bit in the ranking rows or in the popularity prior (the file's last bytes).
        try ItemMatrix.write(model: model, ranking: ranking, generation: 3, snapshotID: 1, to: path)
        let good = try Data(contentsOf: URL(fileURLWithPath: path))
        let rankingStart = ItemMatrix.rankingOffset(count: 40, stride: 16)
        for offset in [rankingStart + 4, rankingStart + 40 * 16 * 4 + 8] {
            var flipped = good
            flipped[offset] ^= 0x01
            try flipped.write(to: URL(fileURLWithPath: path))
            #expect(throws: EngineError.itemMatrixCorrupt("checksum mismatch")) { try open(shape) }
        }
    }

    @Test func inPlaceUpdatesOfBothSectionsKeepTheChecksum() throws {
        let fixture = try written(items: 60, k: 6, rankingK: 12, seed: 8, generation: 10, snapshotID: 4)
        var model = fixture.model, ranking = fixture.ranking
        let path = fixture.path, shape = fixture.shape
        let reader = try ItemMatrix.open(
            path: path, generation: 10, snapshotID: 4, factors: 6, itemCount: 60, ranking: shape)
        for f in 0..<6 { model.itemFactors[7 * model.stride + f] = Float(f) }
        model.itemBias[7] = 0.5
        let moved = (0..<12).map { Float($0) * 0.25 }
        ranking.setItem(33, vector: moved, ratings: ranking.ratingCount(item: 33) + 1, popularity: 2.5)
        let done = ItemMatrix.updateInPlace(
            path: path, expectedGeneration: 10, snapshotID: 4, factors: 6, itemCount: 60,
            items: [(7, Array(model.itemVector(7)), 0.5)], ranking: shape,
            rankingItems: [(33, moved, 2.5)], generation: 11)
        #expect(done)
        // A reader's mapping sees the new rows and the new generation at once.
        #expect(reader.mappedGeneration == 11)
        #expect(reader.rankingItem(33).vector == moved && reader.rankingItem(33).popularity == 2.5)
        // The file verifies whole, and equals one written from scratch.
        let reopened = try ItemMatrix.open(
            path: path, generation: 11, snapshotID: 4, factors: 6, itemCount: 60, ranking: shape)
        #expect(reopened.item(7).vector == Array(model.itemVector(7)))
        let fresh = tempPath("f.items")
        try ItemMatrix.write(model: model, ranking: ranking, generation: 11, snapshotID: 4, to: fresh)
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == Data(contentsOf: URL(fileURLWithPath: fresh)))
        // The wrong section shape, or a row outside it, changes nothing.
        #expect(
            !ItemMatrix.updateInPlace(
                path: path, expectedGeneration: 11, snapshotID: 4, factors: 6, itemCount: 60, items: [],
                ranking: .none, generation: 12))
        #expect(
            !ItemMatrix.updateInPlace(
                path: path, expectedGeneration: 11, snapshotID: 4, factors: 6, itemCount: 60, items: [],
                ranking: shape, rankingItems: [(60, moved, 1)], generation: 12))
        #expect(reader.mappedGeneration == 11)
    }
}
