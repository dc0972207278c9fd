import CKernels
import Foundation

/// Fits implicit-feedback ALS (Hu, Koren and Volinsky 2008) to ratings, with the ratings as confidence:
/// c_ui = α · w(r_ui) for a rated pair (w(r) = r − min + 1; implicit's convention for a matrix of ratings), 1
/// otherwise, preference 1 for rated pairs,
/// minimizing Σ c_ui (p_ui − x_u · y_i)² + λ (Σ‖x_u‖² + Σ‖y_i‖²). λ is not scaled by counts (as in implicit;
/// Spark scales it, see `ImplicitALS`). Each sweep solves every user, then every item, by a few conjugate-gradient
/// steps warm-started from the previous sweep (`mfrec_als_cg`, Takács et al. 2011), so a sweep costs
/// O(ratings · k · steps + (users + items) · k²). Rows are split between threads; each row's solve is the same
/// on any number of threads, so the fit is deterministic for a seed.
public enum ImplicitALSFit {
    /// The fitted factors.
    public struct Factors: Sendable {
        /// k.
        public let factors: Int
        /// userCount × k, row-major.
        public let users: [Float]
        /// itemCount × k, row-major.
        public let items: [Float]
        /// Sweeps done: the iterations asked for, or fewer when `isCancelled` stopped the fit.
        public let sweeps: Int
    }

    /// Fits the model.
    /// - Parameters:
    ///   - users: the ratings' users.
    ///   - items: their items.
    ///   - ratings: their values.
    ///   - userCount: users (every id below it).
    ///   - itemCount: items (every id below it).
    ///   - ratingOffset: the scale minimum (w(r) = r − offset + 1).
    ///   - factors: k.
    ///   - regularization: λ.
    ///   - alpha: α.
    ///   - iterations: sweeps.
    ///   - steps: conjugate-gradient steps per row and sweep.
    ///   - seed: seed of the random start.
    ///   - threads: threads.
    ///   - isCancelled: polled between half-sweeps; once true, a less converged model comes back.
    /// - Returns: the factors.
    public static func fit(
        users: [Int32], items: [Int32], ratings: [Float], userCount: Int, itemCount: Int, ratingOffset: Double,
        factors: Int, regularization: Double, alpha: Double, iterations: Int = ALSBlend.defaultIterations,
        steps: Int = 3,
        seed: UInt64 = 42, threads: Int = ProcessInfo.processInfo.activeProcessorCount,
        isCancelled: (() -> Bool)? = nil
    ) -> Factors {
        let k = factors
        precondition(users.count == items.count && items.count == ratings.count && k > 0)
        // The kernel takes c − 1 (the part of the confidence above an unrated pair's).
        let confidence = ratings.map { Float(alpha) * max($0 - Float(ratingOffset) + 1, 0) - 1 }
        let byUser = CSR(rows: users, columns: items, values: confidence, rowCount: userCount)
        let byItem = CSR(rows: items, columns: users, values: confidence, rowCount: itemCount)
        var rng = SeededGenerator(seed: seed ^ 0xA15)
        // implicit's start: small uniform values; the items' rows are what the first user sweep solves against.
        var x = [Float](repeating: 0, count: userCount * k)
        var y = (0..<(itemCount * k)).map { _ in Float.random(in: 0..<0.01, using: &rng) }
        var sweeps = 0
        for _ in 0..<iterations {
            if isCancelled?() == true { break }
            sweep(byUser, solving: &x, against: y, k: k, lambda: regularization, steps: steps, threads: threads)
            sweep(byItem, solving: &y, against: x, k: k, lambda: regularization, steps: steps, threads: threads)
            sweeps += 1
        }
        // The users' final vectors against the final items (what the user step at query time gives, converged).
        sweep(byUser, solving: &x, against: y, k: k, lambda: regularization, steps: steps, threads: threads)
        return Factors(factors: k, users: x, items: y, sweeps: sweeps)
    }

    /// Row-compressed entries: row r's columns and values are at indptr[r]..<indptr[r + 1].
    struct CSR {
        var indptr: [Int64]
        var indices: [Int32]
        var values: [Float]

        init(rows: [Int32], columns: [Int32], values: [Float], rowCount: Int) {
            var counts = [Int64](repeating: 0, count: rowCount + 1)
            for r in rows { counts[Int(r) + 1] += 1 }
            for r in 0..<rowCount { counts[r + 1] += counts[r] }
            indptr = counts
            var next = counts
            indices = [Int32](repeating: 0, count: rows.count)
            self.values = [Float](repeating: 0, count: rows.count)
            for e in 0..<rows.count {
                let at = Int(next[Int(rows[e])])
                next[Int(rows[e])] += 1
                indices[at] = columns[e]
                self.values[at] = values[e]
            }
        }

        var rowCount: Int { indptr.count - 1 }
    }

    /// YᵀY + λI of row-major rows (summed in double, rows in order).
    static func gram(_ rows: [Float], k: Int, lambda: Double) -> [Float] {
        var g = [Double](repeating: 0, count: k * k)
        let count = rows.count / k
        rows.withUnsafeBufferPointer { v in
            g.withUnsafeMutableBufferPointer { g in
                for r in 0..<count {
                    let row = v.baseAddress! + r * k
                    for a in 0..<k {
                        let ya = Double(row[a])
                        guard ya != 0 else { continue }
                        let out = g.baseAddress! + a * k
                        for b in 0..<k { out[b] += ya * Double(row[b]) }
                    }
                }
            }
        }
        for a in 0..<k { g[a * k + a] += lambda }
        return g.map { Float($0) }
    }

    /// Solves every row of `csr` into `solving` against the fixed `against` rows.
    static func sweep(
        _ csr: CSR, solving target: inout [Float], against fixed: [Float], k: Int, lambda: Double, steps: Int,
        threads: Int
    ) {
        let g = gram(fixed, k: k, lambda: lambda)
        let rows = csr.rowCount
        let parts = max(1, min(threads, rows / 64))
        csr.indptr.withUnsafeBufferPointer { indptr in
            csr.indices.withUnsafeBufferPointer { indices in
                csr.values.withUnsafeBufferPointer { values in
                    fixed.withUnsafeBufferPointer { y in
                        g.withUnsafeBufferPointer { g in
                            target.withUnsafeMutableBufferPointer { x in
                                let out = x.baseAddress!
                                // Parts of equal ratings, so the threads finish together.
                                let total = Int64(indptr[rows])
                                var bounds = [0]
                                var r = 0
                                for p in 1..<parts {
                                    let goal = total * Int64(p) / Int64(parts)
                                    while r < rows && indptr[r] < goal { r += 1 }
                                    bounds.append(r)
                                }
                                bounds.append(rows)
                                // Each part writes only its own rows of `out`; the rest is read only.
                                let shared = Shared(
                                    (
                                        indptr: indptr.baseAddress!, indices: indices.baseAddress!,
                                        values: values.baseAddress!, y: y.baseAddress!, g: g.baseAddress!, out: out,
                                        bounds: bounds
                                    ))
                                let work: @Sendable (Int) -> Void = { p in
                                    let v = shared.value
                                    var scratch = [Float](repeating: 0, count: 3 * k)
                                    scratch.withUnsafeMutableBufferPointer { s in
                                        mfrec_als_cg(
                                            v.indptr, v.indices, v.values, Int32(v.bounds[p]), Int32(v.bounds[p + 1]),
                                            v.y, v.g, Int32(k), v.out, Int32(steps), s.baseAddress!)
                                    }
                                }
                                if parts == 1 {
                                    work(0)
                                } else {
                                    DispatchQueue.concurrentPerform(iterations: parts, execute: work)
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
