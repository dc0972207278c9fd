import Foundation

/// Error metrics of predictions against true ratings.
public struct ErrorMetrics: Sendable, Codable, Equatable {
    public var count: Int
    public var mae: Double
    public var mse: Double
    public var rmse: Double { mse.squareRoot() }

    public init(count: Int, mae: Double, mse: Double) {
        self.count = count
        self.mae = mae
        self.mse = mse
    }

    /// MAE and MSE of `predictions` against `truth`.
    public init(predictions: [Float], truth: [Float]) {
        precondition(predictions.count == truth.count)
        var abs = 0.0, sq = 0.0
        for (p, t) in zip(predictions, truth) {
            let e = Double(t) - Double(p)
            abs += Swift.abs(e)
            sq += e * e
        }
        let n = max(predictions.count, 1)
        self.init(count: predictions.count, mae: abs / Double(n), mse: sq / Double(n))
    }
}

/// Ranking metrics at a cut-off K, averaged over the users that have at least one relevant test item.
public struct RankingMetrics: Sendable, Codable, Equatable {
    public var k: Int
    public var users: Int
    public var precision: Double
    public var recall: Double
    public var ndcg: Double
    public var map: Double
    public var hitRate: Double
    /// Share of the catalog that appears in at least one user's top K.
    public var coverage: Double

    public init(
        k: Int, users: Int, precision: Double, recall: Double, ndcg: Double, map: Double, hitRate: Double,
        coverage: Double
    ) {
        self.k = k
        self.users = users
        self.precision = precision
        self.recall = recall
        self.ndcg = ndcg
        self.map = map
        self.hitRate = hitRate
        self.coverage = coverage
    }
}

/// Accumulates ranking metrics one user at a time.
public struct RankingAccumulator: Sendable {
    public let k: Int
    public let itemCount: Int
    private var users = 0
    private var precision = 0.0, recall = 0.0, ndcg = 0.0, map = 0.0, hits = 0.0
    private var recommended: Set<Int32> = []

    public init(k: Int, itemCount: Int) {
        self.k = k
        self.itemCount = itemCount
    }

    /// Adds one user's ranked list (best first, at most K long) and their relevant items.
    /// Users without relevant items still count toward coverage but not toward the averages.
    public mutating func add(ranked: [Int32], relevant: Set<Int32>) {
        for item in ranked.prefix(k) { recommended.insert(item) }
        guard !relevant.isEmpty else { return }
        users += 1
        var found = 0
        var dcg = 0.0, apSum = 0.0
        for (rank, item) in ranked.prefix(k).enumerated() where relevant.contains(item) {
            found += 1
            dcg += 1 / log2(Double(rank) + 2)
            apSum += Double(found) / Double(rank + 1)
        }
        let ideal = (0..<min(relevant.count, k)).reduce(0.0) { $0 + 1 / log2(Double($1) + 2) }
        precision += Double(found) / Double(k)
        recall += Double(found) / Double(relevant.count)
        ndcg += ideal > 0 ? dcg / ideal : 0
        map += apSum / Double(min(relevant.count, k))
        hits += found > 0 ? 1 : 0
    }

    public var result: RankingMetrics {
        let n = Double(max(users, 1))
        return RankingMetrics(
            k: k, users: users, precision: precision / n, recall: recall / n, ndcg: ndcg / n,
            map: map / n, hitRate: hits / n,
            coverage: itemCount > 0 ? Double(recommended.count) / Double(itemCount) : 0)
    }
}
