import Foundation
import TestFixtures
import Testing

@testable import MFEngine

func randomModel(users: Int, items: Int, k: Int, seed: UInt64, useBias: Bool = true) -> FactorModel {
    var rng = SeededGenerator(seed: seed)
    var m = FactorModel(factors: k, userCount: users, itemCount: items, useBias: useBias, globalMean: 3.5, scale: 1...5)
    for u in 0..<users { for f in 0..<k { m.userFactors[u * m.stride + f] = Float(rng.nextGaussian()) } }
    for i in 0..<items { for f in 0..<k { m.itemFactors[i * m.stride + f] = Float(rng.nextGaussian()) } }
    if useBias {
        for u in 0..<users { m.userBias[u] = Float(rng.nextGaussian()) * 0.3 }
        for i in 0..<items { m.itemBias[i] = Float(rng.nextGaussian()) * 0.3 }
    }
    return m
}

func tempPath(_ name: String) -> String {
    scratchPath("mfrec-im-\(name)").path
}

@Suite struct ItemMatrixTests {
    @Test(arguments: [(1, 7), (5, 100), (20, 1682), (64, 333)])
    func topNEqualsFullSortOfTheModel(k: Int, items: Int) throws {
        let model = randomModel(users: 30, items: items, k: k, seed: UInt64(k * 1000 + items))
        let path = tempPath("m.items")
        try ItemMatrix.write(model: model, generation: 3, snapshotID: 9, to: path)
        let matrix = try ItemMatrix.open(path: path, generation: 3, snapshotID: 9, factors: k, itemCount: items)
        var rng = SeededGenerator(seed: 11)
        for u in 0..<30 {
            let n = 1 + rng.next(below: items + 5)
            let excluded = (0..<items).filter { _ in rng.nextDouble() < 0.2 }.map(Int32.init)
            let query = matrix.queryVector(model.userVector(u))
            // Scores from the model in double precision, as the oracle.
            let scores = (0..<items).map { i in
                Float(
                    zip(model.userVector(u), model.itemVector(i)).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
                        + Double(model.itemBias[i]))
            }
            let got = matrix.topN(query: query, n: n, excluded: excluded)
            let want = TopNTests.oracle(scores, n: n, excluded: Set(excluded))
            #expect(got.count == want.count)
            // Float rounding may swap near-ties: compare scores rank by rank, and the sets of items.
            for (g, w) in zip(got, want) { #expect(abs(g.score - scores[Int(w)]) < 1e-4) }
            #expect(Set(got.map(\.item)).isDisjoint(with: excluded))
            #expect(matrix.topN(query: query, n: n, excluded: excluded, threads: 2).map(\.item) == got.map(\.item))
            #expect(
                matrix.topNBatch(queries: [query, query], n: n, excluded: [excluded, []])[0].map(\.item)
                    == got.map(\.item))
        }
    }

    @Test func largeMatrixSplitsAcrossThreadsWithTheSameAnswer() throws {
        let model = randomModel(users: 3, items: 140_000, k: 8, seed: 5)
        let path = tempPath("big.items")
        try ItemMatrix.write(model: model, generation: 1, snapshotID: 1, to: path)
        let matrix = try ItemMatrix.open(path: path, generation: 1, snapshotID: 1, factors: 8, itemCount: 140_000)
        #expect(matrix.scanParts(threads: 2) == 2)
        let query = matrix.queryVector(model.userVector(1))
        let excluded: [Int32] = [5, 17_000, 70_000, 139_999]
        #expect(
            matrix.topN(query: query, n: 25, excluded: excluded, threads: 2).map(\.item)
                == matrix.topN(query: query, n: 25, excluded: excluded, threads: 1).map(\.item))
    }

    @Test func damagedFilesAreDetected() throws {
        let model = randomModel(users: 2, items: 50, k: 6, seed: 1)
        let path = tempPath("d.items")
        try ItemMatrix.write(model: model, generation: 4, snapshotID: 2, to: path)
        let good = try Data(contentsOf: URL(fileURLWithPath: path))
        func open() throws -> ItemMatrix {
            try ItemMatrix.open(path: path, generation: 4, snapshotID: 2, factors: 6, itemCount: 50)
        }
        _ = try open()
        // Another model version.
        #expect(throws: EngineError.itemMatrixStale) {
            try ItemMatrix.open(path: path, generation: 5, snapshotID: 2, factors: 6, itemCount: 50)
        }
        // Truncated.
        try good.prefix(good.count - 7).write(to: URL(fileURLWithPath: path))
        #expect(throws: EngineError.self) { try open() }
        try good.prefix(10).write(to: URL(fileURLWithPath: path))
        #expect(throws: EngineError.self) { try open() }
        // One flipped byte anywhere in the rows.
        var flipped = good
        flipped[good.count / 2] ^= 0x01
        try flipped.write(to: URL(fileURLWithPath: path))
        #expect(throws: EngineError.itemMatrixCorrupt("checksum mismatch")) { try open() }
        // Foreign content.
        try Data(repeating: 0x41, count: good.count).write(to: URL(fileURLWithPath: path))
        #expect(throws: EngineError.self) { try open() }
        // Missing.
        try FileManager.default.removeItem(atPath: path)
        #expect(throws: EngineError.itemMatrixMissing) { try open() }
    }

    @Test func writeLeavesNoTempFiles() throws {
        let folder = scratchPath("mfrec-im")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let path = folder.appendingPathComponent("x.items").path
        try ItemMatrix.write(
            model: randomModel(users: 1, items: 10, k: 4, seed: 2), generation: 1, snapshotID: 1, to: path)
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path) == ["x.items"])
    }

    @Test func similarIsCosineOfItemVectors() throws {
        let model = randomModel(users: 1, items: 40, k: 5, seed: 8)
        let path = tempPath("s.items")
        try ItemMatrix.write(model: model, generation: 1, snapshotID: 1, to: path)
        let matrix = try ItemMatrix.open(path: path, generation: 1, snapshotID: 1, factors: 5, itemCount: 40)
        func cosine(_ a: Int, _ b: Int) -> Float {
            let x = Array(model.itemVector(a)), y = Array(model.itemVector(b))
            let d = zip(x, y).reduce(0) { $0 + $1.0 * $1.1 }
            return d / (x.reduce(0) { $0 + $1 * $1 }.squareRoot() * y.reduce(0) { $0 + $1 * $1 }.squareRoot())
        }
        let got = matrix.similar(to: 3, n: 5)
        let want = (0..<40).filter { $0 != 3 }.sorted { cosine(3, $0) > cosine(3, $1) }.prefix(5)
        #expect(got.map { Int($0.item) } == Array(want))
        for hit in got { #expect(abs(hit.score - cosine(3, Int(hit.item))) < 1e-5) }
    }
}
