import Foundation
import MFEngine
import MFRec

/// The fuzz targets: each takes arbitrary bytes and must end with a result or an error, never a crash,
/// a trap or an out-of-bounds access. `scripts/fuzz.sh` drives them with libFuzzer (the `mfrec-fuzz`
/// product built with `-sanitize=fuzzer,address`); `swift test` replays the kept corpus and every
/// regression case through the same functions.
public enum FuzzTarget: String, CaseIterable, Sendable {
    /// The ratings readers: format (detected, u.data, ratings.dat, CSV) and gzip chosen by the first byte.
    case ratings
    /// The item-file readers (u.item, movies.dat, movies.csv), format chosen by the first byte.
    case items
    /// `ItemMatrix.open` on arbitrary bytes (the header's own fields as the expected shape), then a scan.
    case itemMatrix = "item-matrix"
    /// The snapshot blob decoder, then predictions from what it decoded.
    case snapshotBlob = "snapshot-blob"
    /// The co-occurrence embedding decoder (shape from the first bytes), then a top-n.
    case cooccurrence

    /// Runs one input.
    /// - Parameter data: the input bytes.
    public func run(_ data: [UInt8]) {
        switch self {
        case .ratings: Self.ratings(data)
        case .items: Self.items(data)
        case .itemMatrix: Self.itemMatrix(data)
        case .snapshotBlob: Self.snapshotBlob(data)
        case .cooccurrence: Self.cooccurrence(data)
        }
    }

    /// Valid inputs to start from (the binary formats are hard to find by mutation alone).
    public var seeds: [[UInt8]] {
        var rng = SeededGenerator(seed: 3)
        var model = FactorModel(factors: 4, userCount: 3, itemCount: 5, useBias: true, globalMean: 3.5, scale: 1...5)
        for j in model.itemFactors.indices { model.itemFactors[j] = rng.nextFloat() }
        for j in model.userFactors.indices { model.userFactors[j] = rng.nextFloat() }
        switch self {
        case .ratings:
            return [
                [0] + Array("196\t242\t3\t881250949\n186\t302\t3\t891717742\n".utf8),
                [2] + Array("userId,movieId,rating,timestamp\n1,31,2.5,1260759144\n\"x,y\",2,3,4\n".utf8),
                [1] + Array("1::1193::5::978300760\n1::661::3\n".utf8), [4] + Array("1\t2\t3\t4\n".utf8),
            ]
        case .items:
            return [
                [1] + Array("1|Toy Story (1995)|01-Jan-1995||http://x|0|0|0|1|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0\n".utf8),
                [3] + Array("movieId,title,genres\n1,\"American President, The (1995)\",Comedy|Drama\n".utf8),
                [2] + Array("1::Toy Story (1995)::Animation|Children's|Comedy\n".utf8),
            ]
        case .itemMatrix:
            let path = Self.file("seed.items", [])
            try? ItemMatrix.write(model: model, generation: 7, snapshotID: 2, to: path)
            let plain = FileManager.default.contents(atPath: path).map { Array($0) } ?? []
            let ranking = RankingModel.fit(
                users: [0, 0, 1, 2, 2], items: [0, 1, 2, 3, 4], ratings: [5, 4, 3, 5, 2], userCount: 3, itemCount: 5,
                parameters: RankingModel.Parameters(factors: 2)
            ).withPopularity(relevantCounts: [3, 1, 0, 2, 1])
            try? ItemMatrix.write(model: model, ranking: ranking, generation: 7, snapshotID: 2, to: path)
            var seeds = [plain, FileManager.default.contents(atPath: path).map { Array($0) } ?? []]
            for precision in [ItemPrecision.f16, .i8] {
                try? ItemMatrix.write(
                    model: model, ranking: ranking, precision: precision, generation: 7, snapshotID: 2, to: path)
                seeds.append(FileManager.default.contents(atPath: path).map { Array($0) } ?? [])
            }
            return seeds
        case .snapshotBlob:
            return [ModelBlob.encode(model).0]
        case .cooccurrence:
            let embedding = CooccurrenceEmbedding(
                factors: 3, itemCount: 4, exponent: 0.3, vectors: (0..<12).map { Float($0) / 12 })
            return [[2, 4, 0, 77] + embedding.encodedVectors()]
        }
    }

    /// A folder of this process for the files the readers need, removed when the process exits (a crashing input
    /// leaves it, with the files that crashed).
    static let folder: String = {
        let path = (NSTemporaryDirectory() as NSString).appendingPathComponent("mfrec-fuzz-\(getpid())")
        mkdir(path, 0o755)
        atexit { try? FileManager.default.removeItem(atPath: FuzzTarget.folder) }
        return path
    }()

    static func file(_ name: String, _ bytes: [UInt8]) -> String {
        let path = (folder as NSString).appendingPathComponent(name)
        _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
        return path
    }

    static func ratings(_ data: [UInt8]) {
        guard let control = data.first else { return }
        let body = Array(data.dropFirst())
        let formats: [RatingsFormat?] = [nil, .udata, .dat, .csv]
        let bytes = control & 4 != 0 ? gzip(body) : body
        let path = file("ratings.in", bytes)
        let scale: ClosedRange<Double>? = control & 8 != 0 ? 1...5 : nil
        guard let reader = try? RatingsReader(path: path, format: formats[Int(control & 3)], scale: scale) else {
            return
        }
        var lines = 0
        try? reader.read({ _ in lines += 1 }, onError: { _ in })
    }

    static func items(_ data: [UInt8]) {
        guard let control = data.first else { return }
        let formats: [ItemsFormat?] = [nil, .uitem, .dat, .csv]
        let reader = ItemsReader(path: file("items.in", Array(data.dropFirst())), format: formats[Int(control & 3)])
        var titles = 0
        try? reader.read { _ in titles += 1 }
    }

    static func itemMatrix(_ data: [UInt8]) {
        guard data.count >= 128 else { return }
        func field<T: FixedWidthInteger>(_ offset: Int, _: T.Type) -> T {
            LittleEndian.integer(T.self, in: data, at: offset) ?? 0
        }
        // Expect what the header claims, so the fuzzer gets past the shape check into the body.
        let count = Int(truncatingIfNeeded: field(16, UInt64.self)), k = Int(field(24, UInt32.self))
        let rankingCount = Int(truncatingIfNeeded: field(56, UInt64.self)), rankingK = Int(field(64, UInt32.self))
        guard count >= 0, count <= 1 << 20, (1...1024).contains(k), rankingCount >= 0, rankingCount <= 1 << 20,
            (0...1024).contains(rankingK)
        else { return }
        let path = file("matrix.items", data)
        let precision = ItemPrecision(code: field(72, UInt32.self)) ?? .f32
        guard
            let matrix = try? ItemMatrix.open(
                path: path, generation: field(32, UInt64.self), snapshotID: field(40, UInt64.self), factors: k,
                itemCount: count, ranking: ItemMatrix.Shape(itemCount: rankingCount, factors: rankingK),
                precision: precision)
        else { return }
        if count > 0 {
            _ = matrix.item(count - 1)
            _ = matrix.similar(to: 0, n: 3)
        }
        _ = matrix.topN(query: [Float](repeating: 0.5, count: matrix.stride), n: 3)
        if rankingK > 0 {
            let query = [Float](repeating: 0.5, count: rankingK)
            _ = matrix.rankingTopN(query: query, n: 3, excluded: [0], popularityWeight: 0.5)
            _ = matrix.rankingTopN(query: query, n: 3, excluded: [])
        }
    }

    static func snapshotBlob(_ data: [UInt8]) {
        guard let model = try? ModelBlob.decode(data) else { return }
        if model.userCount > 0 && model.itemCount > 0 {
            _ = model.predict(user: model.userCount - 1, item: model.itemCount - 1)
        }
    }

    static func cooccurrence(_ data: [UInt8]) {
        guard data.count >= 4 else { return }
        let factors = 1 + Int(data[0] % 64), itemCount = Int(data[1]) | Int(data[2] & 0x0F) << 8
        guard
            let embedding = CooccurrenceEmbedding(
                factors: factors, itemCount: itemCount, exponent: Double(data[3]) / 255,
                encoded: Array(data.dropFirst(4)))
        else { return }
        if itemCount > 0 { _ = embedding.topN(rated: [0, Int32(itemCount - 1)], n: 5, excluded: [0]) }
    }

    /// A gzip stream of `bytes`.
    static func gzip(_ bytes: [UInt8]) -> [UInt8] { Zlib.gzip(bytes) }
}
