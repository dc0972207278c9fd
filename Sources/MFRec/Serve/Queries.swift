import Foundation
import MFEngine
import MFStore

/// What to do for a user the model has no vector for (never seen, or added after the last training).
public enum ColdStartPolicy: String, Sendable, CaseIterable {
    /// Recommend the most popular well-rated items (see `Recommender.popularItems`).
    case popular
    /// Fail with `QueryError.coldUser`.
    case error
}

public enum QueryError: Error, CustomStringConvertible, Sendable, Equatable {
    case unknownUser(String)
    case coldUser(String)
    case unknownItem(String)
    case noModel
    case noRankingModel

    public var description: String {
        switch self {
        case .unknownUser(let key): return "user \(key) is not in the database"
        case .coldUser(let key):
            return
                "user \(key) is cold: no vector in the live model (no ratings when it was trained), or fewer ratings than --min-ratings"
        case .unknownItem(let key): return "item \(key) is not in the database"
        case .noModel: return "there is no model yet; run `mfrec train` first"
        case .noRankingModel: return "the live snapshot has no ranking model; run `mfrec train` to fit one"
        }
    }
}

/// One recommended item.
public struct Recommendation: Sendable, Codable, Equatable {
    public var rank: Int
    public var item: String
    public var title: String?
    /// The model's predicted rating, clipped to the scale.
    public var predictedRating: Double
    /// For `--explain`: the user's own highly rated items closest to this one in the embedding space.
    public var because: [Reason]?

    public struct Reason: Sendable, Codable, Equatable {
        public var item: String
        public var title: String?
        public var rating: Double
        /// Cosine similarity of the two item vectors.
        public var similarity: Double
    }
}

/// Which ranking answered a top-n query (the JSON's "ranking").
public typealias Ranking = Ranker

/// The answer to a top-n query.
public struct RecommendationList: Sendable, Codable, Equatable {
    public var user: String
    /// True when the popular-items fallback answered (no ratings or no vector to rank by).
    public var coldStart: Bool
    public var ranking: Ranking
    public var items: [Recommendation]

    public init(user: String, ranking: Ranking, items: [Recommendation]) {
        self.user = user
        self.coldStart = ranking == .popular
        self.ranking = ranking
        self.items = items
    }
}

/// A similar item.
public struct SimilarItem: Sendable, Codable, Equatable {
    public var rank: Int
    public var item: String
    public var title: String?
    public var similarity: Double
}

/// Answers queries against the live model: top-n, predictions, similar items.
///
/// Opened once, it maps the item matrix file (rebuilding it from the live snapshot when it is
/// missing, stale or corrupt) and holds the user factors in memory. It is safe to use from many
/// threads at once: the mapping is read-only, database look-ups take a read-only connection of their own
/// from a small pool, and the cached model state is guarded by a lock.
public final class QueryEngine: @unchecked Sendable {
    let pool: ReadPool
    /// The item matrix file this engine maps.
    public let itemMatrixPath: String
    private let lock = NSLock()
    // Guarded by `lock`: replaced together when the live model changes.
    private var state: LiveState
    private var mapped: ItemMatrix
    /// Whether the item matrix file had to be (re)built when this engine was opened.
    public let rebuiltMatrix: Bool

    init(path: String, itemMatrixPath: String, readOnly: Bool) throws {
        pool = try ReadPool(path: path, readOnly: readOnly)
        self.itemMatrixPath = itemMatrixPath
        state = try pool.read { try ModelReader(store: $0).liveState() }
        (mapped, rebuiltMatrix) = try QueryEngine.openMatrix(path: itemMatrixPath, state: state)
    }

    /// The database file this engine reads.
    public var path: String { pool.path }

    /// Where the item matrix lives: beside the database, or — when that folder cannot be written and the
    /// file there is unusable — in the temp folder.
    static func fallbackPath(for path: String) -> String {
        var hash: UInt64 = 14_695_981_039_346_656_037
        for b in path.utf8 { hash = (hash ^ UInt64(b)) &* 1_099_511_628_211 }
        return (NSTemporaryDirectory() as NSString).appendingPathComponent("mfrec-\(String(hash, radix: 16)).items")
    }

    /// The mapped item matrix now in use.
    public var matrix: ItemMatrix { current().matrix }
    /// The live model now in use (user vectors come from it; item vectors from the matrix).
    var model: FactorModel { current().model }
    public var snapshotID: Int { lock.withLock { state.snapshot.id } }

    /// Maps the item matrix file, rebuilding it first when it does not match the live model.
    static func openMatrix(path: String, state: LiveState) throws -> (ItemMatrix, Bool) {
        let generation = UInt64(state.live.generation), snapshotID = UInt64(state.snapshot.id)
        do {
            return (
                try ItemMatrix.open(
                    path: path, generation: generation, snapshotID: snapshotID,
                    factors: state.model.factors, itemCount: state.model.itemCount), false
            )
        } catch let error as ItemMatrixError {
            if case .io = error { throw error }
            var target = path
            do {
                try ItemMatrix.write(model: state.model, generation: generation, snapshotID: snapshotID, to: path)
            } catch {
                // A read-only folder: keep a private copy in the temp folder instead.
                target = fallbackPath(for: path)
                if (try? ItemMatrix.open(
                    path: target, generation: generation, snapshotID: snapshotID,
                    factors: state.model.factors, itemCount: state.model.itemCount)) == nil
                {
                    try ItemMatrix.write(model: state.model, generation: generation, snapshotID: snapshotID, to: target)
                }
            }
            return (
                try ItemMatrix.open(
                    path: target, generation: generation, snapshotID: snapshotID,
                    factors: state.model.factors, itemCount: state.model.itemCount), true
            )
        }
    }

    /// The model and matrix to answer with. When another connection or process changed the live
    /// model (a new generation), the engine reloads it first: a long-lived engine follows training,
    /// rollbacks and incremental updates without being reopened.
    func current() -> (model: FactorModel, matrix: ItemMatrix) {
        lock.lock()
        defer { lock.unlock() }
        if let generation = try? pool.read({ try $0.liveGeneration() }), generation != state.live.generation,
            let fresh = try? pool.read({ try ModelReader(store: $0).liveState() })
        {
            // Rows updated in place are already visible through the shared mapping; anything else
            // (new items, another snapshot, a stale header) means mapping the file again.
            let sameFile =
                mapped.itemCount == fresh.model.itemCount && mapped.snapshotID == UInt64(fresh.snapshot.id)
                && mapped.mappedGeneration == UInt64(fresh.live.generation)
            if !sameFile, let (matrix, _) = try? QueryEngine.openMatrix(path: itemMatrixPath, state: fresh) {
                mapped = matrix
                state = fresh
            } else if sameFile {
                state = fresh
            }
        }
        return (state.model, mapped)
    }

    func locked<R>(_ body: () throws -> R) rethrows -> R {
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }

    // Guarded by `lock`: item keys and titles already looked up (they never change for an id).
    private var itemInfo: [Int: Store.ItemInfo] = [:]

    /// An item's key and title, from memory after the first look-up.
    func item(_ id: Int) throws -> Store.ItemInfo? {
        if let cached = locked({ itemInfo[id] }) { return cached }
        let info = try pool.read { try $0.item(id: id) }
        if let info { locked { if itemInfo.count < 1_000_000 { itemInfo[id] = info } } }
        return info
    }

    /// The dense id of a user key, and whether the model has a vector for it.
    func resolveUser(_ key: String, in model: FactorModel) throws -> (id: Int, hasVector: Bool)? {
        guard let id = try pool.read({ try $0.userID(forKey: key) }) else { return nil }
        return (id, model.hasUser(id))
    }

    /// Without a ranking model (a snapshot trained before it existed, or `--ranking off`), users with
    /// fewer ratings than this are ranked by co-occurrence by default (see `recommend`).
    public static let defaultCooccurrenceBelow = 20

    /// The rankers and rule that lists come from (see `ListRankers`).
    func listRankers(cooccurrenceBelow: Int) throws -> ListRankers {
        let stored = try rankingModel()
        return ListRankers(
            ranking: stored?.0, choice: stored?.1, embeddingSource: { [self] in try cooccurrence() },
            popular: try popularList(), cooccurrenceBelow: cooccurrenceBelow)
    }

    /// The top-n items for a user (by the id of the ratings file).
    ///
    /// Which ranking answers (`by: nil`): a user unknown to the database, or with fewer than `minRatings`
    /// ratings, gets the popular list (or `QueryError` with `cold: .error`). Otherwise the ranker that
    /// validation chose at training time for a user with this many ratings: the ranking model (see
    /// `RankingModel`), or for light users the co-occurrence embedding or the popular list (see
    /// `RankingChoice`). A snapshot without a ranking model ranks as before it existed: co-occurrence below
    /// `cooccurrenceBelow` ratings, the rating model's largest predictions above. `by` asks for one
    /// ranker; where it has nothing to rank by (no vector), the popular list answers.
    /// `predictedRating` is always the rating model's prediction (its fallback μ + known bias where it
    /// has no vector), whatever ranked.
    public func recommend(
        user key: String, n: Int = 10, includeRated: Bool = false, cold: ColdStartPolicy = .popular,
        explain: Bool = false, threads: Int = 1, minRatings: Int = 0,
        cooccurrenceBelow: Int = QueryEngine.defaultCooccurrenceBelow, by: Ranker? = nil
    ) throws -> RecommendationList {
        let (model, matrix) = current()
        guard let (user, known) = try resolveUser(key, in: model) else {
            if cold == .error { throw QueryError.unknownUser(key) }
            return RecommendationList(user: key, ranking: .popular, items: try popular(n: n, excluding: []))
        }
        let rated = try pool.read { try $0.ratings(ofUser: user) }
        let ratedIDs = rated.map { Int32($0.item) }
        let excluded = includeRated ? [] : ratedIDs
        func coldList() throws -> RecommendationList {
            if cold == .error { throw QueryError.coldUser(key) }
            return RecommendationList(user: key, ranking: .popular, items: try popular(n: n, excluding: Set(excluded)))
        }
        guard ratedIDs.count >= minRatings else { return try coldList() }
        let rankers = try listRankers(cooccurrenceBelow: cooccurrenceBelow)
        let (ranker, weight) =
            by.map(rankers.explicitRule) ?? rankers.defaultRule(ratingCount: ratedIDs.count, hasVector: known)
        func listing(
            _ top: [(item: Int32, score: Float)], _ ranking: Ranker,
            reasons: (Int) throws -> [Recommendation.Reason]
        ) throws -> RecommendationList {
            var items: [Recommendation] = []
            for (rank, hit) in top.enumerated() {
                let item = Int(hit.item), info = try self.item(item)
                var rec = Recommendation(
                    rank: rank + 1, item: info?.key ?? String(item), title: info?.title,
                    predictedRating: Double(model.predictOrFallback(user: user, knownUser: known, item: item)))
                if explain { rec.because = try reasons(item) }
                items.append(rec)
            }
            return RecommendationList(user: key, ranking: ranking, items: items)
        }
        let ratings = rated.map { (item: Int32($0.item), rating: Float($0.rating)) }
        switch ranker {
        case .popular:
            return try coldList()
        case .ranking:
            guard let ranking = rankers.ranking else {
                if by == .ranking { throw QueryError.noRankingModel }
                return try coldList()
            }
            guard
                let top = try rankers.top(
                    .ranking, popularityWeight: weight, ratings: ratings, n: n, excluded: Set(excluded))
            else {
                return try coldList()
            }
            return try listing(top, .ranking) { item in
                try closest(among: rated) { candidate in
                    let similarity = ranking.cosine(candidate, item)
                    return similarity > 0 ? similarity : nil
                }
            }
        case .cooccurrence:
            guard let embedding = try rankers.embedding,
                let top = try rankers.top(
                    .cooccurrence, popularityWeight: weight, ratings: ratings, n: n, excluded: Set(excluded))
            else {
                return try coldList()
            }
            return try listing(top, .cooccurrence) {
                try cooccurrenceReasons(for: $0, rated: rated, embedding: embedding)
            }
        case .rating:
            guard known else { return try coldList() }
            let query = matrix.queryVector(model.userVector(user))
            let top = matrix.topN(query: query, n: n, excluded: excluded, threads: threads)
            return try listing(top, .rating) { try reasons(for: $0, rated: rated, model: model, matrix: matrix) }
        }
    }

    // Guarded by `lock`: the popular list, with the live snapshot it was read for.
    private var popularCache: (snapshot: Int, value: [PopularItem])?

    /// The popular list of the last training, decoded again only when the live snapshot changes (training
    /// writes it with the snapshot it makes live).
    func popularList() throws -> [PopularItem] {
        let snapshot = snapshotID
        return try locked {
            if let popularCache, popularCache.snapshot == snapshot { return popularCache.value }
            let value = try pool.read { try ModelReader(store: $0).popularItems() }
            popularCache = (snapshot, value)
            return value
        }
    }

    // Guarded by `lock`: the live snapshot's ranking model, with the snapshot it was read from.
    private var ranking: (snapshot: Int, value: (RankingModel, RankingChoice)?)?

    /// The ranking model of the live snapshot (nil when it has none), read again only when the live
    /// snapshot changes.
    public func rankingModel() throws -> (RankingModel, RankingChoice)? {
        let snapshot = snapshotID
        return try locked {
            if let ranking, ranking.snapshot == snapshot { return ranking.value }
            let value = try pool.read { try ModelReader(store: $0).rankingModel(snapshot: snapshot) }
            ranking = (snapshot, value)
            return value
        }
    }

    // Guarded by `lock`: the co-occurrence embedding, with the stored version it was read at.
    private var embedding: (version: Int64, value: CooccurrenceEmbedding)?

    /// The co-occurrence embedding of the last training (nil when there is none), read again only when
    /// a newer one was stored.
    func cooccurrence() throws -> CooccurrenceEmbedding? {
        try locked {
            guard let version = try pool.read({ try $0.cooccurrenceVersion() }) else { return nil }
            if let embedding, embedding.version == version { return embedding.value }
            guard let record = try pool.read({ try $0.cooccurrence() }),
                let value = CooccurrenceEmbedding(
                    factors: record.factors, itemCount: record.itemCount,
                    exponent: record.exponent, encoded: record.vectors)
            else {
                throw StoreError(
                    "\(path): the co-occurrence embedding does not match its recorded size; run `mfrec train` to fit it again"
                )
            }
            embedding = (record.version, value)
            return value
        }
    }

    /// The user's rated items that co-occur most with `item` (cosine of their embedding vectors).
    private func cooccurrenceReasons(
        for item: Int, rated: [(item: Int, rating: Double)], embedding: CooccurrenceEmbedding
    ) throws
        -> [Recommendation.Reason]
    {
        try closest(among: rated) { candidate in
            let similarity = embedding.cosine(candidate, item)
            return similarity > 0 ? similarity : nil
        }
    }

    /// The user's items rated at or above their own mean (and at least the scale's midpoint), most
    /// similar to `item` by cosine of the item vectors: "because you rated …".
    private func reasons(for item: Int, rated: [(item: Int, rating: Double)], model: FactorModel, matrix: ItemMatrix)
        throws
        -> [Recommendation.Reason]
    {
        guard !rated.isEmpty else { return [] }
        let mean = rated.reduce(0) { $0 + $1.rating } / Double(rated.count)
        let midpoint = Double(model.scaleMin + model.scaleMax) / 2
        let liked = rated.filter { $0.rating >= max(mean, midpoint) }
        let target = matrix.item(item).vector
        let targetNorm = norm(target)
        guard targetNorm > 0 else { return [] }
        return try closest(among: liked) { candidate in
            guard candidate < matrix.itemCount else { return nil }
            let v = matrix.item(candidate).vector
            let n = norm(v)
            return n > 0 ? zip(v, target).reduce(0) { $0 + $1.0 * $1.1 } / (n * targetNorm) : nil
        }
    }

    /// The (at most) `count` candidates with the largest similarity (nil: not a candidate), as reasons.
    private func closest(
        among candidates: [(item: Int, rating: Double)], count: Int = 3,
        similarity: (Int) -> Float?
    ) throws -> [Recommendation.Reason] {
        var top = TopN(capacity: count)
        for entry in candidates {
            if let s = similarity(entry.item) { top.offer(score: s, item: Int32(entry.item)) }
        }
        let ratingOf = Dictionary(uniqueKeysWithValues: candidates.map { ($0.item, $0.rating) })
        return try top.sorted().map { hit in
            let info = try self.item(Int(hit.item))
            return .init(
                item: info?.key ?? String(hit.item), title: info?.title, rating: ratingOf[Int(hit.item)] ?? 0,
                similarity: Double(hit.score))
        }
    }

    private func norm(_ v: [Float]) -> Float { v.reduce(0) { $0 + $1 * $1 }.squareRoot() }

    /// The popular-items fallback: items ranked by how many ratings in the top quarter of the scale
    /// they received in the live model's training data (ties by id), minus `excluding`; the rating shown
    /// is the item's mean rating.
    func popular(n: Int, excluding: Set<Int32>) throws -> [Recommendation] {
        let ranked = try popularList()
        var out: [Recommendation] = []
        for entry in ranked where !excluding.contains(entry.id) {
            guard out.count < n else { break }
            let info = try self.item(Int(entry.id))
            out.append(
                Recommendation(
                    rank: out.count + 1, item: info?.key ?? String(entry.id), title: info?.title,
                    predictedRating: entry.mean))
        }
        return out
    }

    /// The predicted rating of (user, item); the fallback μ + known bias when either has no vector.
    public func predict(user userKey: String, item itemKey: String) throws -> (rating: Double, fallback: Bool) {
        let model = current().model
        guard let item = try pool.read({ try $0.itemID(forKey: itemKey) }) else {
            throw QueryError.unknownItem(itemKey)
        }
        let user = try resolveUser(userKey, in: model)
        let knownUser = user?.hasVector ?? false
        return (
            Double(model.predictOrFallback(user: user?.id ?? 0, knownUser: knownUser, item: item)),
            !(knownUser && model.hasItem(item))
        )
    }

    /// The items nearest to `item` by cosine similarity of their vectors: the rating model's item vectors
    /// (`by: .rating`, the default) or the ranking model's (`by: .ranking`).
    public func similar(item key: String, n: Int = 10, by ranker: Ranker = .rating) throws -> [SimilarItem] {
        let matrix = current().matrix
        guard let id = try pool.read({ try $0.itemID(forKey: key) }) else { throw QueryError.unknownItem(key) }
        if ranker == .ranking {
            guard let (ranking, _) = try rankingModel() else { throw QueryError.noRankingModel }
            guard id < ranking.itemCount else { return [] }
            var top = TopN(capacity: n + 1)
            for other in 0..<ranking.itemCount where other != id {
                let similarity = ranking.cosine(id, other)
                if similarity != 0 { top.offer(score: similarity, item: Int32(other)) }
            }
            return try top.sorted().prefix(n).enumerated().map { rank, hit in
                let info = try self.item(Int(hit.item))
                return SimilarItem(
                    rank: rank + 1, item: info?.key ?? String(hit.item), title: info?.title,
                    similarity: Double(hit.score))
            }
        }
        guard id < matrix.itemCount else { return [] }
        return try matrix.similar(to: id, n: n).enumerated().map { rank, hit in
            let info = try self.item(Int(hit.item))
            return SimilarItem(
                rank: rank + 1, item: info?.key ?? String(hit.item), title: info?.title, similarity: Double(hit.score))
        }
    }
}

extension Recommender {
    /// Where the top quarter of a rating scale starts (4 on 1–5): what the popular list counts and what
    /// validation calls relevant.
    static func topQuarter(of scale: ClosedRange<Double>) -> Double {
        scale.lowerBound + 0.75 * (scale.upperBound - scale.lowerBound)
    }

    /// Ranks items by their count of training ratings in the top quarter of the scale (ties by id) and
    /// keeps the first 1,000, each with its mean over training and test ratings.
    static func rankPopular(train: RatingTriples, test: RatingTriples, itemCount: Int, scale: ClosedRange<Double>)
        -> [PopularItem]
    {
        let threshold = Float(topQuarter(of: scale))
        var counts = [Int](repeating: 0, count: itemCount)
        var sums = [Double](repeating: 0, count: itemCount), n = [Int](repeating: 0, count: itemCount)
        for (i, r) in zip(train.items, train.ratings) where r >= threshold { counts[Int(i)] += 1 }
        for set in [train, test] {
            for (i, r) in zip(set.items, set.ratings) where Int(i) < itemCount {
                sums[Int(i)] += Double(r)
                n[Int(i)] += 1
            }
        }
        var ranked: [Int] = (0..<itemCount).filter { counts[$0] > 0 }
        ranked.sort { (a: Int, b: Int) -> Bool in counts[a] != counts[b] ? counts[a] > counts[b] : a < b }
        return ranked.prefix(1000).map { PopularItem(id: Int32($0), mean: sums[$0] / Double(n[$0])) }
    }
}

/// One entry of the popular-items fallback.
struct PopularItem: Codable, Sendable {
    var id: Int32
    var mean: Double
}
