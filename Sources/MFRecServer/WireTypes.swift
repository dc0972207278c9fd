import Foundation
import MFRec

// The JSON bodies of the API (documented in openapi.yaml beside this file). Recommendation lists and
// similar items are the library's own Codable types, so the server and `recommend --format json` agree.

/// A rating as clients send it: ids as strings or integers.
struct RatingBody: Decodable {
    let user: String
    let item: String
    let rating: Double
    let timestamp: Int64?

    enum CodingKeys: String, CodingKey { case user, item, rating, timestamp }

    init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        user = try RatingBody.id(c, .user)
        item = try RatingBody.id(c, .item)
        rating = try c.decode(Double.self, forKey: .rating)
        timestamp = try c.decodeIfPresent(Int64.self, forKey: .timestamp)
    }

    private static func id(_ c: KeyedDecodingContainer<CodingKeys>, _ key: CodingKeys) throws -> String {
        if let text = try? c.decode(String.self, forKey: key) { return text }
        if let number = try? c.decode(Int64.self, forKey: key) { return String(number) }
        throw DecodingError.typeMismatch(
            String.self,
            .init(codingPath: c.codingPath + [key], debugDescription: "\(key.rawValue) must be a string or an integer"))
    }
}

/// `POST /v1/ratings`: one rating, or `{"ratings": [...]}`.
enum RatingsBody: Decodable {
    case one(RatingBody)
    case batch([RatingBody])

    enum CodingKeys: String, CodingKey { case ratings }

    init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        if c.contains(.ratings) {
            self = .batch(try c.decode([RatingBody].self, forKey: .ratings))
        } else {
            self = .one(try RatingBody(from: decoder))
        }
    }

    var ratings: [RatingBody] {
        switch self {
        case .one(let r): return [r]
        case .batch(let rs): return rs
        }
    }
}

/// What a rating post did.
struct RatingsApplied: Encodable {
    let applied: Int
    let newUsers: Int
    let newItems: Int
    /// The live model's generation after the update.
    let generation: Int64
}

struct PredictionBody: Encodable {
    let user: String
    let item: String
    /// The rating model's prediction, clipped to the scale.
    let predictedRating: Double
    /// True when the user or item has no vector: μ plus the known biases answered.
    let fallback: Bool
}

struct SimilarBody: Encodable {
    let item: String
    /// Whose item vectors: the rating model's or the ranking model's.
    let by: String
    let items: [SimilarItem]
}

struct LiveBody: Encodable {
    let snapshot: Int?
    let generation: Int64
    /// Ratings applied incrementally since the snapshot.
    let updatesSinceSnapshot: Int
    /// True when the live model has updates no snapshot holds.
    let dirty: Bool

    init(_ live: Store.LiveModel) {
        snapshot = live.snapshotID
        generation = live.generation
        updatesSinceSnapshot = live.updates
        dirty = live.dirty
    }
}

struct SnapshotBody: Encodable {
    let id: Int
    let createdAt: String
    let kind: String
    let note: String?
    let factors: Int
    let users: Int
    let items: Int
    let ratingsSeen: Int64
    let parent: Int?
    let live: Bool
    let testRMSE: Double?

    init(_ s: SnapshotInfo) {
        id = s.id
        createdAt = s.createdAt
        kind = s.kind
        note = s.note
        factors = s.factors
        users = s.userCount
        items = s.itemCount
        ratingsSeen = s.watermark
        parent = s.parentID
        live = s.isLive
        testRMSE = s.metrics?.test?.rmse
    }
}

struct SnapshotsBody: Encodable {
    let snapshots: [SnapshotBody]
    let live: LiveBody
}

struct NewSnapshotRequest: Decodable {
    let note: String?
}

struct NewSnapshotBody: Encodable {
    let id: Int
}

struct RollbackBody: Encodable {
    let snapshot: Int
    /// The snapshot the unsaved incremental updates were frozen into first, if there were any.
    let savedUpdatesAs: Int?
    let generation: Int64
}

struct InfoBody: Encodable {
    struct Scale: Encodable {
        let min: Double
        let max: Double
    }
    let users: Int
    let items: Int
    let ratings: Int
    let scale: Scale?
    let snapshots: Int
    let live: LiveBody
    /// The ranking model of the live snapshot and what validation chose (nil without one).
    let rankingModel: String?
    let rankingModelFactors: Int?
    /// The live snapshot's item matrix scan copy: f32 (none), f16 or i8 (nil before the first `train`).
    let itemPrecision: String?
}

struct HealthBody: Encodable {
    let status: String
    let generation: Int64
}
