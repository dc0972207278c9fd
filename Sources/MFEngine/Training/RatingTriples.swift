/// Ratings as three parallel columns of dense ids and values.
public struct RatingTriples: Sendable {
    public var users: [Int32]
    public var items: [Int32]
    public var ratings: [Float]

    public init(users: [Int32] = [], items: [Int32] = [], ratings: [Float] = []) {
        precondition(users.count == items.count && items.count == ratings.count)
        self.users = users
        self.items = items
        self.ratings = ratings
    }

    public var count: Int { ratings.count }

    public mutating func append(user: Int32, item: Int32, rating: Float) {
        users.append(user)
        items.append(item)
        ratings.append(rating)
    }
}
