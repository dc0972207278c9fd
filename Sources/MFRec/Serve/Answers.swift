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

/// The errors of queries and of the operations that need a model.
public enum QueryError: Error, CustomStringConvertible, LocalizedError, Sendable, Equatable {
    case unknownUser(String)
    case coldUser(String)
    case unknownItem(String)
    /// The user has not rated the item (`deleteRating`).
    case noRating(user: String, item: String)
    /// The item is in the database but the model has no vector for it (no ratings it learned from).
    case noItemVector(String)
    case noModel
    case noRankingModel
    /// The live model changed but could not be loaded; the engine does not answer from the old one.
    case reloadFailed(String)
    /// There are no ratings yet (nothing to update or rate against).
    case noRatings
    /// The snapshot was trained on every rating: evaluating it needs a test file.
    case noTestSplit(snapshot: Int)
    /// The test set has no ratings.
    case emptyTestSet
    /// An output file could not be written.
    case cannotWrite(path: String, reason: String)
    /// A model handed to `importModel` does not fit the database (the reason says how).
    case modelMismatch(String)
    /// A genre filter names a genre no item has (the genres the item file gave are listed).
    case unknownGenre(String, known: [String])

    /// The message the command line prints.
    public var errorDescription: String? { description }

    /// What went wrong, and what to do about it.
    public var description: String {
        switch self {
        case .unknownUser(let key): return "user \(key) is not in the database"
        case .coldUser(let key):
            return
                "user \(key) is cold: no vector in the live model (no ratings when it was trained), or fewer "
                + "ratings than --min-ratings"
        case .unknownItem(let key): return "item \(key) is not in the database"
        case .noRating(let user, let item): return "user \(user) has not rated item \(item); nothing was changed"
        case .noItemVector(let key):
            return "item \(key) has no vector in the model yet (no ratings it was trained or updated on)"
        case .noModel: return "there is no model yet; run `mfrec train` first"
        case .noRankingModel: return "the live snapshot has no ranking model; run `mfrec train` to fit one"
        case .reloadFailed(let why): return "the live model changed but could not be loaded: \(why)"
        case .noRatings: return "there are no ratings yet: ingest a file and train a model before rating incrementally"
        case .noTestSplit(let id):
            return "snapshot \(id) was trained on every rating (no test split); give --test-file FILE"
        case .emptyTestSet: return "the test set is empty"
        case .cannotWrite(let path, let reason): return "cannot write \(path): \(reason)"
        case .modelMismatch(let why): return "the model does not fit this database: \(why); nothing was changed"
        case .unknownGenre(let genre, let known):
            return "no item has the genre \(genre); "
                + (known.isEmpty
                    ? "no genres were ingested (mfrec ingest --items FILE)"
                    : "the genres are: \(known.joined(separator: ", "))")
        }
    }
}

/// One recommended item.
public struct Recommendation: Sendable, Codable, Equatable {
    /// 1 for the best item.
    public var rank: Int
    /// The item's id as in the ratings file.
    public var item: String
    /// The item's title, when an item file gave one.
    public var title: String?
    /// The model's predicted rating, clipped to the scale.
    public var predictedRating: Double
    /// For `--explain`: the user's own highly rated items closest to this one in the embedding space.
    public var because: [Reason]?

    /// One of the user's own items that explains a recommendation.
    public struct Reason: Sendable, Codable, Equatable {
        /// The user's item, by its id in the ratings file.
        public var item: String
        /// Its title, when known.
        public var title: String?
        /// The user's rating of it.
        public var rating: Double
        /// Cosine similarity of the two item vectors.
        public var similarity: Double
    }
}

/// Which ranking answered a top-n query (the JSON's "ranking").
public typealias Ranking = Ranker

/// The answer to a top-n query.
public struct RecommendationList: Sendable, Codable, Equatable {
    /// The user, by the id of the ratings file.
    public var user: String
    /// True when the popular-items fallback answered (no ratings or no vector to rank by).
    public var coldStart: Bool
    /// Which ranker ordered the list.
    public var ranking: Ranking
    /// The items, best first.
    public var items: [Recommendation]

    /// A list for `user`, ordered by `ranking`.
    public init(user: String, ranking: Ranking, items: [Recommendation]) {
        self.user = user
        self.coldStart = ranking == .popular
        self.ranking = ranking
        self.items = items
    }
}

/// A similar item.
public struct SimilarItem: Sendable, Codable, Equatable {
    /// 1 for the most similar item.
    public var rank: Int
    /// The item's id as in the ratings file.
    public var item: String
    /// The item's title, when known.
    public var title: String?
    /// Cosine similarity of the two items' vectors.
    public var similarity: Double
}
