import CKernels
import Dispatch

// The one file of MFEngine, besides the item matrix file type, that reaches memory through pointers: every
// loop that hands Swift arrays (or the mapped item file, through `FloatRows`) to the C kernels in `CKernels`
// or walks them through raw pointers for speed. Each entry point checks its offsets and lengths against the
// memory it was given before any pointer is formed; callers elsewhere in the module pass arrays and
// `FloatRows` values and never see a pointer.

// MARK: - FloatRows

/// A read-only run of floats that the kernels scan: an array's storage lent for the length of a closure
/// (`FloatRows.with`), or an item matrix's mapping (`ItemMatrix.rows`, `.biases`).
///
/// Invariant: `base` points to `count` initialized floats that stay valid and unwritten through this
/// view while it is used (the closure's duration, or the life of the `ItemMatrix` that owns the mapping;
/// the matrix's in-place writers go through the file, and readers check the generation around a scan).
/// It is `Sendable` because it only reads. Every method checks its range against `count`.
struct FloatRows: @unchecked Sendable {
    private let base: UnsafePointer<Float>
    /// Floats in view.
    let count: Int

    /// A view of `count` floats at `base` (the item matrix's mapping; see the invariant).
    init(base: UnsafeRawPointer, count: Int) {
        self.base = base.assumingMemoryBound(to: Float.self)
        self.count = count
    }

    private init(pointer: UnsafePointer<Float>, count: Int) {
        self.base = pointer
        self.count = count
    }

    /// Calls `body` with a view of `array`, valid only during the call.
    static func with<R>(_ array: [Float], _ body: (FloatRows) throws -> R) rethrows -> R {
        try array.withUnsafeBufferPointer { buffer in
            // An empty array may have no storage; a view of nothing needs no address.
            guard let address = buffer.baseAddress else {
                return try [Float](repeating: 0, count: 1).withUnsafeBufferPointer {
                    try body(FloatRows(pointer: $0.baseAddress!, count: 0))
                }
            }
            return try body(FloatRows(pointer: address, count: buffer.count))
        }
    }

    /// The float at `index`.
    subscript(index: Int) -> Float {
        precondition(index >= 0 && index < count, "FloatRows: index \(index) outside 0..<\(count)")
        return base[index]
    }

    /// `length` floats from `offset`, copied out.
    func copy(from offset: Int, count length: Int) -> [Float] {
        Array(UnsafeBufferPointer(start: pointer(offset, length), count: length))
    }

    /// Asks for the cache lines of `length` floats at `offset` (a hint: no effect on any result), so that rows
    /// read one after another in an order the hardware cannot predict are fetched at the same time.
    func prefetch(_ offset: Int, count length: Int) {
        let start = pointer(offset, length)
        mfrec_prefetch_rows(start, start, length * 4)
    }

    /// A pointer to `length` floats at `offset`, after checking they are in view.
    fileprivate func pointer(_ offset: Int, _ length: Int) -> UnsafePointer<Float> {
        precondition(
            offset >= 0 && length >= 0 && offset <= count - length,
            "FloatRows: \(length) floats at \(offset) outside 0..<\(count)")
        return base + offset
    }

    /// A pointer to `rows` rows of `width` floats, `stride` apart, from row `first` (the last row needs only
    /// its first `width` floats in view).
    fileprivate func rows(_ first: Int, _ rows: Int, width: Int, stride: Int) -> UnsafePointer<Float> {
        precondition(first >= 0 && rows >= 0 && width >= 0 && width <= stride, "FloatRows: bad row range")
        guard rows > 0 else { return pointer(0, 0) }
        _ = pointer((first + rows - 1) * stride, width)
        return pointer(first * stride, 0)
    }
}

// MARK: - ReducedRows

/// A read-only view of an item matrix's reduced-precision scan copy (`ItemPrecision.f16` or `.i8`): `rowCount`
/// rows of `stride` values, and for i8 one scale per row. Same invariant as `FloatRows` (the mapping outlives
/// the view); `scores` checks its range before it forms a pointer.
struct ReducedRows: @unchecked Sendable {
    private let rows: UnsafeRawPointer
    private let scales: UnsafePointer<Float>
    /// f16 or i8.
    let precision: ItemPrecision
    /// Rows in view.
    let rowCount: Int
    /// Values per row (a multiple of 16).
    let stride: Int

    /// A view of `rowCount` rows at `rows` (and, for i8, `rowCount` scales at `scales`) in the mapping.
    init(rows: UnsafeRawPointer, scales: UnsafeRawPointer, precision: ItemPrecision, rowCount: Int, stride: Int) {
        precondition(precision != .f32 && stride % 16 == 0)
        self.rows = rows
        self.scales = scales.assumingMemoryBound(to: Float.self)
        self.precision = precision
        self.rowCount = rowCount
        self.stride = stride
    }

    /// out[r] = query · row(start + r) (times the row's scale for i8) + biases[start + r] (no bias term when
    /// `biases` is nil) for `length` rows: the approximate scores candidates are picked by.
    func scores(query: [Float], start: Int, length: Int, biases: FloatRows?, into out: inout [Float]) {
        precondition(out.count >= length)
        let prepared = prepare(query)
        out.withUnsafeMutableBufferPointer { o in
            score(prepared, start: start, length: length, biases: biases, into: o.baseAddress!)
        }
    }

    /// The n best rows of `range` by the reduced scores (plus `biases`), `excluded` (ascending) left out.
    func topN(query: [Float], range: Range<Int>, biases: FloatRows?, n: Int, excluded: ArraySlice<Int32>) -> TopN {
        precondition(range.lowerBound >= 0 && range.upperBound <= rowCount, "ReducedRows: rows out of range")
        let prepared = prepare(query)
        return selectTop(range: range, n: n, excluded: excluded) { start, length, out in
            score(prepared, start: start, length: length, biases: biases, into: out)
        }
    }

    /// A query as the kernel takes it: floats for f16; for i8 signed bytes and their scale.
    private struct Prepared {
        var floats: [Float]
        var bytes: [Int8]
        var scale: Float
    }

    private func prepare(_ query: [Float]) -> Prepared {
        precondition(query.count >= stride)
        guard precision == .i8 else { return Prepared(floats: query, bytes: [], scale: 1) }
        // The query in signed bytes too, so the kernel's dot product is integer (VNNI where present).
        let (bytes, scale) = ItemPrecision.quantize(query.prefix(stride))
        return Prepared(floats: [], bytes: bytes, scale: scale)
    }

    private func score(
        _ query: Prepared, start: Int, length: Int, biases: FloatRows?, into out: UnsafeMutablePointer<Float>
    ) {
        precondition(start >= 0 && length >= 0 && start <= rowCount - length, "ReducedRows: rows out of range")
        guard length > 0 else { return }
        let biasPointer = biases?.pointer(start, length)
        switch precision {
        case .f16:
            let base = (rows + start * stride * 2).assumingMemoryBound(to: UInt16.self)
            query.floats.withUnsafeBufferPointer {
                mfrec_scores_f16($0.baseAddress!, base, stride, length, biasPointer, out)
            }
        case .i8:
            let base = (rows + start * stride).assumingMemoryBound(to: Int8.self)
            query.bytes.withUnsafeBufferPointer {
                mfrec_scores_i8($0.baseAddress!, query.scale, base, scales + start, stride, length, biasPointer, out)
            }
        case .f32:
            preconditionFailure("ReducedRows: no f32 copy")
        }
    }
}

/// Rows scored a block at a time by `score(start, length, out)` into a buffer that stays in L1, then offered to a
/// bounded heap: a row costs one comparison with the heap's threshold unless it beats it, and only then is it
/// looked up in `excluded` (ascending), by a cursor that only moves forward (rows come in ascending order), so the
/// lookups of a whole scan cost one pass over `excluded` instead of a binary search per candidate.
private func selectTop(
    range: Range<Int>, n: Int, excluded: ArraySlice<Int32>,
    score: (_ start: Int, _ length: Int, _ out: UnsafeMutablePointer<Float>) -> Void
) -> TopN {
    let largest = 1024
    // Until the heap has a threshold every row is offered to it: the first blocks are small (from 64 rows, doubling
    // up to 1024), so that a thousand rows are not offered before the threshold can turn most of them away.
    var block = min(largest, max(64, 4 * n))
    var top = TopN(capacity: n)
    let scores = UnsafeMutableBufferPointer<Float>.allocate(capacity: largest)
    let found = UnsafeMutableBufferPointer<UInt32>.allocate(capacity: largest)
    defer {
        scores.deallocate()
        found.deallocate()
    }
    var start = range.lowerBound
    var cursor = excluded.startIndex  // excluded[cursor] is the first excluded item not below the last candidate
    while start < range.upperBound {
        let count = min(block, range.upperBound - start)
        block = min(largest, 2 * block)
        score(start, count, scores.baseAddress!)
        // The rows at or above the threshold as it was before the block (a superset of those that beat it now).
        let hits = mfrec_select_ge(scores.baseAddress!, count, top.threshold, found.baseAddress!)
        for h in 0..<hits {
            let r = Int(found[h]), item = Int32(start + r)
            guard scores[r] >= top.threshold else { continue }
            while cursor < excluded.endIndex && excluded[cursor] < item { cursor += 1 }
            if cursor < excluded.endIndex && excluded[cursor] == item { continue }
            top.offer(score: scores[r], item: item)
        }
        start += count
    }
    return top
}

// MARK: - Scans

extension FloatRows {
    /// The n best of `range`'s rows (`stride` floats apart) by query · row over their first `k` floats, plus
    /// biases[row] when `biases` is given, `excluded` (ascending) left out: one query's scan (`mfrec_dots`, the
    /// threshold fused as above) — the item matrix's one-user scan, and `BlockScan.topN`'s for a lone query. Its
    /// scores are the block kernels' bit for bit and `TopN` orders ties by smaller id, so a lone query's list is
    /// the one the block kernels give it.
    func topN(
        query: [Float], range: Range<Int>, k: Int, stride: Int, biases: FloatRows?, n: Int,
        excluded: ArraySlice<Int32>
    ) -> TopN {
        precondition(query.count >= k && k <= stride && range.lowerBound >= 0)
        guard !range.isEmpty else { return TopN(capacity: n) }
        let first = range.lowerBound
        let rowPointer = rows(first, range.count, width: k, stride: stride)
        let biasPointer = biases?.pointer(first, range.count)
        return query.withUnsafeBufferPointer { q in
            selectTop(range: range, n: n, excluded: excluded) { start, length, out in
                mfrec_dots(
                    q.baseAddress!, rowPointer + (start - first) * stride, k, stride, length,
                    biasPointer.map { $0 + (start - first) }, out)
            }
        }
    }

    /// q_u · row_r (+ bias[r] when `bias` is given) for `nu` queries (k floats each, one after another in
    /// `queries`) and rows `first..<first + count`, written to out[u · ostride + (r − first)]: every score of
    /// the block, each equal to `mfrec_dots`' (and `BlockScan.dot`'s) bit for bit.
    func blockDots(
        _ queries: UnsafePointer<Float>, nu: Int, k: Int, stride: Int, first: Int, count: Int, bias: FloatRows?,
        into out: UnsafeMutablePointer<Float>, ostride: Int
    ) {
        precondition(k <= stride && ostride >= count)
        guard nu > 0, count > 0 else { return }
        let base = rows(first, count, width: k, stride: stride)
        mfrec_block_dots(queries, k, nu, base, k, stride, count, bias?.pointer(first, count), out, ostride)
    }

    /// q · row for the row at `offset` (chunks of 16 floats; the query has as many), in SIMD.
    func dot16(_ query: [Float], at offset: Int, chunks: Int) -> Float {
        precondition(query.count >= chunks * 16)
        let row = UnsafeRawPointer(pointer(offset, chunks * 16))
        return query.withUnsafeBytes { q in paddedDot16(q.baseAddress!, row, chunks: chunks) }
    }

    /// row · row for the row at `offset` (chunks of 16 floats), in SIMD.
    func selfDot16(at offset: Int, chunks: Int) -> Float {
        let row = UnsafeRawPointer(pointer(offset, chunks * 16))
        return paddedDot16(row, row, chunks: chunks)
    }
}

@inline(__always)
private func paddedDot16(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, chunks: Int) -> Float {
    var acc = SIMD16<Float>()
    for c in 0..<chunks {
        acc +=
            a.loadUnaligned(fromByteOffset: c * 64, as: SIMD16<Float>.self)
            * b.loadUnaligned(fromByteOffset: c * 64, as: SIMD16<Float>.self)
    }
    return acc.sum()
}

/// Top-n for a block of users at once: the rows are walked a block at a time (a block stays in cache while
/// every user's scores for it are computed, two users × two rows in registers), and the kernel reports only
/// the scores at or above each user's current heap threshold, so the heaps see a handful of candidates per
/// block instead of every score. A lone query without a bias term takes the one-query scan (`FloatRows.topN`);
/// every kernel computes each dot product with the same operations, so a user's list is the same bit for bit
/// whether they were ranked alone or in a block.
enum BlockScan {
    /// Rows per block: about 32 KiB of them, an L1 cache's worth (on ML-sized and generated 20,000-item
    /// models, 32 KiB blocks ran `recommend --all` 5–10% faster than 64 KiB ones and as fast as 16 KiB).
    static func blockRows(stride: Int) -> Int { max(16, 8_192 / max(stride, 1)) }

    /// The n best rows for each query (k floats each) by q_u · row_r + scales[u] · bias[r] (no bias term
    /// when `bias` is nil), each user's `excluded` (sorted ascending) left out.
    static func topN(
        queries: [[Float]], k: Int, rows: FloatRows, stride: Int, count: Int,
        bias: FloatRows?, scales: [Float], excluded: [[Int32]], n: Int
    ) -> [TopN] {
        let nu = queries.count
        precondition(scales.count == nu && excluded.count == nu && queries.allSatisfy { $0.count == k })
        var heaps = (0..<nu).map { _ in TopN(capacity: n) }
        guard nu > 0, n > 0, count > 0 else { return heaps }
        // A lone query without a bias term needs none of the block machinery (candidate buffers, per-user cursors).
        if nu == 1 && bias == nil {
            return [
                rows.topN(
                    query: queries[0], range: 0..<count, k: k, stride: stride, biases: nil, n: n,
                    excluded: excluded[0][...])
            ]
        }
        let rowBase = rows.rows(0, count, width: k, stride: stride)
        let biasBase = bias.map { $0.pointer(0, count) }
        // 16 users or more on AVX-512: their queries packed once into panels for the broadcast kernel, and
        // blocks a multiple of its 12-row tile.
        let flat = queries.flatMap { $0 }
        let panels = nu >= 16 && mfrec_kernels_block_level() == 2 ? QueryPanels(flat, count: nu, k: k) : nil
        defer { panels?.deallocate() }
        let block = panels == nil ? blockRows(stride: stride) : (blockRows(stride: stride) + 11) / 12 * 12
        // Many users without AVX-512, and a BLAS at hand: blocks of `gemmRows` rows go through its sgemm once every
        // heap has a threshold (its sums pick candidates; the exact kernel scores them, so the lists are the same).
        let gemm = panels == nil && usesGEMM(users: nu)
        let gemmBlock = gemm ? gemmRows(stride: stride) : 0
        var norms = [Float](repeating: 0, count: gemm ? nu : 0)
        if gemm { mfrec_query_norms(flat, k, nu, k, &norms) }
        var sums = BlockScan.scratch(Float.self, gemm ? nu * min(gemmBlock, count) : 0)
        var thresholds = [Float](repeating: -.infinity, count: nu)
        // Every user's excluded items in one array: user u's are skip[cursors[u]..<skipEnds[u]] at the start,
        // and cursors[u] moves past those below the user's last candidate.
        let skip = excluded.flatMap { $0 }
        var skipEnds = [Int](), cursors = [Int]()
        skipEnds.reserveCapacity(nu)
        cursors.reserveCapacity(nu)
        for list in excluded {
            cursors.append(skipEnds.last ?? 0)
            skipEnds.append(cursors.last! + list.count)
        }
        let room = nu * min(max(block, gemmBlock), count)
        // Written by the kernels before they are read (room for every pair of a block: the worst case).
        var users = BlockScan.scratch(UInt32.self, room), found = BlockScan.scratch(UInt32.self, room)
        var scores = BlockScan.scratch(Float.self, room)
        flat.withUnsafeBufferPointer { q in
            scales.withUnsafeBufferPointer { scale in
                var start = 0
                while start < count {
                    for u in 0..<nu { thresholds[u] = heaps[u].threshold }
                    // Until every heap is full, a threshold of -∞ would send every sum to the exact kernel.
                    let useGEMM = gemm && !thresholds.contains(-.infinity)
                    let length = min(useGEMM ? gemmBlock : block, count - start)
                    let rowsAt = rowBase + start * stride, biasAt = biasBase.map { $0 + start }
                    let hits =
                        if useGEMM {
                            mfrec_gemm_candidates(
                                norms, q.baseAddress!, k, nu, rowsAt, k, stride, length, biasAt, scale.baseAddress!,
                                thresholds, &sums, &users, &found, &scores)
                        } else if let panels {
                            mfrec_panel_candidates(
                                panels.panel, panels.norms, q.baseAddress!, k, nu, rowsAt, k, stride, length, biasAt,
                                scale.baseAddress!, thresholds, &users, &found, &scores)
                        } else {
                            mfrec_block_candidates(
                                q.baseAddress!, k, nu, rowsAt, k, stride, length, biasAt, scale.baseAddress!,
                                thresholds, &users, &found, &scores)
                        }
                    for j in 0..<hits {
                        let u = Int(users[j]), item = Int32(start + Int(found[j]))
                        // The kernel checked the block's starting threshold; many candidates are already below
                        // the heap's current one.
                        if scores[j] < heaps[u].threshold { continue }
                        // A user's candidates come in ascending rows (the kernel's promise), so one cursor per
                        // user walks their sorted excluded items once over the whole scan.
                        var at = cursors[u]
                        let end = skipEnds[u]
                        while at < end && skip[at] < item { at += 1 }
                        cursors[u] = at
                        if at < end && skip[at] == item { continue }
                        heaps[u].offer(score: scores[j], item: item)
                    }
                    start += length
                }
            }
        }
        return heaps
    }

    /// An array of `count` values the caller writes before reading (not zeroed: at 256 users × 1,024 rows the
    /// kernels' candidate buffers are 3 MB a pass).
    static func scratch<T: BitwiseCopyable>(_: T.Type, _ count: Int) -> [T] {
        [T](unsafeUninitializedCapacity: count) { _, initialized in initialized = count }
    }

    /// Users per blocked pass below which the BLAS path is not taken (its sgemm pays off from a few dozen).
    static let gemmMinimumUsers = 32

    /// Whether a blocked pass over `users` users takes the BLAS path: a BLAS was found (`mfrec_blas_available`),
    /// the block kernels are not AVX-512's (whose broadcast panels already run near that speed), and there are
    /// enough users.
    static func usesGEMM(users: Int) -> Bool {
        users >= gemmMinimumUsers && mfrec_kernels_block_level() != 2 && mfrec_blas_available() != 0
    }

    /// Users per blocked pass that suit this machine's kernels: 256 for a BLAS sgemm (its speed grows with the
    /// block: by hand, one thread, 20,000 random rows of 64 floats with OpenBLAS 0.3.21 on an AMD EPYC without
    /// AVX-512, about 27 GFLOP/s with the selection at 256 users against 20 at 64), 64 for mfrec's own.
    static var preferredBatch: Int { usesGEMM(users: Int.max) ? 256 : 64 }

    /// Rows per BLAS block: about 256 KiB of them (1,024 at k = 64), at least 256.
    static func gemmRows(stride: Int) -> Int { max(256, 65_536 / max(stride, 1)) }

    /// Queries laid out for `mfrec_panel_candidates` (64-byte aligned panels of 32 users, and their norms);
    /// freed by `deallocate()`.
    struct QueryPanels {
        let panel: UnsafeMutablePointer<Float>
        let norms: UnsafeMutablePointer<Float>

        /// - Parameters:
        ///   - flat: `nu` queries of k floats, one after another.
        ///   - nu: how many.
        ///   - k: floats per query.
        init(_ flat: [Float], count nu: Int, k: Int) {
            let floats = mfrec_panel_floats(nu, k)
            panel = UnsafeMutableRawPointer.allocate(byteCount: max(floats, 1) * 4, alignment: 64)
                .bindMemory(to: Float.self, capacity: max(floats, 1))
            norms = .allocate(capacity: max(nu, 1))
            mfrec_panel_pack(flat, k, nu, k, panel, norms)
        }

        func deallocate() {
            UnsafeMutableRawPointer(panel).deallocate()
            norms.deallocate()
        }
    }

    /// Σ s and Σ s² over all rows for each query, s = q_u · row_r (in double, rows in order).
    static func moments(queries: [[Float]], k: Int, rows: FloatRows, stride: Int, count: Int) -> (
        sum: [Double], sumOfSquares: [Double]
    ) {
        let nu = queries.count
        precondition(queries.allSatisfy { $0.count == k })
        var sum = [Double](repeating: 0, count: nu), squares = [Double](repeating: 0, count: nu)
        guard nu > 0, count > 0 else { return (sum, squares) }
        let rowBase = rows.rows(0, count, width: k, stride: stride)
        let flat = queries.flatMap { $0 }
        let block = blockRows(stride: stride)
        var start = 0
        while start < count {
            let length = min(block, count - start)
            mfrec_block_moments(flat, k, nu, rowBase + start * stride, k, stride, length, &sum, &squares)
            start += length
        }
        return (sum, squares)
    }

    /// Every q_u · row_r (+ bias[r]) for `nu` queries of k floats (one after another in `queries`) and the first
    /// `count` rows, into out[u · ostride + r]: a block of rows (an L1 cache's worth) at a time against all the
    /// queries. Each score equals the one-query `mfrec_dots`' bit for bit.
    static func dots(
        queries: UnsafePointer<Float>, nu: Int, k: Int, rows: FloatRows, stride: Int, count: Int, bias: FloatRows?,
        into out: UnsafeMutablePointer<Float>, ostride: Int
    ) {
        let block = blockRows(stride: stride)
        var start = 0
        while start < count {
            let length = min(block, count - start)
            rows.blockDots(
                queries, nu: nu, k: k, stride: stride, first: start, count: length, bias: bias, into: out + start,
                ostride: ostride)
            start += length
        }
    }

    /// One dot product of `query` (k floats) with the row at `offset`, computed exactly as the block kernels
    /// compute it.
    static func dot(_ query: [Float], rows: FloatRows, at offset: Int, k: Int) -> Float {
        precondition(query.count >= k)
        let row = rows.pointer(offset, k)
        var out: Float = 0
        mfrec_dots(query, row, k, k, 1, nil, &out)
        return out
    }

    /// Whether an ascending array or slice holds a value (binary search).
    @inline(__always)
    static func contains(_ sorted: ArraySlice<Int32>, _ value: Int32) -> Bool {
        guard let first = sorted.first, let last = sorted.last, value >= first, value <= last else { return false }
        let at = lowerBound(sorted, value)
        return at < sorted.endIndex && sorted[at] == value
    }
}

// MARK: - Padded model rows

extension FactorModel {
    /// The dot product of two padded rows (`blocks` runs of 8 floats each), in SIMD: the one inner loop of
    /// `ModelRanker.topN` and `predictPairs`.
    @inline(__always) private static func paddedDot(_ p: UnsafeRawPointer, _ q: UnsafeRawPointer, blocks: Int) -> Float
    {
        var acc = SIMD8<Float>()
        for c in 0..<blocks {
            acc +=
                p.loadUnaligned(fromByteOffset: c * 32, as: SIMD8<Float>.self)
                * q.loadUnaligned(fromByteOffset: c * 32, as: SIMD8<Float>.self)
        }
        return acc.sum()
    }

    /// Offers every item but `excluded` (sorted ascending) to `top` by p_user · q_i + b_i (b_i when the model
    /// has biases): `ModelRanker.topN`'s scan.
    func scanItems(user: Int, excluded: [Int32], into top: inout TopN) {
        precondition(user >= 0 && user < userCount, "FactorModel.scanItems: user \(user) has no row")
        precondition(userFactors.count >= userCount * stride && itemFactors.count >= itemCount * stride)
        precondition(!useBias || itemBias.count >= itemCount)
        var skip = 0
        userFactors.withUnsafeBufferPointer { userRows in
            itemFactors.withUnsafeBufferPointer { itemRows in
                let p = UnsafeRawPointer(userRows.baseAddress! + user * stride)
                for i in 0..<itemCount {
                    if skip < excluded.count && excluded[skip] == Int32(i) {
                        skip += 1
                        continue
                    }
                    let q = UnsafeRawPointer(itemRows.baseAddress! + i * stride)
                    let score = Self.paddedDot(p, q, blocks: stride / 8) + (useBias ? itemBias[i] : 0)
                    if score >= top.threshold { top.offer(score: score, item: Int32(i)) }
                }
            }
        }
    }

    /// b_i + p · q_i for every item (b_i only in a biased model; μ and the user's bias, the same for every item,
    /// left out): a user's predicted ratings up to a constant, for a list that blends them in (see
    /// `RankingModel.topN(user:n:excluded:popularityWeight:ratingScores:ratingWeight:)`). An item without a
    /// vector scores its bias (0 for an item the model never saw). The same arithmetic wherever it is called,
    /// so every caller gets the same floats.
    /// - Parameter vector: the user's p_u (k floats).
    /// - Returns: `itemCount` scores.
    public func itemScores(user vector: ArraySlice<Float>) -> [Float] {
        precondition(
            vector.count == factors, "FactorModel.itemScores: a vector of \(vector.count) floats, not \(factors)")
        var out = [Float](repeating: 0, count: itemCount)
        let query = Array(vector)
        query.withUnsafeBufferPointer { q in
            out.withUnsafeMutableBufferPointer { out in
                itemScores(queries: q.baseAddress!, nu: 1, into: out.baseAddress!, ostride: itemCount)
            }
        }
        return out
    }

    /// `itemScores(user:)` for `nu` users at once (k floats each, one after another in `queries`), into
    /// out[u · ostride + i] for the model's items: the block kernel's dots, equal to the one-user scores bit
    /// for bit.
    func itemScores(queries: UnsafePointer<Float>, nu: Int, into out: UnsafeMutablePointer<Float>, ostride: Int) {
        precondition(itemFactors.count >= itemCount * stride && (!useBias || itemBias.count >= itemCount))
        FloatRows.with(itemFactors) { rows in
            FloatRows.with(useBias ? itemBias : []) { bias in
                BlockScan.dots(
                    queries: queries, nu: nu, k: factors, rows: rows, stride: stride, count: itemCount,
                    bias: useBias ? bias : nil, into: out, ostride: ostride)
            }
        }
    }

    /// `itemScores(user:)` for user u's row; nil when u has no vector (then no list blends in predictions for u).
    /// - Parameter u: the user's row.
    /// - Returns: `itemCount` scores, or nil.
    public func itemScores(user u: Int) -> [Float]? { hasUser(u) ? itemScores(user: userVector(u)) : nil }

    /// `predict(user:item:)` for many pairs at once (batch prediction's inner loop): the dot products over the
    /// padded rows in SIMD, the rows reached through one pointer per matrix for the whole batch. A pair whose
    /// user or item is -1 (no row, or no vector: the caller decides) gets NaN, for the caller's fallback.
    /// - Parameters:
    ///   - users: the pairs' users.
    ///   - items: the pairs' items (as many).
    ///   - out: replaced by one prediction per pair.
    public func predictPairs(users: [Int32], items: [Int32], into out: inout [Float]) {
        precondition(users.count == items.count)
        precondition(userFactors.count >= userCount * stride && itemFactors.count >= itemCount * stride)
        precondition(userBias.count >= userCount && itemBias.count >= itemCount)
        out.removeAll(keepingCapacity: true)
        out.reserveCapacity(users.count)
        userFactors.withUnsafeBufferPointer { p in
            itemFactors.withUnsafeBufferPointer { q in
                userBias.withUnsafeBufferPointer { bu in
                    itemBias.withUnsafeBufferPointer { bi in
                        let base = (UnsafeRawPointer(p.baseAddress!), UnsafeRawPointer(q.baseAddress!))
                        let rowBytes = stride * 4, blocks = stride / 8
                        for j in 0..<users.count {
                            let u = Int(users[j]), i = Int(items[j])
                            guard u >= 0 && u < userCount && i >= 0 && i < itemCount else {
                                out.append(.nan)
                                continue
                            }
                            let dot = Self.paddedDot(base.0 + u * rowBytes, base.1 + i * rowBytes, blocks: blocks)
                            out.append(clip(useBias ? globalMean + bu[u] + bi[i] + dot : dot))
                        }
                    }
                }
            }
        }
    }
}

// MARK: - Dense products of the co-occurrence fit

extension CooccurrenceEmbedding {
    /// Aᵀ B for two row-major rows × columns matrices (a columns × columns result, in Double); with
    /// `symmetric` (A = B) only the upper triangle is computed and then mirrored. Rows are split between
    /// two threads that add into private sums.
    static func crossProduct(_ a: [Float], _ b: [Float], rows: Int, columns n: Int, symmetric: Bool = false) -> [Double]
    {
        precondition(rows >= 0 && n >= 0 && a.count >= rows * n && b.count >= rows * n)
        let parts = max(1, min(2, rows / 512))
        let sums = PartialSums(parts: parts, size: n * n)
        DispatchQueue.concurrentPerform(iterations: parts) { part in
            let lo = rows * part / parts, hi = rows * (part + 1) / parts
            let out = sums.buffer(part)
            let bRow = UnsafeMutablePointer<Double>.allocate(capacity: n)
            defer { bRow.deallocate() }
            a.withUnsafeBufferPointer { aRows in
                b.withUnsafeBufferPointer { bRows in
                    for r in lo..<hi {
                        let rowA = aRows.baseAddress! + r * n, rowB = bRows.baseAddress! + r * n
                        for j in 0..<n { bRow[j] = Double(rowB[j]) }
                        for i in 0..<n {
                            let x = Double(rowA[i])
                            if x == 0 { continue }
                            let o = out + i * n
                            for j in (symmetric ? i : 0)..<n { o[j] += x * bRow[j] }
                        }
                    }
                }
            }
        }
        var result = sums.total()
        if symmetric { for i in 0..<n { for j in 0..<i { result[i * n + j] = result[j * n + i] } } }
        return result
    }

    /// Each row x of the rows × n matrix `m` becomes x L⁻ᵀ, for L the lower-triangular n × n `l`: solve
    /// L y = xᵀ by forward substitution, rows split between `parts` threads (each row written by one thread).
    static func solveRows(_ m: inout [Float], lower l: [Double], rows: Int, columns n: Int, parts: Int) {
        precondition(rows >= 0 && n >= 0 && parts >= 1 && m.count >= rows * n && l.count >= n * n)
        m.withUnsafeMutableBufferPointer { buffer in
            let rowsOut = SendablePointer(buffer.baseAddress!)
            l.withUnsafeBufferPointer { lRows in
                let lower = SendableConstPointer(lRows.baseAddress!)
                DispatchQueue.concurrentPerform(iterations: parts) { part in
                    let x = UnsafeMutablePointer<Double>.allocate(capacity: n)
                    defer { x.deallocate() }
                    for r in (rows * part / parts)..<(rows * (part + 1) / parts) {
                        let row = rowsOut.pointer + r * n
                        for i in 0..<n {
                            var v = Double(row[i])
                            let li = lower.pointer + i * n
                            for k in 0..<i { v -= li[k] * x[k] }
                            x[i] = v / li[i]
                        }
                        for i in 0..<n { row[i] = Float(x[i]) }
                    }
                }
            }
        }
    }
}

/// A pointer handed to worker threads that write disjoint parts of its memory.
private struct SendablePointer: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<Float>
    init(_ pointer: UnsafeMutablePointer<Float>) { self.pointer = pointer }
}

/// A read-only pointer handed to worker threads.
private struct SendableConstPointer: @unchecked Sendable {
    let pointer: UnsafePointer<Double>
    init(_ pointer: UnsafePointer<Double>) { self.pointer = pointer }
}

/// Private running sums of several threads, added up at the end.
private final class PartialSums: @unchecked Sendable {
    private let buffers: [UnsafeMutablePointer<Double>]
    private let size: Int

    init(parts: Int, size: Int) {
        self.size = size
        buffers = (0..<parts).map { _ in
            let p = UnsafeMutablePointer<Double>.allocate(capacity: size)
            p.initialize(repeating: 0, count: size)
            return p
        }
    }

    deinit { for p in buffers { p.deallocate() } }

    /// The buffer of one part: only that part's thread writes it.
    func buffer(_ part: Int) -> UnsafeMutablePointer<Double> { buffers[part] }

    func total() -> [Double] {
        var out = [Double](repeating: 0, count: size)
        for p in buffers { for j in 0..<size { out[j] += p[j] } }
        return out
    }
}

/// out[to[r]] += weight[weightIndex[r]] · input[from[r]] over all r, rows of `width` floats: one pass of
/// the co-occurrence product, split over threads that each add into a private output (summed after).
final class ScatterJob: @unchecked Sendable {
    let input: [Float], from: [Int32], to: [Int32], weightIndex: [Int32], weight: [Float]
    let rows: Int, width: Int
    /// One output per thread, allocated by `run`.
    private var partials: [UnsafeMutableBufferPointer<Float>] = []

    /// Checks every index before the C loop reads through it.
    init(input: [Float], from: [Int32], to: [Int32], weightIndex: [Int32], weight: [Float], rows: Int, width: Int) {
        precondition(from.count == to.count && to.count == weightIndex.count)
        precondition(rows >= 0 && width >= 0)
        let inputRows = width == 0 ? 0 : input.count / width
        precondition(from.allSatisfy { $0 >= 0 && Int($0) < inputRows }, "ScatterJob: a source row is out of range")
        precondition(to.allSatisfy { $0 >= 0 && Int($0) < rows }, "ScatterJob: a target row is out of range")
        precondition(weightIndex.allSatisfy { $0 >= 0 && Int($0) < weight.count }, "ScatterJob: bad weight index")
        self.input = input
        self.from = from
        self.to = to
        self.weightIndex = weightIndex
        self.weight = weight
        self.rows = rows
        self.width = width
    }

    func run(threads: Int) -> [Float] {
        let count = from.count, parts = max(1, min(threads, count / 100_000 + 1))
        partials = (0..<parts).map { _ in UnsafeMutableBufferPointer<Float>.allocate(capacity: rows * width) }
        defer {
            for p in partials { p.deallocate() }
            partials = []
        }
        let work = { @Sendable (part: Int) in
            let out = self.partials[part]
            out.initialize(repeating: 0)
            let lo = count * part / parts, hi = count * (part + 1) / parts
            guard hi > lo else { return }
            self.input.withUnsafeBufferPointer { input in
                self.from.withUnsafeBufferPointer { from in
                    self.to.withUnsafeBufferPointer { to in
                        self.weightIndex.withUnsafeBufferPointer { weightIndex in
                            self.weight.withUnsafeBufferPointer { weight in
                                mfrec_scatter_rows(
                                    from.baseAddress! + lo, to.baseAddress! + lo, weightIndex.baseAddress! + lo,
                                    weight.baseAddress!, hi - lo, input.baseAddress!, out.baseAddress!, self.width)
                            }
                        }
                    }
                }
            }
        }
        if parts == 1 { work(0) } else { DispatchQueue.concurrentPerform(iterations: parts, execute: work) }
        var out = Array(partials[0])
        out.withUnsafeMutableBufferPointer { out in
            for p in partials.dropFirst() { for j in 0..<out.count { out[j] += p[j] } }
        }
        return out
    }
}

// MARK: - SGD

/// The model's arrays lent to the training threads for one epoch (`Trainer`), and the per-block error slots.
///
/// Invariant: built only by `withShared`, used only inside its closure; the block schedule gives the
/// threads of one stratum disjoint users and items (so disjoint rows and biases) and each block its own
/// error slots. Ids in the grid were checked against the model when the grid was lent.
struct SharedModel: @unchecked Sendable {
    private let userRows: UnsafeMutablePointer<Float>
    private let itemRows: UnsafeMutablePointer<Float>
    private let userBiases: UnsafeMutablePointer<Float>
    private let itemBiases: UnsafeMutablePointer<Float>
    private let squaredErrors: UnsafeMutablePointer<Double>
    private let absoluteErrors: UnsafeMutablePointer<Double>
    private let blocks: Int
    private let stride: Int
    private let grid: BlockGrid

    /// Lends `model`'s arrays and two arrays of `grid.bins²` error slots to `body`; returns the slots after.
    static func withShared(
        _ model: inout FactorModel, grid: BlockGrid, _ body: (SharedModel) throws -> Void
    ) rethrows -> (squared: [Double], absolute: [Double]) {
        let blocks = grid.bins * grid.bins
        precondition(model.userFactors.count >= model.userCount * model.stride)
        precondition(model.itemFactors.count >= model.itemCount * model.stride)
        precondition(model.userBias.count >= model.userCount && model.itemBias.count >= model.itemCount)
        precondition(
            grid.userOrder.count <= model.userCount && grid.itemOrder.count <= model.itemCount,
            "SGD: the grid's ids exceed the model")
        var sqErr = [Double](repeating: 0, count: blocks)
        var absErr = [Double](repeating: 0, count: blocks)
        try model.userFactors.withUnsafeMutableBufferPointer { userRows in
            try model.itemFactors.withUnsafeMutableBufferPointer { itemRows in
                try model.userBias.withUnsafeMutableBufferPointer { userBiases in
                    try model.itemBias.withUnsafeMutableBufferPointer { itemBiases in
                        try sqErr.withUnsafeMutableBufferPointer { squaredErrors in
                            try absErr.withUnsafeMutableBufferPointer { absoluteErrors in
                                try body(
                                    SharedModel(
                                        userRows: userRows.baseAddress!, itemRows: itemRows.baseAddress!,
                                        userBiases: userBiases.baseAddress!, itemBiases: itemBiases.baseAddress!,
                                        squaredErrors: squaredErrors.baseAddress!,
                                        absoluteErrors: absoluteErrors.baseAddress!, blocks: blocks,
                                        stride: model.stride, grid: grid))
                            }
                        }
                    }
                }
            }
        }
        return (sqErr, absErr)
    }

    /// One SGD pass over block `block`'s ratings: the hot loop, in C (`mfrec_sgd_block`, AVX2+FMA chosen at run
    /// time); its squared and absolute errors go to the block's slots. Measured on 25M ratings, k = 32, one
    /// thread: the Swift `SIMD8` loop it replaced ran at 26M updates/s (the baseline x86-64 target has no
    /// AVX); see `mfrec-bench train` for the current figures.
    func sgd(block: Int, _ p: SGDParameters) {
        precondition(block >= 0 && block < blocks && p.chunks * 8 == stride)
        let range = grid.blockRange(block)
        var sq = 0.0, ab = 0.0
        if !range.isEmpty {
            grid.users.withUnsafeBufferPointer { u in
                grid.items.withUnsafeBufferPointer { i in
                    grid.ratings.withUnsafeBufferPointer { r in
                        precondition(range.upperBound <= r.count && r.count == u.count && u.count == i.count)
                        mfrec_sgd_block(
                            u.baseAddress! + range.lowerBound, i.baseAddress! + range.lowerBound,
                            r.baseAddress! + range.lowerBound, range.count, userRows, itemRows, userBiases,
                            itemBiases, p.chunks * 8, p.lr, p.regP, p.regQ, p.regB, p.mean, p.useBias ? 1 : 0,
                            p.nonnegative ? 1 : 0, &sq, &ab)
                    }
                }
            }
        }
        squaredErrors[block] = sq
        absoluteErrors[block] = ab
    }
}
