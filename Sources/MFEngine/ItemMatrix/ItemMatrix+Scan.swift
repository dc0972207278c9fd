import CKernels
import Dispatch
import Foundation

extension ItemMatrix {
    // MARK: Reading

    /// Item i's vector (k values) and bias.
    /// - Parameter i: the item.
    /// - Returns: its vector and bias.
    public func item(_ i: Int) -> (vector: [Float], bias: Float) {
        precondition(i >= 0 && i < itemCount)
        return (rows.copy(from: i * stride, count: factors), biases[i])
    }

    /// Item i's ranking-model vector (`ranking.factors` values) and popularity prior.
    /// - Parameter i: the item.
    /// - Returns: its vector and prior.
    public func rankingItem(_ i: Int) -> (vector: [Float], popularity: Float) {
        precondition(i >= 0 && i < ranking.itemCount)
        return (rankingRows.copy(from: i * ranking.stride, count: ranking.factors), popularity[i])
    }

    /// A query vector for a user: p_u zero-padded to `stride` floats.
    /// - Parameter user: p_u (k floats).
    /// - Returns: `stride` floats.
    public func queryVector(_ user: ArraySlice<Float>) -> [Float] {
        precondition(user.count == factors)
        // Not generic: callers in other modules would get the unspecialized copy, which spent 11% of a
        // `recommend --all` run in metadata lookups.
        var q = [Float](repeating: 0, count: stride)
        for (f, v) in zip(0..<factors, user) { q[f] = v }
        return q
    }

    /// `queryVector(_:)` for an array.
    /// - Parameter user: p_u (k floats).
    /// - Returns: `stride` floats.
    public func queryVector(_ user: [Float]) -> [Float] { queryVector(user[...]) }

    /// The ranking model's n best items for a user vector, scanned from the mapped ranking section: what
    /// `RankingModel.topN(user:n:excluded:popularityWeight:)` gives for the model this section was written
    /// from, bit for bit (the same kernels; see `ItemScan`). With a reduced-precision scan copy and no
    /// popularity blend, the copy picks candidates that are then re-scored from the f32 rows (see
    /// `ItemPrecision`); a blended query reads the f32 rows.
    /// - Parameters:
    ///   - query: the user's ranking vector (`ranking.factors` floats).
    ///   - n: how many items.
    ///   - excluded: item ids left out.
    ///   - popularityWeight: w of the popularity blend; 0 for none.
    /// - Returns: (item, score) pairs, best first.
    public func rankingTopN(query: [Float], n: Int, excluded: Set<Int32>, popularityWeight: Float = 0) -> [(
        item: Int32, score: Float
    )] {
        rankingTopN(query: query, n: n, sortedExclusions: excluded.sorted(), popularityWeight: popularityWeight)
    }

    /// `rankingTopN(query:n:excluded:popularityWeight:)` with the excluded items already sorted ascending,
    /// without repeats (what a stored user's rated items come as: no set to build and sort per query).
    /// - Parameters:
    ///   - query: the user's ranking vector (`ranking.factors` floats).
    ///   - n: how many items.
    ///   - sortedExclusions: item ids left out, ascending, no repeats.
    ///   - popularityWeight: w of the popularity blend; 0 for none.
    ///   - ratingScores: the rating model's scores for the user (`FactorModel.itemScores`), for a blend with
    ///     them (nil: none; see `RankingModel.topN(user:n:excluded:popularityWeight:ratingScores:ratingWeight:)`).
    ///   - ratingWeight: w_r of that blend; a blended query reads the f32 rows.
    /// - Returns: (item, score) pairs, best first.
    public func rankingTopN(
        query: [Float], n: Int, sortedExclusions: [Int32], popularityWeight: Float = 0, ratingScores: [Float]? = nil,
        ratingWeight: Float = 0
    ) -> [(item: Int32, score: Float)] {
        precondition(ranking.factors > 0 && query.count == ranking.factors)
        precondition(
            zip(sortedExclusions, sortedExclusions.dropFirst()).allSatisfy { $0 < $1 },
            "ItemMatrix.rankingTopN: sortedExclusions must be ascending without repeats")
        let blendsRatings = ratingWeight > 0 && ratingScores != nil
        if let reduced = rankingScanRows, popularityWeight <= 0, !blendsRatings, n > 0 {
            var padded = query
            padded += [Float](repeating: 0, count: ranking.stride - ranking.factors)
            let candidates = reduced.topN(
                query: padded, range: 0..<ranking.itemCount, biases: nil, n: ItemPrecision.candidates(for: n),
                excluded: sortedExclusions[...])
            return rescore(candidates, n: n, rows: rankingRows, stride: ranking.stride) {
                BlockScan.dot(query, rows: rankingRows, at: Int($0) * ranking.stride, k: ranking.factors)
            }
        }
        return ItemScan.topN(
            rows: rankingRows, stride: ranking.stride, factors: ranking.factors, itemCount: ranking.itemCount,
            queries: [query], n: n, excluded: [sortedExclusions], prior: popularityWeight > 0 ? popularity : nil,
            priorWeights: [popularityWeight], ratingWeight: ratingWeight,
            ratingScores: ratingScores.map { scores in { _ in scores } })[0]
    }

    /// The kernel level of the reduced-precision scans on the calling thread for `precision` (0 portable, 1 AVX2
    /// with F16C, 2 AVX-512, with VNNI for i8).
    /// - Parameter precision: f16 or i8.
    /// - Returns: the level.
    public static func reducedKernelLevel(_ precision: ItemPrecision) -> Int {
        Int(mfrec_kernels_reduced_level(Int32(precision.bytesPerValue)))
    }

    /// The level of the block kernel `recommend --all` scores with on the calling thread (0 portable, 1 AVX2,
    /// 2 AVX-512; every level gives the same scores bit for bit).
    public static var blockKernelLevel: Int { Int(mfrec_kernels_block_level()) }

    /// Whether `recommend --all` finds its candidates with a BLAS sgemm (OpenBLAS found at run time, the block
    /// kernels below AVX-512; `MFREC_BLAS=off` turns it off). The lists are the same either way.
    public static var usesBLAS: Bool { BlockScan.usesGEMM(users: Int.max) }

    /// Users per blocked pass of `recommend --all` that suit this machine's kernels.
    public static var preferredBatch: Int { BlockScan.preferredBatch }

    /// Caps the reduced-precision and block kernel levels on the calling thread (2: whatever the CPU has).
    /// - Parameter level: the highest level to run.
    public static func capKernels(at level: Int) { mfrec_kernels_cap_level(Int32(level)) }

    /// Whether the scan uses the AVX2+FMA kernels on this CPU.
    public static var vectorized: Bool { mfrec_kernels_vectorized() != 0 }

    /// Forces the portable scoring and training kernels (true) or lets the detected AVX2+FMA ones run
    /// (false), on the calling thread only (scans it hands to other threads use the detected kernels).
    /// The environment variable `MFREC_PORTABLE_KERNELS=1` does the same for a whole process.
    /// - Parameter portable: whether to force the portable kernels.
    public static func usePortableKernels(_ portable: Bool) { mfrec_kernels_force_portable(portable ? 1 : 0) }

    /// The n best items for a query vector: one pass over the mapped rows, SIMD dot products fused with
    /// a bounded min-heap. `excluded` must be sorted ascending (the user's rated items).
    /// With `threads` > 1 each thread scans a slice with its own heap; the heaps are merged.
    /// - Complexity: O(items · (k + log n)).
    /// - Parameters:
    ///   - query: the query vector (`stride` floats).
    ///   - n: how many items.
    ///   - excluded: item ids left out, ascending.
    ///   - threads: threads of the scan.
    /// - Returns: (item, score) pairs, best first.
    /// With a reduced-precision scan copy (`precision` f16 or i8) the pass reads the copy and keeps
    /// `ItemPrecision.candidates(for: n)` candidates, which are re-scored from the f32 rows: the scores are
    /// the f32 ones, and the list is the f32 list unless rounding pushed one of its items out of the candidates.
    public func topN(query: [Float], n: Int, excluded: [Int32] = [], threads: Int = 1) -> [(item: Int32, score: Float)]
    {
        precondition(query.count == stride)
        let reduced = scanRows
        let keep = reduced == nil ? n : ItemPrecision.candidates(for: n)
        @Sendable func part(_ range: Range<Int>, _ excluded: ArraySlice<Int32>) -> TopN {
            // The f32 rows, or the scan copy's candidates: rows are scored a block at a time by the C kernels
            // into a buffer that stays in L1, and most offers to the heap stop at its threshold.
            guard let reduced else {
                return rows.topN(
                    query: query, range: range, k: stride, stride: stride, biases: biases, n: n, excluded: excluded)
            }
            return reduced.topN(query: query, range: range, biases: biases, n: keep, excluded: excluded)
        }
        let parts = scanParts(threads: threads)
        var merged: TopN
        if parts == 1 {
            merged = part(0..<itemCount, excluded[...])
        } else {
            let heaps = ThreadSlots<TopN>(count: parts)
            ScanPool.run(parts: parts) { p in
                let lo = itemCount * p / parts, hi = itemCount * (p + 1) / parts
                let first = lowerBound(excluded[...], Int32(lo)), last = lowerBound(excluded[...], Int32(hi))
                heaps.set(p, part(lo..<hi, excluded[first..<last]))
            }
            merged = TopN(capacity: keep)
            for p in 0..<parts { merged.merge(heaps.get(p)) }
        }
        guard reduced != nil else { return merged.sorted() }
        return rescore(merged, n: n, rows: rows, stride: stride) {
            BlockScan.dot(query, rows: rows, at: Int($0) * stride, k: stride) + biases[Int($0)]
        }
    }

    /// How many threads a one-user scan of the rating rows uses: a thread pays off past about 1 MB of rows to
    /// read (4,096 f32 rows of k = 64, or as many bytes of the scan copy; the parts are handed out by `ScanPool`).
    func scanParts(threads: Int) -> Int {
        let rowBytes = stride * (precision == .f32 ? 4 : precision.bytesPerValue)
        return max(1, min(threads, itemCount * rowBytes / (1 << 20)))
    }

    /// The n best of `candidates` by their exact score.
    /// Their f32 rows (in `rows`, `stride` floats apart) are all asked for before the first is read: a scan copy
    /// leaves them out of the cache, and one after another each would wait for memory.
    private func rescore(_ candidates: TopN, n: Int, rows: FloatRows, stride: Int, exact: (Int32) -> Float) -> [(
        item: Int32, score: Float
    )] {
        let sorted = candidates.sorted()
        for (item, _) in sorted { rows.prefetch(Int(item) * stride, count: stride) }
        var top = TopN(capacity: n)
        for (item, _) in sorted { top.offer(score: exact(item), item: item) }
        return top.sorted()
    }

    /// Top-n for several users in one blocked pass over the rows (`BlockScan`): a block of rows stays in
    /// cache while every user's scores for it are computed, and only scores at or above a user's heap
    /// threshold leave the kernel. The lists equal `topN(query:n:excluded:)`'s for each user, bit for bit.
    /// `excluded[u]` must be sorted ascending.
    /// - Parameters:
    ///   - queries: the query vectors.
    ///   - n: how many items each.
    ///   - excluded: per query, item ids left out.
    /// - Returns: one list per query.
    public func topNBatch(queries: [[Float]], n: Int, excluded: [[Int32]]) -> [[(item: Int32, score: Float)]] {
        precondition(excluded.count == queries.count && queries.allSatisfy { $0.count == stride })
        return BlockScan.topN(
            queries: queries, k: stride, rows: rows, stride: stride, count: itemCount, bias: biases,
            scales: [Float](repeating: 1, count: queries.count), excluded: excluded, n: n
        ).map { $0.sorted() }
    }

    /// The n items most similar to `item` by cosine of their vectors (the item itself excluded).
    /// - Parameters:
    ///   - item: the item.
    ///   - n: how many.
    /// - Returns: (item, cosine) pairs, most similar first.
    public func similar(to item: Int, n: Int) -> [(item: Int32, score: Float)] {
        precondition(item >= 0 && item < itemCount)
        var query = [Float](repeating: 0, count: stride)
        var norm: Float = 0
        for f in 0..<factors {
            query[f] = rows[item * stride + f]
            norm += query[f] * query[f]
        }
        guard norm > 0 else { return [] }
        let inv = 1 / norm.squareRoot()
        for f in 0..<factors { query[f] *= inv }
        var top = TopN(capacity: n)
        let chunks = stride / 16
        for i in 0..<itemCount where i != item {
            let n2 = rows.selfDot16(at: i * stride, chunks: chunks)
            guard n2 > 0 else { continue }
            top.offer(score: rows.dot16(query, at: i * stride, chunks: chunks) / n2.squareRoot(), item: Int32(i))
        }
        return top.sorted()
    }
}

/// The first index of an ascending array or slice whose element is ≥ value.
func lowerBound(_ sorted: ArraySlice<Int32>, _ value: Int32) -> Int {
    var lo = sorted.startIndex, hi = sorted.endIndex
    while lo < hi {
        let mid = (lo + hi) / 2
        if sorted[mid] < value { lo = mid + 1 } else { hi = mid }
    }
    return lo
}
