import Foundation
import Testing

@testable import MFEngine

/// The item matrix's reduced-precision scan copy (`train --item-precision f16|i8`): scans read half or a
/// quarter of the bytes, keep a few times n candidates and re-score them from the f32 rows.
@Suite struct ItemMatrixPrecisionTests {
    /// Share of the f32 list's items that the reduced list also has, over many queries.
    func recall(_ reduced: [[(item: Int32, score: Float)]], _ exact: [[(item: Int32, score: Float)]]) -> Double {
        var hits = 0, total = 0
        for (r, e) in zip(reduced, exact) {
            hits += Set(r.map(\.item)).intersection(e.map(\.item)).count
            total += e.count
        }
        return Double(hits) / Double(max(total, 1))
    }

    /// A ranking model with the given item vectors (unit eigenvalues and item weights).
    func rankingModel(k: Int, items: Int, vectors: [Float], popularity: [Float]? = nil) -> RankingModel {
        RankingModel(
            parameters: .init(factors: k), itemCount: items, eigenvalues: [Float](repeating: 1, count: k),
            itemVectors: vectors, itemWeights: [Float](repeating: 1, count: items), popularity: popularity)
    }

    func written(_ model: FactorModel, ranking: RankingModel? = nil, _ precision: ItemPrecision) throws -> ItemMatrix {
        let path = tempPath("\(precision).items")
        try ItemMatrix.write(
            model: model, ranking: ranking, precision: precision, generation: 4, snapshotID: 2, to: path)
        let shape = ranking.map { ItemMatrix.Shape(itemCount: $0.itemCount, factors: $0.factors) } ?? .none
        return try ItemMatrix.open(
            path: path, generation: 4, snapshotID: 2, factors: model.factors, itemCount: model.itemCount,
            ranking: shape, precision: precision)
    }

    @Test(arguments: [ItemPrecision.f16, .i8], [false, true])
    func reducedListsMatchTheF32ListsWithExactScores(precision: ItemPrecision, portable: Bool) throws {
        ItemMatrix.usePortableKernels(portable)
        defer { ItemMatrix.usePortableKernels(false) }
        // k = 40 pads rows to 48: the copy's padding must score as zeros.
        let model = randomModel(users: 200, items: 3_001, k: 40, seed: 21)
        let exact = try written(model, .f32), reduced = try written(model, precision)
        #expect(reduced.precision == precision && exact.precision == .f32)
        var rng = SeededGenerator(seed: 3)
        var reducedLists: [[(item: Int32, score: Float)]] = [], exactLists: [[(item: Int32, score: Float)]] = []
        for u in 0..<200 {
            let query = exact.queryVector(model.userVector(u))
            let excluded = (0..<(u % 13)).map { _ in Int32(rng.next() % 3_001) }
            let sortedExcluded = Array(Set(excluded)).sorted()
            let r = reduced.topN(query: query, n: 10, excluded: sortedExcluded)
            let e = exact.topN(query: query, n: 10, excluded: sortedExcluded)
            #expect(r.count == 10 && r.allSatisfy { !sortedExcluded.contains($0.item) })
            // Every reported score is the item's exact f32 score.
            for (item, score) in r {
                let want = exact.topN(query: query, n: 3_001).first { $0.item == item }!.score
                #expect(score == want)
            }
            reducedLists.append(r)
            exactLists.append(e)
        }
        let found = recall(reducedLists, exactLists)
        #expect(found >= 0.99, "recall@10 \(found)")
    }

    /// Every kernel level (portable, AVX2, AVX-512 where the CPU has them) scores each row as the dot product
    /// of the query with the row's stored values (for i8: with the query in bytes too, times both scales). The
    /// widths cover each kernel's specialized row widths (strides 32, 64, 128, 256) and the general path (48).
    @Test(arguments: [ItemPrecision.f16, .i8], [20, 40, 64, 128, 256])
    func kernelsScoreTheStoredValues(precision: ItemPrecision, k: Int) throws {
        let model = randomModel(users: 3, items: 1_001, k: k, seed: UInt64(k))
        let matrix = try written(model, precision)
        let reduced = try #require(matrix.scanRows)
        let stride = matrix.stride
        for u in 0..<3 {
            let query = matrix.queryVector(model.userVector(u))
            var want = [Double](repeating: 0, count: 1_001), magnitude = [Double](repeating: 0, count: 1_001)
            let largest = query.map { abs($0) }.max()!, qscale = largest / 127
            let qbytes = query.map { Float(Int8(max(-127, min(127, ($0 / qscale).rounded())))) }
            for i in 0..<1_001 {
                let (bytes, scale) = precision.encode(model.itemVector(i), stride: stride)
                for f in 0..<stride {
                    let term: Double
                    if precision == .f16 {
                        let bits = UInt16(bytes[2 * f]) | UInt16(bytes[2 * f + 1]) << 8
                        term = Double(query[f]) * Double(Float(Float16(bitPattern: bits)))
                    } else {
                        term = Double(qbytes[f]) * Double(Int8(bitPattern: bytes[f])) * Double(qscale * scale)
                    }
                    want[i] += term
                    magnitude[i] += abs(term)
                }
                want[i] += Double(matrix.biases[i])
            }
            for level in 0...2 {
                ItemMatrix.capKernels(at: level)
                defer { ItemMatrix.capKernels(at: 2) }
                var got = [Float](repeating: 0, count: 1_001)
                reduced.scores(query: query, start: 0, length: 1_001, biases: matrix.biases, into: &got)
                let worst = (0..<1_001).map { abs(Double(got[$0]) - want[$0]) / (magnitude[$0] + 1) }.max()!
                #expect(
                    worst < 1e-5,
                    "level \(level) (runs \(ItemMatrix.reducedKernelLevel(precision))): relative error \(worst)")
            }
        }
    }

    @Test(arguments: [ItemPrecision.f16, .i8])
    func twoThreadScansEqualOneThreadScans(precision: ItemPrecision) throws {
        let model = randomModel(users: 8, items: 300_000, k: 32, seed: 9)
        let matrix = try written(model, precision)
        #expect(matrix.scanParts(threads: 2) == 2)
        for u in 0..<8 {
            let query = matrix.queryVector(model.userVector(u))
            let excluded: [Int32] = [3, 17_000, 150_001, 299_999]
            let one = matrix.topN(query: query, n: 20, excluded: excluded, threads: 1)
            let two = matrix.topN(query: query, n: 20, excluded: excluded, threads: 2)
            #expect(one.map(\.item) == two.map(\.item) && one.map(\.score) == two.map(\.score))
        }
    }

    @Test(arguments: [ItemPrecision.f16, .i8])
    func rankingSectionScansTheCopyUnlessBlended(precision: ItemPrecision) throws {
        let model = randomModel(users: 2, items: 2_000, k: 8, seed: 1)
        var rng = SeededGenerator(seed: 8)
        let k = 20
        let ranking = rankingModel(
            k: k, items: 2_000, vectors: (0..<(2_000 * k)).map { _ in Float(rng.nextGaussian()) },
            popularity: (0..<2_000).map { Float($0 % 17) / 4 })
        let exact = try written(model, ranking: ranking, .f32),
            reduced = try written(model, ranking: ranking, precision)
        var r: [[(item: Int32, score: Float)]] = [], e: [[(item: Int32, score: Float)]] = []
        for trial in 0..<100 {
            let query = (0..<k).map { _ in Float(rng.nextGaussian()) }
            let excluded = Set((0..<(trial % 9)).map { _ in Int32(rng.next() % 2_000) })
            r.append(reduced.rankingTopN(query: query, n: 10, excluded: excluded))
            e.append(exact.rankingTopN(query: query, n: 10, excluded: excluded))
            #expect(r.last!.allSatisfy { !excluded.contains($0.item) })
            // A popularity blend reads the f32 rows: the same list and scores, bit for bit.
            let blendedReduced = reduced.rankingTopN(query: query, n: 10, excluded: excluded, popularityWeight: 0.5)
            let blendedExact = exact.rankingTopN(query: query, n: 10, excluded: excluded, popularityWeight: 0.5)
            #expect(blendedReduced.map(\.item) == blendedExact.map(\.item))
            #expect(blendedReduced.map(\.score) == blendedExact.map(\.score))
        }
        #expect(recall(r, e) >= 0.99)
        for (a, b) in zip(r, e) {
            for entry in a where b.contains(where: { $0.item == entry.item }) {
                #expect(b.first { $0.item == entry.item }!.score == entry.score)
            }
        }
    }

    @Test(arguments: [ItemPrecision.f16, .i8])
    func precisionIsPartOfWhatTheFileMustBeAndTheCopyIsChecksummed(precision: ItemPrecision) throws {
        let model = randomModel(users: 2, items: 100, k: 16, seed: 2)
        let path = tempPath("p.items")
        try ItemMatrix.write(model: model, precision: precision, generation: 4, snapshotID: 2, to: path)
        func open(_ p: ItemPrecision) throws -> ItemMatrix {
            try ItemMatrix.open(path: path, generation: 4, snapshotID: 2, factors: 16, itemCount: 100, precision: p)
        }
        _ = try open(precision)
        #expect(throws: EngineError.itemMatrixStale) { try open(.f32) }
        let size = try FileManager.default.attributesOfItem(atPath: path)[.size] as! Int
        let f32 = ItemMatrix.fileLength(count: 100, stride: 16, ranking: .none)
        #expect(size == f32 + ItemMatrix.reducedBytes(count: 100, stride: 16, precision))
        // One flipped bit in the scan copy (past the f32 rows and biases) is damage.
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        bytes[f32 + 5] ^= 0x10
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        #expect(throws: EngineError.itemMatrixCorrupt("checksum mismatch")) { try open(precision) }
    }

    @Test(arguments: [ItemPrecision.f16, .i8])
    func inPlaceUpdatesRewriteTheCopy(precision: ItemPrecision) throws {
        var model = randomModel(users: 4, items: 500, k: 24, seed: 5)
        var rng = SeededGenerator(seed: 6)
        let k = 12
        var ranking = rankingModel(k: k, items: 500, vectors: (0..<(500 * k)).map { _ in Float(rng.nextGaussian()) })
        let path = tempPath("u.items")
        try ItemMatrix.write(
            model: model, ranking: ranking, precision: precision, generation: 1, snapshotID: 1, to: path)
        let shape = ItemMatrix.Shape(itemCount: 500, factors: k)
        // Items 7 and 300 move far up: they must lead the lists scanned from the updated copy.
        let user = Array(model.userVector(0))
        var rows: [(item: Int, vector: [Float], bias: Float)] = []
        for item in [7, 300] {
            let v = user.map { $0 * 3 }
            for f in 0..<24 { model.itemFactors[item * model.stride + f] = v[f] }
            model.itemBias[item] = 2
            rows.append((item, v, 2))
        }
        let rankingQuery = (0..<k).map { _ in Float(rng.nextGaussian()) }
        let rankingRow = rankingQuery.map { $0 * 5 }
        ranking.setItem(42, vector: rankingRow, ratings: 3, popularity: 0)
        #expect(
            ItemMatrix.updateInPlace(
                path: path, expectedGeneration: 1, snapshotID: 1, factors: 24, itemCount: 500, items: rows,
                ranking: shape, rankingItems: [(42, rankingRow, 0)], precision: precision, generation: 2))
        // The checksum still holds, and the lists are those of a file written whole from the updated models.
        let updated = try ItemMatrix.open(
            path: path, generation: 2, snapshotID: 1, factors: 24, itemCount: 500, ranking: shape,
            precision: precision)
        let fresh = tempPath("f.items")
        try ItemMatrix.write(
            model: model, ranking: ranking, precision: precision, generation: 2, snapshotID: 1, to: fresh)
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == Data(contentsOf: URL(fileURLWithPath: fresh)))
        let top = updated.topN(query: updated.queryVector(user), n: 2)
        #expect(Set(top.map(\.item)) == [7, 300])
        #expect(updated.rankingTopN(query: rankingQuery, n: 1, excluded: []).first?.item == 42)
        // A file of another precision is not updated in place (the caller rewrites it whole).
        let other: ItemPrecision = precision == .f16 ? .i8 : .f16
        #expect(
            !ItemMatrix.updateInPlace(
                path: path, expectedGeneration: 2, snapshotID: 1, factors: 24, itemCount: 500, items: rows,
                ranking: shape, precision: other, generation: 3))
    }
}
