import ArgumentParser
import CKernels
import Dispatch
import Foundation
import MFEngine
import MFRec

struct QueryBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "query",
        abstract:
            "Top-n latency over the mapped item matrix next to a plain sequential read of the same bytes, batch "
            + "throughput, and whole-process time."
    )

    @Option(help: "Items of the large single-query matrix.") var largeItems = 1_000_000
    @Option(help: "Runs of each scan measurement (ratios are taken within a run; their medians are printed).")
    var runs = 3
    @Option(
        help: ArgumentHelp(
            "Only measure recall@10 of f16 and i8 scan copies of this trained database's models against their f32 "
                + "lists (a seeded sample of its users; the database is opened read-only).",
            valueName: "path")) var trainedDb: String?
    @Option(help: "Users sampled for --trained-db.") var recallUsers = 2_000
    @Option(
        help: ArgumentHelp(
            "Cap the scan kernels of this process's main thread at a level (0 portable, 1 AVX2/F16C, 2 AVX-512): "
                + "the one-thread figures then show that level's kernels (scans handed to other threads keep the "
                + "detected ones).", valueName: "level")) var kernelLevel: Int?
    @OptionGroup var scale: Scale

    func validate() throws {
        guard runs >= 1 else { throw ValidationError("--runs must be at least 1") }
        guard recallUsers >= 1 else { throw ValidationError("--recall-users must be at least 1") }
        if let kernelLevel, !(0...2).contains(kernelLevel) {
            throw ValidationError("--kernel-level must be 0, 1 or 2")
        }
        if let trainedDb, !FileManager.default.fileExists(atPath: trainedDb) {
            throw ValidationError("--trained-db: no such file: \(trainedDb)")
        }
    }

    func run() throws {
        if let kernelLevel {
            ItemMatrix.capKernels(at: kernelLevel)
            print(
                "(kernels capped at level \(kernelLevel) on the main thread: f16 runs level "
                    + "\(ItemMatrix.reducedKernelLevel(.f16)), i8 level \(ItemMatrix.reducedKernelLevel(.i8)))")
        }
        let dir = try scale.makeFolder()
        defer { scale.removeFolder(dir) }
        if let trainedDb {
            let rec = try Recommender(path: trainedDb, mode: .read)
            let engine = try rec.queries()
            let store = try Store(path: rec.path, readOnly: true)
            let model = try rec.loadModel().1
            var users = Array(0..<model.userCount).filter { model.hasUser($0) }
            var rng = SeededGenerator(seed: 7)
            users.shuffle(using: &rng)
            users = Array(users.prefix(recallUsers)).sorted()
            section(
                "\(trainedDb): \(model.itemCount) items × k=\(model.factors), \(users.count) sampled users of "
                    + "\(model.userCount), rated items excluded")
            let exclusions = try users.map { try store.ratings(ofUser: $0).map { Int32($0.item) } }
            try reducedRecall(
                rec: rec, model: model, exact: try engine.matrix(), users: users, exclusions: exclusions, dir: dir)
            return
        }

        if FileManager.default.fileExists(atPath: sharedML100K) {
            let db = (dir as NSString).appendingPathComponent("ml.db")
            guard try runChild(mfrecPath, ["ingest", sharedML100K, "--db", db]).status == 0,
                try runChild(mfrecPath, ["train", "--db", db, "--factors", "20", "--quiet"]).status == 0
            else {
                throw BenchError("ingest/train failed")
            }
            let rec = try Recommender(path: db)
            let engine = try rec.queries()
            let store = try Store(path: rec.path, readOnly: true)
            let keys = try store.userKeys()
            section(
                "ML-100K: \(try engine.matrix().itemCount) items × k=\(try engine.matrix().factors), top-10, one thread"
            )
            var full: [Double] = [], kernel: [Double] = []
            let model = try rec.loadModel().1
            let exclusions = try (0..<keys.count).map { try store.ratings(ofUser: $0).map { Int32($0.item) } }
            for _ in 0..<5 {
                for (u, key) in keys.enumerated() {
                    full.append(try time { _ = try engine.recommend(user: key, n: 10) }.1)
                    let matrix = try engine.matrix()
                    let q = matrix.queryVector(model.userVector(u))
                    kernel.append(time { _ = matrix.topN(query: q, n: 10, excluded: exclusions[u]) }.1)
                }
            }
            full.sort()
            kernel.sort()
            print(
                "scan + heap only:                p50 \(fmt(percentile(kernel, 0.5) * 1e6, 1)) µs, p99 "
                    + "\(fmt(percentile(kernel, 0.99) * 1e6, 1)) µs"
            )
            print(
                "recommend() incl. SQLite look-ups of rated items and titles: p50 "
                    + "\(fmt(percentile(full, 0.5) * 1e6, 1)) µs, p99 \(fmt(percentile(full, 0.99) * 1e6, 1)) µs"
            )
            try reducedRecall(
                rec: rec, model: model, exact: try engine.matrix(), users: Array(0..<keys.count),
                exclusions: exclusions, dir: dir)
            let bound = try MappedFile(path: engine.itemMatrixPath)
            var reads = (0..<200).map { _ in time { _ = bound.sequentialRead() }.1 }
            reads.sort()
            print("sequential read of the same bytes: p50 \(fmt(percentile(reads, 0.5) * 1e6, 1)) µs")
            let out = (dir as NSString).appendingPathComponent("all.csv")
            let (users, seconds) = try time { try engine.recommendAll(n: 10, to: out) }
            print(
                "recommend --all (top-10, blocks of 64 users, 2 threads): \(users) users in \(fmt(seconds * 1e3, 1)) ms "
                    + "= \(rate(Double(users), seconds)) users/s"
            )
            var process: [Double] = []
            for _ in 0..<20 {
                process.append(try runChild(mfrecPath, ["recommend", "1", "-n", "5", "--db", db]).seconds)
            }
            process.sort()
            print(
                "whole process `mfrec recommend 1 -n 5` (start, open, map, answer): p50 "
                    + "\(fmt(percentile(process, 0.5) * 1e3, 1)) ms, max \(fmt(process.last! * 1e3, 1)) ms"
            )
        }

        for (items, users) in [(59_047, 162_541), (largeItems, 0)] {
            let model = syntheticModel(users: max(users, 64), items: items, k: 64)
            // One file per scan precision; the f32 file's read is every precision's baseline.
            let matrices = try ItemPrecision.allCases.map { precision in
                let path = (dir as NSString).appendingPathComponent("m\(items)-\(precision).items")
                try ItemMatrix.write(model: model, precision: precision, generation: 1, snapshotID: 1, to: path)
                return try ItemMatrix.open(
                    path: path, generation: 1, snapshotID: 1, factors: 64, itemCount: items, precision: precision)
            }
            let matrix = matrices[0]
            let bound = try MappedFile(path: (dir as NSString).appendingPathComponent("m\(items)-f32.items"))
            let copies = KernelCopies(model: model)
            let mb = Double(items * matrix.stride * 4) / 1e6
            section(
                "\(items) items × k=64 (\(fmt(mb, 0)) MB of f32 rows mapped), top-10; f16 and i8 scan copies "
                    + "(candidates re-scored in f32)")
            print("load average \(loadAverage()); \(runs) run\(runs > 1 ? "s" : ""), each after a warm-up")
            for threads in [1, 2] {
                var results: [ScanRun] = []
                for run in 0..<runs {
                    let result = measureScans(
                        matrices: matrices, bound: bound, model: model, copies: copies, threads: threads)
                    results.append(result)
                    print(
                        "\(threads) thread\(threads > 1 ? "s" : " ") run \(run + 1): f32 read p50 "
                            + "\(fmt(result.read * 1e3, 3)) ms (\(fmt(mb / 1e3 / result.read, 1)) GB/s); "
                            + result.scans.enumerated().map { p, seconds in
                                "\(ItemPrecision.allCases[p].rawValue) \(fmt(seconds * 1e3, 3)) ms "
                                    + "(\(fmt(seconds / result.reference))×)"
                            }.joined(separator: ", ")
                            + "; one file at a time: read \(fmt(result.readAlone * 1e3, 3)) ms (half of it "
                            + "\(fmt(result.bytesAlone[1] * 1e3, 3)), a quarter \(fmt(result.bytesAlone[2] * 1e3, 3))), "
                            + result.alone.enumerated().map { p, seconds in
                                "\(ItemPrecision.allCases[p].rawValue) \(fmt(seconds * 1e3, 3)) ms "
                                    + "(\(fmt(seconds / result.referenceAlone))×)"
                            }.joined(separator: ", "))
                }
                // Each run's ratios are taken within the run, against reading the f32 matrix (`ScanRun.reference`: the
                // faster of the plain read and the f32 scan); the medians are of those ratios.
                func median(_ values: [Double]) -> Double { percentile(values.sorted(), 0.5) }
                for (p, precision) in ItemPrecision.allCases.enumerated() {
                    let target = [ItemPrecision.f32: "", .f16: " (target ≤ 0.60)", .i8: " (target ≤ 0.35)"][precision]!
                    let ratios = results.map { $0.scans[p] / $0.reference }
                    let alone = results.map { $0.alone[p] / $0.referenceAlone }
                    let floor = results.map { $0.bytesAlone[p] / $0.referenceAlone }
                    print(
                        "  \(threads) thread\(threads > 1 ? "s" : ""), \(precision.rawValue) scan: p50 "
                            + "\(fmt(median(results.map { $0.scans[p] }) * 1e3, 3)) ms, p99 "
                            + "\(fmt(median(results.map { $0.p99[p] }) * 1e3, 3)) ms; ratio to reading the f32 matrix "
                            + "\(fmt(median(ratios)))× (runs \(fmt(ratios.min()!))–\(fmt(ratios.max()!)))\(target); "
                            + "one file at a time \(fmt(median(alone)))× (\(fmt(alone.min()!))–\(fmt(alone.max()!)))"
                            + (p == 0
                                ? ""
                                : " (reading the copy's bytes alone: \(fmt(median(floor)))×, "
                                    + "\(fmt(floor.min()!))–\(fmt(floor.max()!)))")
                            + (p == 0
                                ? "" : "; recall@10 vs f32 \(fmt(results.map { $0.recall[p] }.min()!, 4))"))
                }
                let arithmetic = [ItemPrecision.f16, .i8].map { precision in
                    let p = ItemPrecision.allCases.firstIndex(of: precision)!
                    let streamed = results.map { $0.arithmetic[p].streamed / $0.referenceAlone }
                    let cached = results.map { $0.arithmetic[p].cached / $0.referenceAlone }
                    return "\(precision.rawValue) \(fmt(median(streamed)))× (\(fmt(streamed.min()!))–"
                        + "\(fmt(streamed.max()!))) over the whole copy, \(fmt(median(cached)))× "
                        + "(\(fmt(cached.min()!))–\(fmt(cached.max()!))) with its rows in L1/L2"
                }
                print(
                    "  \(threads) thread\(threads > 1 ? "s" : ""), the scan kernels alone (no selection, heap, merge "
                        + "or re-scoring), as ratios to the f32 read one file at a time: "
                        + arithmetic.joined(separator: "; "))
            }
            print("load average after: \(loadAverage())")
            if users > 0 {
                // The co-occurrence ranking of light users: an in-memory items × 32 embedding.
                var rng = SeededGenerator(seed: 5)
                let factors = CooccurrenceEmbedding.defaultFactors
                let embedding = CooccurrenceEmbedding(
                    factors: factors, itemCount: items, exponent: CooccurrenceEmbedding.defaultExponent,
                    vectors: (0..<(items * factors)).map { _ in Float(rng.nextGaussian()) })
                var lat: [Double] = [], reads: [Double] = []
                for r in 0..<300 {
                    let rated = (0..<10).map { Int32((r * 7919 + $0 * 104_729) % items) }
                    let q = embedding.userVector(ratedItems: rated)
                    lat.append(time { _ = embedding.topN(user: q, n: 10, excluded: Set(rated)) }.1)
                    if r % 3 == 0 {
                        reads.append(time { _ = embedding.vectors.withUnsafeBufferPointer { sumFloats($0) } }.1)
                    }
                }
                lat.sort()
                reads.sort()
                print(
                    "co-occurrence top-10 (\(items) × \(factors), in memory, 1 thread): p50 "
                        + "\(fmt(percentile(lat, 0.5) * 1e3, 3)) ms, "
                        + "p99 \(fmt(percentile(lat, 0.99) * 1e3, 3)) ms; summing the same floats p50 "
                        + "\(fmt(percentile(reads, 0.5) * 1e3, 3)) ms; "
                        + "ratio \(fmt(percentile(lat, 0.5) / percentile(reads, 0.5)))×")
                // Batch throughput over a sample of users, next to one query per user.
                let sample = 4_096
                let queries = (0..<sample).map { matrix.queryVector(model.userVector($0 % model.userCount)) }
                let (_, single) = time { for q in queries.prefix(512) { _ = matrix.topN(query: q, n: 10) } }
                let (_, batched) = time {
                    DispatchQueue.concurrentPerform(iterations: 2) { t in
                        var b = t * 8
                        while b < sample {
                            _ = matrix.topNBatch(
                                queries: Array(queries[b..<min(b + 8, sample)]), n: 10,
                                excluded: Array(repeating: [], count: 8))
                            b += 16
                        }
                    }
                }
                let batchRate = Double(sample) / batched, singleRate = 512 / single
                print(
                    "recommend --all kernel: one query per user \(rate(singleRate, 1)) users/s (1 thread); batches "
                        + "of 8 on 2 threads \(rate(batchRate, 1)) users/s "
                        + "(\(fmt(batchRate / singleRate, 1))×); all \(users) users ≈ "
                        + "\(fmt(Double(users) / batchRate, 1)) s"
                )
            }
        }
    }

    /// One run's p50s: the three scans and the f32 read taking turns (the order of the precisions rotates, so
    /// none always runs after the same one), then each file alone after a warm-up (as a process serving one item
    /// matrix finds its cache: taking turns, on a large L3 each finds the cache as the others left it).
    struct ScanRun {
        var read: Double
        var scans: [Double]
        var p99: [Double]
        var recall: [Double]
        var readAlone: Double
        var alone: [Double]
        /// Each file alone: reading as many bytes of the f32 file as each precision's scan copy holds (f32: all of
        /// it; f16 half, i8 a quarter): the floor a scan of that copy cannot beat, however little arithmetic it does.
        var bytesAlone: [Double]
        /// Per precision (f32 unused), the reduced kernels alone (`KernelCopies`): streamed over the whole copy, and
        /// over rows already in L1/L2.
        var arithmetic: [(streamed: Double, cached: Double)]
        /// The time of reading the f32 matrix that the reduced scans are compared with: the faster of the plain
        /// read and the f32 scan (which, on a matrix in memory, can outrun the read).
        var reference: Double { min(read, scans[0]) }
        var referenceAlone: Double { min(readAlone, alone[0]) }
    }

    func measureScans(
        matrices: [ItemMatrix], bound: MappedFile, model: FactorModel, copies: KernelCopies, threads: Int
    ) -> ScanRun {
        let matrix = matrices[0], large = matrix.itemCount >= 1_000_000
        var lat = [[Double]](repeating: [], count: matrices.count), reads: [Double] = []
        var hits = [Int](repeating: 0, count: matrices.count), wanted = 0
        let rounds = large ? 30 : 300
        for r in 0..<(rounds + rounds / 10) {
            let q = matrix.queryVector(model.userVector(r % 64))
            var lists = [[Int32]](repeating: [], count: matrices.count)
            for step in 0..<matrices.count {
                let p = (step + r) % matrices.count
                let (list, seconds) = time { matrices[p].topN(query: q, n: 10, threads: threads) }
                if r >= rounds / 10 { lat[p].append(seconds) }  // the first tenth warms up
                lists[p] = list.map(\.item)
            }
            for p in 1..<matrices.count { hits[p] += Set(lists[p]).intersection(lists[0]).count }
            wanted += lists[0].count
            let read = time { _ = bound.sequentialRead(threads: threads) }.1
            if r >= rounds / 10 { reads.append(read) }
        }
        reads.sort()
        for p in lat.indices { lat[p].sort() }
        let aloneRounds = large ? 20 : 200
        func alone(_ body: (Int) -> Void) -> Double {
            for r in 0..<max(5, aloneRounds / 10) { body(r) }  // warm-up
            var samples: [Double] = []
            for r in 0..<aloneRounds { samples.append(time { body(r) }.1) }
            samples.sort()
            return percentile(samples, 0.5)
        }
        let queries = (0..<64).map { matrix.queryVector(model.userVector($0)) }
        let readAlone = alone { _ in _ = bound.sequentialRead(threads: threads) }
        let bytesAlone = ItemPrecision.allCases.map { precision in
            precision == .f32
                ? readAlone
                : alone { _ in
                    _ = bound.sequentialRead(threads: threads, fraction: Double(precision.bytesPerValue) / 4)
                }
        }
        let arithmetic = ItemPrecision.allCases.map { precision in
            precision == .f32
                ? (streamed: 0, cached: 0)
                : (
                    streamed: alone { r in copies.score(precision, query: queries[r % 64], threads: threads) },
                    cached: alone { r in
                        copies.score(precision, query: queries[r % 64], threads: threads, cached: true)
                    }
                )
        }
        return ScanRun(
            read: percentile(reads, 0.5), scans: lat.map { percentile($0, 0.5) }, p99: lat.map { percentile($0, 0.99) },
            recall: hits.map { Double($0) / Double(max(wanted, 1)) }, readAlone: readAlone,
            alone: matrices.map { m in alone { r in _ = m.topN(query: queries[r % 64], n: 10, threads: threads) } },
            bytesAlone: bytesAlone, arithmetic: arithmetic)
    }

    /// Recall@10 of the f16 and i8 scan copies against the f32 lists of a trained model, for `users` (user ids,
    /// each with the rated items `exclusions` gives, excluded): the rating model's lists and the ranking model's.
    func reducedRecall(
        rec: Recommender, model: FactorModel, exact: ItemMatrix, users: [Int], exclusions: [[Int32]], dir: String
    ) throws {
        precondition(users.count == exclusions.count)
        let state = try rec.liveState()
        let store = try Store(path: rec.path, readOnly: true)
        let ranking = state.ranking?.model
        let ratings = try users.map { u in
            try store.ratings(ofUser: u).map { (item: Int32($0.item), rating: Float($0.rating)) }
        }
        for precision in [ItemPrecision.f16, .i8] {
            let path = (dir as NSString).appendingPathComponent("ml-\(precision).items")
            try ItemMatrix.write(
                model: model, ranking: ranking, precision: precision, generation: 1, snapshotID: 1, to: path)
            let shape = ranking.map { ItemMatrix.Shape(itemCount: $0.itemCount, factors: $0.factors) } ?? .none
            let reduced = try ItemMatrix.open(
                path: path, generation: 1, snapshotID: 1, factors: model.factors, itemCount: model.itemCount,
                ranking: shape, precision: precision)
            var hits = (rating: 0, ranking: 0), wanted = (rating: 0, ranking: 0)
            for (j, user) in users.enumerated() {
                let q = exact.queryVector(model.userVector(user))
                let e = exact.topN(query: q, n: 10, excluded: exclusions[j]).map(\.item)
                hits.rating +=
                    Set(reduced.topN(query: q, n: 10, excluded: exclusions[j]).map(\.item))
                    .intersection(e).count
                wanted.rating += e.count
                guard let ranking else { continue }
                let v = ranking.userVector(ratings: ratings[j])
                let excluded = Set(exclusions[j])
                let re = exact.rankingTopN(query: v, n: 10, excluded: excluded).map(\.item)
                hits.ranking +=
                    Set(reduced.rankingTopN(query: v, n: 10, excluded: excluded).map(\.item))
                    .intersection(re).count
                wanted.ranking += re.count
            }
            print(
                "\(precision.rawValue) scan copy, recall@10 against the f32 lists (\(users.count) users): "
                    + "rating model \(fmt(Double(hits.rating) / Double(max(wanted.rating, 1)), 4)), ranking model "
                    + (ranking == nil
                        ? "none" : fmt(Double(hits.ranking) / Double(max(wanted.ranking, 1)), 4)))
        }
    }

    func syntheticModel(users: Int, items: Int, k: Int) -> FactorModel {
        var rng = SeededGenerator(seed: 1)
        var m = FactorModel(
            factors: k, userCount: users, itemCount: items, useBias: true, globalMean: 3.5, scale: 1...5)
        for j in 0..<m.userFactors.count where j % m.stride < k { m.userFactors[j] = rng.nextFloat() - 0.5 }
        for j in 0..<m.itemFactors.count where j % m.stride < k { m.itemFactors[j] = rng.nextFloat() - 0.5 }
        for i in 0..<items { m.itemBias[i] = rng.nextFloat() * 0.2 }
        return m
    }
}

/// A file mapped read-only by the benchmark itself: the memory-bandwidth bound of a scan is one read of
/// every mapped byte (no kernel, no heap).
final class MappedFile: @unchecked Sendable {
    let base: UnsafeRawPointer
    let size: Int

    init(path: String) throws {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw BenchError("cannot open \(path)") }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_size > 0 else { throw BenchError("cannot stat \(path)") }
        size = Int(info.st_size)
        guard let p = mmap(nil, size, PROT_READ, MAP_SHARED, fd, 0), p != MAP_FAILED else {
            throw BenchError("cannot map \(path)")
        }
        base = UnsafeRawPointer(p)
    }

    deinit { munmap(UnsafeMutableRawPointer(mutating: base), size) }

    /// Sums every float of the file on `threads` threads.
    func sequentialRead(threads: Int = 1, fraction: Double = 1) -> Float {
        let total = Int(Double(size / 64) * fraction) * 16
        let parts = max(1, threads)
        let sums = ThreadSlots<Float>(count: parts)
        let work = { @Sendable (p: Int) in
            let lo = total * p / parts / 16 * 16, hi = p == parts - 1 ? total : total * (p + 1) / parts / 16 * 16
            // A read with nothing else to do (AVX2 loads, independent sums, software prefetch): `mfrec_read_floats`.
            let floats = self.base.advanced(by: lo * 4).assumingMemoryBound(to: Float.self)
            sums.set(p, mfrec_read_floats(floats, hi - lo))
        }
        // Split as the scans are (`ScanPool`), so the read pays the same hand-off.
        ScanPool.run(parts: parts, work)
        return (0..<parts).reduce(0) { $0 + sums.get($1) }
    }
}

/// A read of every float (`mfrec_read_floats`, the bound the scans are compared with) that the compiler cannot drop.
@inline(never)
func sumFloats(_ values: UnsafeBufferPointer<Float>) -> Float {
    guard let base = values.baseAddress else { return 0 }
    return mfrec_read_floats(base, values.count)
}

/// Copies of a model's item rows in the scan copies' encodings (f16; i8 with a scale per row), in the bench's own
/// arrays, for timing the reduced-precision kernels alone: the arithmetic a scan of that copy does, without the
/// selection, heap, merge and f32 re-scoring around it. The values are the ones the item matrix file stores (half
/// floats; `ItemPrecision.quantize` for the bytes and their scale); only the time is used.
struct KernelCopies: @unchecked Sendable {
    let rows: Int
    let stride: Int
    let halves: [UInt16]
    let bytes: [Int8]
    let scales: [Float]
    let biases: [Float]

    init(model: FactorModel) {
        rows = model.itemCount
        stride = model.stride
        halves = model.itemFactors.map { Float16($0).bitPattern }
        var bytes = [Int8](repeating: 0, count: model.itemFactors.count)
        var scales = [Float](repeating: 0, count: rows)
        for r in 0..<rows {
            let (q, scale) = ItemPrecision.quantize(model.itemFactors[(r * stride)..<((r + 1) * stride)])
            bytes.replaceSubrange((r * stride)..<((r + 1) * stride), with: q)
            scales[r] = scale
        }
        self.bytes = bytes
        self.scales = scales
        biases = model.itemBias
    }

    /// Scores every row for `query` with the `precision` kernel, in blocks of 1,024 rows into a buffer per part, the
    /// rows split over `threads` parts as a scan splits them (`ScanPool`). `cached`: each block scores the part's
    /// first 1,024 rows again (as many rows in all, in L1/L2: the arithmetic with no memory traffic).
    func score(_ precision: ItemPrecision, query: [Float], threads: Int, cached: Bool = false) {
        precondition(precision != .f32 && query.count == stride)
        let (q8, qscale) = ItemPrecision.quantize(query)
        let parts = max(1, threads)
        ScanPool.run(parts: parts) { p in
            let lo = rows * p / parts, hi = rows * (p + 1) / parts
            let out = UnsafeMutablePointer<Float>.allocate(capacity: 1024)
            defer { out.deallocate() }
            var start = lo
            while start < hi {
                let count = min(1024, hi - start), first = cached ? lo : start
                precondition(first + count <= rows)
                biases.withUnsafeBufferPointer { bias in
                    if precision == .f16 {
                        halves.withUnsafeBufferPointer { h in
                            mfrec_scores_f16(
                                query, h.baseAddress! + first * stride, stride, count, bias.baseAddress! + first, out)
                        }
                    } else {
                        bytes.withUnsafeBufferPointer { b in
                            scales.withUnsafeBufferPointer { sc in
                                mfrec_scores_i8(
                                    q8, qscale, b.baseAddress! + first * stride, sc.baseAddress! + first, stride,
                                    count, bias.baseAddress! + first, out)
                            }
                        }
                    }
                }
                start += count
            }
        }
    }
}
