import Dispatch

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

    /// Two sets in strictly ascending (user, item) order, merged into one in that order (a pair in both
    /// comes from `a` only).
    /// - Parameters:
    ///   - a: one set, in (user, item) order.
    ///   - b: the other, in (user, item) order.
    /// - Returns: the union, in (user, item) order.
    public static func merged(_ a: RatingTriples, _ b: RatingTriples) -> RatingTriples {
        var out = RatingTriples()
        out.reserve(a.count + b.count)
        func key(_ t: RatingTriples, _ j: Int) -> Int64 {
            Int64(t.users[j]) << 32 | Int64(UInt32(bitPattern: t.items[j]))
        }
        var i = 0, j = 0
        while i < a.count || j < b.count {
            if j == b.count || (i < a.count && key(a, i) <= key(b, j)) {
                if j < b.count && key(a, i) == key(b, j) { j += 1 }
                out.append(user: a.users[i], item: a.items[i], rating: a.ratings[i])
                i += 1
            } else {
                out.append(user: b.users[j], item: b.items[j], rating: b.ratings[j])
                j += 1
            }
        }
        return out
    }

    /// Ratings in three columns split in two by `isSecond`, each side in the columns' order; `parts` threads
    /// each take a contiguous share (a first pass counts each share's sides, a second writes them in place).
    /// - Parameters:
    ///   - users: user ids.
    ///   - items: item ids (as many).
    ///   - ratings: ratings (as many).
    ///   - requested: threads.
    ///   - isSecond: whether (user, item) goes to the second set.
    /// - Returns: (the rest, those `isSecond` picked).
    public static func split(
        users: UnsafeBufferPointer<Int32>, items: UnsafeBufferPointer<Int32>, ratings: UnsafeBufferPointer<Float>,
        parts requested: Int, _ isSecond: @escaping @Sendable (Int32, Int32) -> Bool
    ) -> (RatingTriples, RatingTriples) {
        precondition(users.count == items.count && items.count == ratings.count)
        let n = users.count
        let parts = max(1, min(requested, n / 100_000))
        // Pass 1: which side each rating goes to, and how many per share.
        var sides = [Bool](repeating: false, count: n)
        let seconds = ThreadSlots<Int>(count: parts)
        sides.withUnsafeMutableBufferPointer { sides in
            let shared = Shared((sides: sides, users: users, items: items))
            DispatchQueue.concurrentPerform(iterations: parts) { part in
                let (sides, users, items) = shared.value
                var count = 0
                for j in share(part, of: parts, n) {
                    let second = isSecond(users[j], items[j])
                    sides[j] = second
                    count += second ? 1 : 0
                }
                seconds.set(part, count)
            }
        }
        let secondTotal = (0..<parts).reduce(0) { $0 + seconds.value($1)! }
        // Pass 2: each column's ratings copied to their side (into arrays made at their final size).
        func pick<T>(_ column: UnsafeBufferPointer<T>, second: Bool) -> [T] {
            let count = second ? secondTotal : n - secondTotal
            return [T](unsafeUninitializedCapacity: count) { out, initialized in
                sides.withUnsafeBufferPointer { sides in
                    var k = 0
                    for j in 0..<n where sides[j] == second {
                        out.initializeElement(at: k, to: column[j])
                        k += 1
                    }
                    precondition(k == count)
                }
                initialized = count
            }
        }
        return (
            RatingTriples(
                users: pick(users, second: false), items: pick(items, second: false),
                ratings: pick(ratings, second: false)),
            RatingTriples(
                users: pick(users, second: true), items: pick(items, second: true), ratings: pick(ratings, second: true)
            )
        )
    }

    /// Ratings in any order, possibly with repeated pairs, as the stored set: the last value of each pair, in
    /// (user, item) order (a counting sort by user, then each user's items sorted).
    /// - Parameters:
    ///   - ratings: the ratings in the order they were written.
    ///   - userCount: users (every id below it).
    /// - Returns: one rating per pair, in (user, item) order.
    public static func latestPerPair(_ ratings: RatingTriples, userCount: Int) -> RatingTriples {
        precondition(ratings.count < 1 << 32, "RatingTriples.latestPerPair: positions are kept in 32 bits")
        var starts = [Int](repeating: 0, count: userCount + 1)
        for u in ratings.users { starts[Int(u) + 1] += 1 }
        for u in 0..<userCount { starts[u + 1] += starts[u] }
        // Per user, keys (item << 32 | position in the input): sorted, they put a user's items in order and a
        // repeated pair's writes in the order they were made.
        var next = starts
        var keys = [UInt64](repeating: 0, count: ratings.count)
        ratings.users.withUnsafeBufferPointer { users in
            ratings.items.withUnsafeBufferPointer { items in
                keys.withUnsafeMutableBufferPointer { keys in
                    for j in 0..<users.count {
                        let u = Int(users[j])
                        keys[next[u]] = UInt64(UInt32(bitPattern: items[j])) << 32 | UInt64(j)
                        next[u] += 1
                    }
                    for u in 0..<userCount where starts[u + 1] - starts[u] > 1 {
                        var mine = UnsafeMutableBufferPointer(rebasing: keys[starts[u]..<starts[u + 1]])
                        mine.sort()
                    }
                }
            }
        }
        var out = RatingTriples()
        out.reserve(ratings.count)
        for u in 0..<userCount {
            var k = starts[u]
            while k < starts[u + 1] {
                // The last write of the pair wins.
                while k + 1 < starts[u + 1] && keys[k + 1] >> 32 == keys[k] >> 32 { k += 1 }
                let j = Int(keys[k] & 0xFFFF_FFFF)
                out.append(user: Int32(u), item: ratings.items[j], rating: ratings.ratings[j])
                k += 1
            }
        }
        return out
    }

}
