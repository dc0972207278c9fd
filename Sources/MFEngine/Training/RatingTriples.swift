/// Ratings as three parallel columns of dense ids and values.
public struct RatingTriples: Sendable {
    /// Dense user ids.
    public var users: [Int32]
    /// Dense item ids.
    public var items: [Int32]
    /// The ratings.
    public var ratings: [Float]

    /// Triples from three columns of the same length.
    public init(users: [Int32] = [], items: [Int32] = [], ratings: [Float] = []) {
        precondition(users.count == items.count && items.count == ratings.count)
        self.users = users
        self.items = items
        self.ratings = ratings
    }

    /// Ratings held.
    public var count: Int { ratings.count }

    /// Adds one rating.
    public mutating func append(user: Int32, item: Int32, rating: Float) {
        users.append(user)
        items.append(item)
        ratings.append(rating)
    }
}
