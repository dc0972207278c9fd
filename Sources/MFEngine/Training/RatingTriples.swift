/// Ratings as three parallel columns of dense ids and values.
public struct RatingTriples: Sendable {
    /// Dense user ids.
    public var users: [Int32]
    /// Dense item ids.
    public var items: [Int32]
    /// The ratings.
    public var ratings: [Float]

    /// Triples from three columns of the same length.
    /// - Parameters:
    ///   - users: user ids.
    ///   - items: item ids.
    ///   - ratings: values.
    public init(users: [Int32] = [], items: [Int32] = [], ratings: [Float] = []) {
        precondition(users.count == items.count && items.count == ratings.count)
        self.users = users
        self.items = items
        self.ratings = ratings
    }

    /// Ratings held.
    public var count: Int { ratings.count }

    /// Adds one rating.
    /// - Parameters:
    ///   - user: the user's id.
    ///   - item: the item's id.
    ///   - rating: the value.
    public mutating func append(user: Int32, item: Int32, rating: Float) {
        users.append(user)
        items.append(item)
        ratings.append(rating)
    }

    /// Reserves room for `count` ratings in all three columns.
    /// - Parameter count: ratings in all.
    public mutating func reserve(_ count: Int) {
        users.reserveCapacity(count)
        items.reserveCapacity(count)
        ratings.reserveCapacity(count)
    }

    /// Adds another set's ratings after these.
    /// - Parameter other: the other set.
    public mutating func append(contentsOf other: RatingTriples) {
        users.append(contentsOf: other.users)
        items.append(contentsOf: other.items)
        ratings.append(contentsOf: other.ratings)
    }
}
