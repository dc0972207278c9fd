import Foundation
import MFEngine
import MFStore

/// What to do for a user the model has no vector for (never seen, or added after the last training).
public enum ColdStartPolicy: String, Sendable, CaseIterable {
    /// Recommend the most popular well-rated items (see `Recommender.popularItems`).
    case popular
    /// Fail with `MFRecError.coldUser`.
    case error
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
    /// - Parameters:
    ///   - user: the user's key.
    ///   - ranking: the ranker that ordered it (`.popular` marks a cold start).
    ///   - items: the items, best first.
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
