import Foundation

/// Error metrics of predictions against true ratings.
public struct ErrorMetrics: Sendable, Codable, Equatable {
    /// Ratings scored.
    public var count: Int
    /// Mean absolute error.
    public var mae: Double
    /// Mean squared error.
    public var mse: Double
    /// Root mean squared error.
    public var rmse: Double { mse.squareRoot() }

    /// Metrics over `count` ratings.
    /// - Parameters:
    ///   - count: ratings.
    ///   - mae: mean absolute error.
    ///   - mse: mean squared error.
    public init(count: Int, mae: Double, mse: Double) {
        self.count = count
        self.mae = mae
        self.mse = mse
    }

    private enum CodingKeys: String, CodingKey { case count, mae, mse, rmse }

    /// Decodes count, MAE and MSE (RMSE follows from MSE).
    /// - Parameter decoder: the JSON.
    /// - Throws: `DecodingError` for a missing or mistyped field.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            count: try c.decode(Int.self, forKey: .count), mae: try c.decode(Double.self, forKey: .mae),
            mse: try c.decode(Double.self, forKey: .mse))
    }

    /// Encodes count, MAE, MSE and RMSE (so JSON readers need not take a square root).
    /// - Parameter encoder: the JSON.
    /// - Throws: what the encoder throws.
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(count, forKey: .count)
        try c.encode(mae, forKey: .mae)
        try c.encode(mse, forKey: .mse)
        try c.encode(rmse, forKey: .rmse)
    }

    /// MAE and MSE of `predictions` against `truth`.
    /// - Parameters:
    ///   - predictions: the predictions.
    ///   - truth: the ratings, as many.
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
    /// The list length scored.
    public var k: Int
    /// Users scored.
    public var users: Int
    /// Mean precision@k.
    public var precision: Double
    /// Mean recall@k.
    public var recall: Double
    /// Mean NDCG@k.
    public var ndcg: Double
    /// Mean average precision@k.
    public var map: Double
    /// Share of users with at least one relevant item in their list.
    public var hitRate: Double
    /// Share of the catalog that appears in at least one user's top K.
    public var coverage: Double

    /// Metrics from their parts.
    /// - Parameters:
    ///   - k: the list length.
    ///   - users: users averaged over.
    ///   - precision: precision@k.
    ///   - recall: recall@k.
    ///   - ndcg: NDCG@k.
    ///   - map: MAP@k.
    ///   - hitRate: the share of users with a hit.
    ///   - coverage: the share of items in some list.
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
    /// The list length scored.
    public let k: Int
    /// The catalog size (for coverage).
    public let itemCount: Int
    private var users = 0
    private var precision = 0.0, recall = 0.0, ndcg = 0.0, map = 0.0, hits = 0.0
    private var recommended: Set<Int32> = []

    /// An empty accumulator.
    /// - Parameters:
    ///   - k: the list length.
    ///   - itemCount: items (for coverage).
    public init(k: Int, itemCount: Int) {
        self.k = k
        self.itemCount = itemCount
    }

    /// Adds one user's ranked list (best first, at most K long) and their relevant items.
    /// Users without relevant items still count toward coverage but not toward the averages.
    /// - Parameters:
    ///   - ranked: the user's list.
    ///   - relevant: the user's relevant test items.
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

    /// The means over the users added so far.
    public var result: RankingMetrics {
        let n = Double(max(users, 1))
        return RankingMetrics(
            k: k, users: users, precision: precision / n, recall: recall / n, ndcg: ndcg / n,
            map: map / n, hitRate: hits / n,
            coverage: itemCount > 0 ? Double(recommended.count) / Double(itemCount) : 0)
    }
}
