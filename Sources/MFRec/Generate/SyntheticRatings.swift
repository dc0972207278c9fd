import CZlib
import Foundation
import MFEngine

/// Writes a MovieLens-shaped synthetic ratings file, for demos, tests and benchmarks at any scale.
///
/// - Item popularity is Zipf-like (a few items get most ratings) and user activity log-normal, as in
///   MovieLens; every user rates at least a few items and no (user, item) pair repeats.
/// - A rating is `round(μ + b_u + b_i + p_u·q_i + noise)` clipped to 1…5, from a rank-8 model, so a
///   factorization model has real structure to learn.
/// - Lines come sorted by user, then item (like MovieLens 25M's `ratings.csv`); ids start at 1.
/// - The layout follows the output name: `.csv` gives `userId,movieId,rating,timestamp` with a header,
///   anything else tab-separated `u.data`; a `.gz` suffix compresses it.
public struct SyntheticRatings: Sendable {
    /// Users to generate.
    public var users: Int
    /// Items to generate.
    public var items: Int
    /// Ratings to generate (at most a third of the items per user).
    public var ratings: Int
    /// The random seed: the same seed gives the same file.
    public var seed: UInt64

    /// A generator of `ratings` ratings by `users` users of `items` items.
    /// - Parameters:
    ///   - users: users (≥ 1).
    ///   - items: items (≥ 1).
    ///   - ratings: ratings in all (at most a third of the items per user).
    ///   - seed: the random seed.
    public init(users: Int, items: Int, ratings: Int, seed: UInt64 = 42) {
        self.users = users
        self.items = items
        self.ratings = ratings
        self.seed = seed
    }

    /// What was written.
    public struct Report: Sendable {
        /// Ratings written.
        public var ratings: Int
        /// Bytes written.
        public var bytes: Int64
        /// Wall-clock time.
        public var seconds: Double
    }

    /// Writes the file atomically (a temp file renamed into place).
    /// - Parameters:
    ///   - path: the file (`.gz` for gzip; `-` for standard output).
    ///   - progress: called with ratings written and ratings in all.
    /// - Returns: ratings and bytes written, and the time taken.
    /// - Throws: `MFRecError.cannotGenerate` for counts that cannot be met, `MFRecError.cannotWrite` when the
    ///   file cannot be written (its old content stays).
    public func write(to path: String, progress: ProgressHandler? = nil) throws -> Report {
        guard users > 0, items > 0, ratings > 0 else {
            throw MFRecError.cannotGenerate("users, items and ratings must be positive")
        }
        let maxPerUser = max(1, items / 3)
        guard ratings <= users * maxPerUser else {
            throw MFRecError.cannotGenerate(
                "\(ratings) ratings do not fit \(users) users × \(items) items (at most a third of the items per "
                    + "user: \(users * maxPerUser))"
            )
        }
        let started = Date()
        var rng = SeededGenerator(seed: seed)
        let rank = 8

        // Item popularity: Zipf-like weights over a random permutation of the items.
        var order = Array(0..<items)
        order.shuffle(using: &rng)
        var weight = [Double](repeating: 0, count: items)
        for (rankIndex, item) in order.enumerated() { weight[item] = 1 / pow(Double(rankIndex) + 10, 0.9) }
        var cdf = [Double](repeating: 0, count: items)
        var running = 0.0
        for i in 0..<items {
            running += weight[i]
            cdf[i] = running
        }
        let totalWeight = running

        // User activity: log-normal, at least `floor` ratings each, at most `maxPerUser`.
        let floorCount = min(maxPerUser, max(1, min(20, ratings / users / 2)))
        var activity = (0..<users).map { _ in exp(1.0 * rng.nextGaussian()) }
        let sumActivity = activity.reduce(0, +)
        var counts = [Int](repeating: floorCount, count: users)
        var assigned = floorCount * users
        guard assigned <= ratings else { throw MFRecError.cannotGenerate("too few ratings for \(users) users") }
        let spare = Double(ratings - assigned)
        for u in 0..<users {
            activity[u] /= sumActivity
            let extra = min(maxPerUser - counts[u], Int(spare * activity[u]))
            counts[u] += extra
            assigned += extra
        }
        while assigned < ratings {  // hand out the rounding remainder
            let u = rng.next(below: users)
            if counts[u] < maxPerUser {
                counts[u] += 1
                assigned += 1
            }
        }

        // The low-rank model behind the ratings.
        func gaussians(_ n: Int, _ sd: Double) -> [Float] { (0..<n).map { _ in Float(sd * rng.nextGaussian()) } }
        let p = gaussians(users * rank, 0.3), q = gaussians(items * rank, 0.3)
        let userBias = gaussians(users, 0.35), itemBias = gaussians(items, 0.4)
        let mean: Float = 3.55

        let writer = try LineWriter(path: path)
        var header = path.hasSuffix(".csv") || path.hasSuffix(".csv.gz")
        let separator = header ? UInt8(ascii: ",") : 0x09
        if header {
            writer.append("userId,movieId,rating,timestamp\n")
            header = false
        }
        var chosen = [Bool](repeating: false, count: items)
        var list: [Int] = []
        var written = 0
        var timestamp: Int64 = 874_724_710
        for u in 0..<users {
            list.removeAll(keepingCapacity: true)
            while list.count < counts[u] {
                let x = rng.nextDouble() * totalWeight
                var lo = 0, hi = items - 1
                while lo < hi {
                    let mid = (lo + hi) / 2
                    if cdf[mid] < x { lo = mid + 1 } else { hi = mid }
                }
                if !chosen[lo] {
                    chosen[lo] = true
                    list.append(lo)
                }
            }
            list.sort()
            for i in list {
                chosen[i] = false
                var score = mean + userBias[u] + itemBias[i] + Float(0.8 * rng.nextGaussian())
                for f in 0..<rank { score += 3 * p[u * rank + f] * q[i * rank + f] }
                let rating = Int(min(5, max(1, score.rounded())))
                timestamp += Int64(rng.next(below: 600))
                writer.append(u + 1)
                writer.append(separator)
                writer.append(i + 1)
                writer.append(separator)
                writer.append(rating)
                writer.append(separator)
                writer.append(Int(timestamp))
                writer.append(UInt8(0x0A))
            }
            written += list.count
            try writer.flushIfNeeded()
            if let progress, u % 1024 == 0 { progress(Int64(written), Int64(ratings)) }
        }
        let bytes = try writer.finish()
        progress?(Int64(ratings), Int64(ratings))
        return Report(ratings: written, bytes: bytes, seconds: Date().timeIntervalSince(started))
    }
}
