import CKernels

/// Top-n for a block of users at once: the rows are walked a block at a time (a block stays in cache while
/// every user's scores for it are computed, two users × two rows in registers), and the kernel reports only
/// the scores at or above each user's current heap threshold, so the heaps see a handful of candidates per
/// block instead of every score. The one-user scans call the same kernel with one user, and the kernels
/// compute every dot product with the same operations, so a user's list is the same bit for bit whether
/// they were ranked alone or in a block.
enum BlockScan {
    /// Rows per block: about 32 KiB of them, an L1 cache's worth (on ML-sized and generated 20,000-item
    /// models, 32 KiB blocks ran `recommend --all` 5–10% faster than 64 KiB ones and as fast as 16 KiB).
    static func blockRows(stride: Int) -> Int { max(16, 8_192 / max(stride, 1)) }

    /// The n best rows for each query (k floats each) by q_u · row_r + scales[u] · bias[r] (no bias term
    /// when `bias` is nil), each user's `excluded` (sorted ascending) left out.
    static func topN(
        queries: [[Float]], k: Int, rows: UnsafePointer<Float>, stride: Int, count: Int,
        bias: UnsafePointer<Float>?, scales: [Float], excluded: [[Int32]], n: Int
    ) -> [TopN] {
        let nu = queries.count
        precondition(scales.count == nu && excluded.count == nu && queries.allSatisfy { $0.count == k })
        var heaps = (0..<nu).map { _ in TopN(capacity: n) }
        guard nu > 0, n > 0 else { return heaps }
        let block = blockRows(stride: stride)
        let flat = queries.flatMap { $0 }
        var thresholds = [Float](repeating: -.infinity, count: nu)
        let room = nu * min(block, count)
        var users = [UInt32](repeating: 0, count: room), found = [UInt32](repeating: 0, count: room)
        var scores = [Float](repeating: 0, count: room)
        flat.withUnsafeBufferPointer { q in
            scales.withUnsafeBufferPointer { scale in
                var start = 0
                while start < count {
                    let length = min(block, count - start)
                    for u in 0..<nu { thresholds[u] = heaps[u].threshold }
                    let hits = mfrec_block_candidates(
                        q.baseAddress!, k, nu, rows + start * stride, k, stride, length, bias.map { $0 + start },
                        scale.baseAddress!, thresholds, &users, &found, &scores)
                    for j in 0..<hits {
                        let u = Int(users[j]), item = Int32(start + Int(found[j]))
                        if contains(excluded[u], item) { continue }
                        heaps[u].offer(score: scores[j], item: item)
                    }
                    start += length
                }
            }
        }
        return heaps
    }

    /// Σ s and Σ s² over all rows for each query, s = q_u · row_r (in double, rows in order).
    static func moments(queries: [[Float]], k: Int, rows: UnsafePointer<Float>, stride: Int, count: Int) -> (
        sum: [Double], sumOfSquares: [Double]
    ) {
        let nu = queries.count
        var sum = [Double](repeating: 0, count: nu), squares = [Double](repeating: 0, count: nu)
        guard nu > 0 else { return (sum, squares) }
        let flat = queries.flatMap { $0 }
        let block = blockRows(stride: stride)
        var start = 0
        while start < count {
            let length = min(block, count - start)
            mfrec_block_moments(flat, k, nu, rows + start * stride, k, stride, length, &sum, &squares)
            start += length
        }
        return (sum, squares)
    }

    /// One dot product, computed exactly as the block kernels compute it.
    static func dot(_ query: [Float], row: UnsafePointer<Float>, k: Int) -> Float {
        var out: Float = 0
        mfrec_dots(query, row, k, k, 1, nil, &out)
        return out
    }

    /// Whether a sorted array holds a value (binary search).
    @inline(__always)
    static func contains(_ sorted: [Int32], _ value: Int32) -> Bool {
        guard let first = sorted.first, let last = sorted.last, value >= first, value <= last else { return false }
        let at = lowerBound(sorted, value)
        return at < sorted.count && sorted[at] == value
    }
}
