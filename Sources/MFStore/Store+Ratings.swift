import Foundation
import Synchronization

/// The `ratings` table, with the rating scale and the sequence numbers that order its writes.
extension Store {
    /// Stored ratings.
    /// - Returns: the count.
    /// - Throws: `StoreError.sqlite` when SQLite fails.
    public func ratingCount() throws -> Int { Int(try db.scalarInt("SELECT count(*) FROM ratings") ?? 0) }
    /// The mean stored rating (nil when there are none).
    /// - Returns: the mean, or nil.
    /// - Throws: `StoreError.sqlite` when SQLite fails.
    public func meanRating() throws -> Double? { try db.scalarDouble("SELECT avg(rating) FROM ratings") }
    /// The sequence number of the latest rating write (0 when there are none).
    /// - Returns: the sequence number.
    /// - Throws: `StoreError.sqlite` when SQLite fails.
    public func maxSequence() throws -> Int64 {
        // The writer records the next sequence number with every write: one row, where max(seq) scans the
        // whole table (2–3 s at 25M ratings). No stored rating has a larger seq; a deleted one may have had it.
        if let next = try metadata("next_seq").flatMap(Int64.init) { return next - 1 }
        return try db.scalarInt("SELECT max(seq) FROM ratings") ?? 0
    }

    /// How many times stored ratings were deleted (forget, `mfrec delete`): with `maxSequence()`, what
    /// identifies the set of stored ratings (a write moves the sequence, a deletion this count), so a
    /// derived copy of the ratings (the training cache) can tell whether it still holds them.
    /// - Returns: the count (0 when nothing was ever deleted).
    /// - Throws: `StoreError.sqlite` when SQLite fails.
    public func ratingsEpoch() throws -> Int64 { try metadata("ratings_epoch").flatMap(Int64.init) ?? 0 }

    /// Counts one more deletion of ratings (inside the caller's transaction).
    func bumpRatingsEpoch() throws { try setMetadata("ratings_epoch", String(try ratingsEpoch() + 1)) }

    /// The rating scale: the smallest and largest rating ever ingested (or the scale given at ingest).
    /// - Returns: the scale, or nil before the first ingest.
    /// - Throws: `StoreError.sqlite` when SQLite fails.
    public func ratingScale() throws -> ClosedRange<Double>? {
        guard let lo = try metadata("scale_min").flatMap(Double.init),
            let hi = try metadata("scale_max").flatMap(Double.init)
        else { return nil }
        return lo...hi
    }

    /// Sets the rating scale.
    /// - Parameter scale: the scale.
    /// - Throws: `StoreError.sqlite` when SQLite fails.
    public func setRatingScale(_ scale: ClosedRange<Double>) throws {
        try transaction {
            try setMetadata("scale_min", String(scale.lowerBound))
            try setMetadata("scale_max", String(scale.upperBound))
        }
    }

    /// Runs `body` with a writer for new ratings, users, items and titles, in one transaction: the
    /// sequence numbers it hands out are recorded only if `body` returns.
    /// - Parameter body: the writes.
    /// - Returns: what `body` returns.
    /// - Throws: what `body` throws (nothing is written then), or a store error.
    public func writeRatings<R>(_ body: (RatingWriter) throws -> R) throws -> R {
        try transaction {
            let writer = try RatingWriter(store: self)
            let result = try body(writer)
            try writer.finish()
            return result
        }
    }

    /// The ids of the items a user rated, ascending (a range scan of the primary key).
    /// - Parameter user: the user's dense id.
    /// - Returns: the item ids.
    /// - Throws: `StoreError.sqlite` when SQLite fails.
    public func ratedItems(ofUser user: Int) throws -> [Int32] {
        try withStatement("SELECT item_id FROM ratings WHERE user_id = ? ORDER BY item_id") { stmt in
            try stmt.bind(Int64(user), at: 1)
            var out: [Int32] = []
            while try stmt.step() { out.append(Int32(truncatingIfNeeded: stmt.int64(0))) }
            return out
        }
    }

    /// The items a user rated, with ratings, in item-id order.
    /// - Parameter user: the user's dense id.
    /// - Returns: (item id, rating) pairs.
    /// - Throws: `StoreError.sqlite` when SQLite fails.
    public func ratings(ofUser user: Int) throws -> [(item: Int, rating: Double)] {
        try withStatement("SELECT item_id, rating FROM ratings WHERE user_id = ? ORDER BY item_id") { stmt in
            try stmt.bind(Int64(user), at: 1)
            var out: [(item: Int, rating: Double)] = []
            while try stmt.step() { out.append((stmt.int(0), stmt.double(1))) }
            return out
        }
    }

    /// The value a (user, item) pair held at `seq`, when a rating written after `seq` replaced it (nil
    /// when none did: the pair is new since, or unchanged).
    /// - Parameters:
    ///   - user: the user's dense id.
    ///   - item: the item's dense id.
    ///   - seq: the watermark.
    /// - Returns: the earlier value, or nil.
    /// - Throws: `StoreError.sqlite` when SQLite fails.
    public func replacedRating(user: Int, item: Int, after seq: Int64) throws -> Double? {
        try withStatement(
            "SELECT rating FROM replaced_ratings WHERE user_id = ? AND item_id = ? AND replaced_seq > ? "
                + "ORDER BY replaced_seq LIMIT 1"
        ) { stmt in
            try stmt.bind(Int64(user), at: 1)
            try stmt.bind(Int64(item), at: 2)
            try stmt.bind(seq, at: 3)
            return try stmt.step() ? stmt.double(0) : nil
        }
    }

    /// The query of the ratings as they stood at `maxSeq` (a pair re-rated since with the value it had then;
    /// every current rating when nil), in (user, item) order: ?1 is `maxSeq`, and with `byUsers` the user ids
    /// run from ?2 up to (not including) ?3.
    private func ratingsQuery(maxSeq: Int64?, byUsers: Bool) throws -> String {
        let replaced =
            try maxSeq.map {
                try db.scalarInt(
                    "SELECT EXISTS (SELECT 1 FROM replaced_ratings WHERE seq <= ?1 AND replaced_seq > ?1)",
                    [.integer($0)])
            } ?? 0
        let range = byUsers ? " AND user_id >= ?2 AND user_id < ?3" : ""
        guard maxSeq != nil else { return "SELECT user_id, item_id, rating FROM ratings WHERE 1\(range)" }
        let current = "SELECT user_id, item_id, rating FROM ratings WHERE seq <= ?1\(range)"
        guard replaced != 0 else { return current }
        return """
            \(current)
            UNION ALL SELECT user_id, item_id, rating FROM replaced_ratings WHERE seq <= ?1 AND replaced_seq > ?1\(range)
            ORDER BY 1, 2
            """
    }

    /// Streams the ratings as they stood at `maxSeq` (a pair re-rated since with its value then; every
    /// current rating when nil) in (user, item) order, without materializing anything.
    /// - Parameters:
    ///   - maxSeq: the watermark; nil for every current rating.
    ///   - body: called with (user, item, rating) for each.
    /// - Throws: `StoreError.sqlite` when SQLite fails.; what `body` throws.
    public func forEachRating(maxSeq: Int64? = nil, _ body: (Int32, Int32, Float) throws -> Void) throws {
        let sql = try ratingsQuery(maxSeq: maxSeq, byUsers: false)
        let stmt = try db.prepare(sql)
        if let maxSeq { try stmt.bind(maxSeq, at: 1) }
        while try stmt.step() {
            try body(
                Int32(truncatingIfNeeded: stmt.int64(0)), Int32(truncatingIfNeeded: stmt.int64(1)),
                Float(stmt.double(2)))
        }
    }

    /// `forEachRating(maxSeq:)` read by `parts` connections at once, each scanning a range of user ids on
    /// its own thread into its own `T` (made by `make`, filled by `add`); the parts, in order, hold the
    /// ratings in `forEachRating`'s order. All parts read one commit: this connection holds the write lock
    /// (`BEGIN IMMEDIATE`) while their read transactions start, so no writer commits in between. One part
    /// (this connection, this thread) when `parts` is 1, the database is read-only or a transaction is open.
    /// - Throws: `StoreError.sqlite` (from any part).
    /// - Parameters:
    ///   - maxSeq: the watermark; nil for every current rating.
    ///   - requested: connections to read with (at least 1).
    ///   - userCount: users (the parts split 0..<userCount).
    ///   - make: makes an empty part.
    ///   - add: adds (user, item, rating) to a part.
    /// - Returns: the parts, in user order.
    public func readRatings<T: Sendable>(
        maxSeq: Int64?, parts requested: Int, userCount: Int, make: @Sendable () -> T,
        add: @escaping @Sendable (inout T, Int32, Int32, Float) -> Void
    ) throws -> [T] {
        let parts = max(1, min(requested, userCount / 1_000))
        guard parts > 1, !db.isReadOnly, !db.isInTransaction else {
            var out = make()
            try forEachRating(maxSeq: maxSeq) { add(&out, $0, $1, $2) }
            return [out]
        }
        try db.execute("BEGIN IMMEDIATE")
        var readers: [PartReader] = []
        do {
            // Inside the lock: whether old values are needed, then each part's first step (its snapshot).
            let sql = try ratingsQuery(maxSeq: maxSeq, byUsers: true)
            for part in 0..<parts {
                let connection = try Database(path: db.path, mode: .readOnly)
                try connection.execute("BEGIN")
                let statement = try connection.prepare(sql)
                if let maxSeq { try statement.bind(maxSeq, at: 1) }
                try statement.bind(Int64(userCount * part / parts), at: 2)
                try statement.bind(part == parts - 1 ? Int64.max : Int64(userCount * (part + 1) / parts), at: 3)
                readers.append(PartReader(statement: statement, hasRow: try statement.step()))
            }
        } catch {
            try? db.execute("ROLLBACK")
            throw error
        }
        try db.execute("ROLLBACK")
        let results = PartResults<T>(count: parts)
        let opened = readers
        DispatchQueue.concurrentPerform(iterations: parts) { part in
            let reader = opened[part]
            var out = make()
            do {
                var hasRow = reader.hasRow
                let statement = reader.statement
                while hasRow {
                    add(
                        &out, Int32(truncatingIfNeeded: statement.int64(0)),
                        Int32(truncatingIfNeeded: statement.int64(1)),
                        Float(statement.double(2)))
                    hasRow = try statement.step()
                }
                results.set(part, .success(out))
            } catch {
                results.set(part, .failure(error))
            }
        }
        return try (0..<parts).map { try results.get($0) }
    }

    /// The ratings written after `seq` (new ones and re-ratings), with their current values.
    /// - Parameter seq: a watermark (a snapshot's).
    /// - Returns: the ratings, in (user, item) order.
    /// - Throws: `StoreError.sqlite`.
    public func ratingsWritten(after seq: Int64) throws -> [(user: Int32, item: Int32, rating: Float)] {
        let stmt = try db.prepare(
            "SELECT user_id, item_id, rating FROM ratings WHERE seq > ? ORDER BY user_id, item_id")
        try stmt.bind(seq, at: 1)
        var out: [(user: Int32, item: Int32, rating: Float)] = []
        while try stmt.step() {
            out.append(
                (
                    Int32(truncatingIfNeeded: stmt.int64(0)), Int32(truncatingIfNeeded: stmt.int64(1)),
                    Float(stmt.double(2))
                ))
        }
        return out
    }

    /// A cursor over every rating in (user, item) order, read as the caller pulls.
    /// - Returns: the cursor.
    /// - Throws: `StoreError.sqlite` when SQLite fails.
    public func ratingCursor() throws -> RatingCursor {
        RatingCursor(
            statement: try db.prepare("SELECT user_id, item_id, rating FROM ratings ORDER BY user_id, item_id"))
    }

    /// The items with the most ratings at or above `threshold` (ties by id), each with its mean rating.
    /// - Parameters:
    ///   - threshold: the smallest rating that counts.
    ///   - limit: how many items to return at most.
    /// - Returns: item ids with their mean rating, most rated first.
    /// - Throws: `StoreError.sqlite`.
    public func mostRatedItems(atLeast threshold: Double, limit: Int) throws -> [(item: Int32, mean: Double)] {
        let stmt = try db.prepare(
            """
            SELECT item_id, avg(rating) FROM ratings GROUP BY item_id HAVING sum(rating >= ?) > 0
            ORDER BY sum(rating >= ?) DESC, item_id LIMIT ?
            """)
        try stmt.bind([.real(threshold), .real(threshold), .integer(Int64(limit))])
        var out: [(item: Int32, mean: Double)] = []
        while try stmt.step() { out.append((Int32(truncatingIfNeeded: stmt.int64(0)), stmt.double(1))) }
        return out
    }

    /// Each user's earliest rating time among ratings with `seq <= maxSeq` (users without timestamps
    /// are left out), in user order: one pass over the primary key.
    /// - Parameter maxSeq: the watermark.
    /// - Returns: (user, earliest time) pairs.
    /// - Throws: `StoreError.sqlite` when SQLite fails.
    public func firstRatingTimes(maxSeq: Int64) throws -> [(user: Int32, time: Int64)] {
        let stmt = try db.prepare(
            "SELECT user_id, min(ts) FROM ratings WHERE seq <= ? AND ts IS NOT NULL GROUP BY user_id")
        try stmt.bind(maxSeq, at: 1)
        var out: [(user: Int32, time: Int64)] = []
        while try stmt.step() { out.append((Int32(truncatingIfNeeded: stmt.int64(0)), stmt.int64(1))) }
        return out
    }

    /// A user's ratings with `seq <= maxSeq` in time order: by timestamp, then in the order they were written
    /// (`seq`); ratings without a timestamp after those with one, in the order written (a rating given without
    /// one, by `rate` or a file without times, is taken as newer than the timestamped history before it).
    /// - Parameters:
    ///   - user: the user's dense id.
    ///   - maxSeq: the watermark.
    /// - Returns: (item, rating) pairs, oldest first.
    /// - Throws: `StoreError.sqlite` when SQLite fails.
    public func ratingsInTimeOrder(ofUser user: Int32, maxSeq: Int64) throws -> [(item: Int32, rating: Float)] {
        try withStatement(
            "SELECT item_id, rating FROM ratings WHERE user_id = ? AND seq <= ? ORDER BY ts IS NULL, ts, seq"
        ) {
            stmt in
            try stmt.bind([.integer(Int64(user)), .integer(maxSeq)])
            var out: [(item: Int32, rating: Float)] = []
            while try stmt.step() { out.append((Int32(truncatingIfNeeded: stmt.int64(0)), Float(stmt.double(1)))) }
            return out
        }
    }
}

/// Writes ratings, new users and items, and item titles, inside `Store.writeRatings`'s transaction.
///
/// Each rating gets the next sequence number; a re-rating of a (user, item) replaces its value,
/// timestamp and sequence number. Ids are the caller's (dense, as `IdMap` hands them out).
public final class RatingWriter {
    private let store: Store
    private let insertUser: Statement
    private let insertItem: Statement
    private let insertRating: Statement
    private let updateRating: Statement
    private let updateTitle: Statement
    /// The sequence number of the first rating this writer stores.
    public let firstSequence: Int64
    /// The sequence number the next rating gets.
    public private(set) var nextSequence: Int64

    init(store: Store) throws {
        self.store = store
        insertUser = try store.db.prepare("INSERT INTO users (id, key) VALUES (?, ?)")
        insertItem = try store.db.prepare("INSERT INTO items (id, key) VALUES (?, ?)")
        // An insert that does nothing on a stored pair, then an update for that pair: the same rows as one
        // `ON CONFLICT ... DO UPDATE`, but the update trigger that keeps replaced values (`ratings_keep_replaced`)
        // is only part of the UPDATE's program. Inside the upsert's it made every insert slower, replacement or
        // not: a 5M-rating ingest took 15.6–21.7 s with it against 12.1–16.8 s with the trigger dropped.
        insertRating = try store.db.prepare(
            """
            INSERT INTO ratings (user_id, item_id, rating, ts, seq) VALUES (?, ?, ?, ?, ?)
            ON CONFLICT (user_id, item_id) DO NOTHING
            """)
        updateRating = try store.db.prepare(
            "UPDATE ratings SET rating = ?, ts = ?, seq = ? WHERE user_id = ? AND item_id = ?")
        updateTitle = try store.db.prepare("UPDATE items SET title = ?, genres = ? WHERE id = ?")
        firstSequence = try store.metadata("next_seq").flatMap(Int64.init) ?? 1
        nextSequence = firstSequence
    }

    /// Adds a user with a new dense id.
    /// - Parameters:
    ///   - id: the next dense id.
    ///   - key: the user's key.
    /// - Throws: `StoreError.sqlite` when SQLite fails. (a key or id already stored is refused).
    public func insertUser(id: Int32, key: String) throws {
        try insert(insertUser, id: id, key: key)
    }

    /// Adds an item with a new dense id.
    /// - Parameters:
    ///   - id: the next dense id.
    ///   - key: the item's key.
    /// - Throws: `StoreError.sqlite` when SQLite fails. (a key or id already stored is refused).
    public func insertItem(id: Int32, key: String) throws {
        try insert(insertItem, id: id, key: key)
    }

    private func insert(_ stmt: Statement, id: Int32, key: String) throws {
        defer { stmt.reset() }
        try stmt.bind(Int64(id), at: 1)
        try stmt.bind(key, at: 2)
        try stmt.step()
    }

    /// Stores a rating (replacing the user's earlier rating of the item).
    /// - Returns: its sequence number.
    /// - Parameters:
    ///   - user: the user's dense id.
    ///   - item: the item's dense id.
    ///   - rating: the rating.
    ///   - timestamp: Unix seconds, when known.
    /// - Throws: `StoreError.sqlite` when SQLite fails.
    @discardableResult
    public func upsert(user: Int32, item: Int32, rating: Double, timestamp: Int64?) throws -> Int64 {
        do {
            defer { insertRating.reset() }
            try insertRating.bind(Int64(user), at: 1)
            try insertRating.bind(Int64(item), at: 2)
            try insertRating.bind(rating, at: 3)
            try insertRating.bind(timestamp, at: 4)
            try insertRating.bind(nextSequence, at: 5)
            try insertRating.step()
        }
        if store.db.lastChanges == 0 {  // the pair was stored: replace its value
            defer { updateRating.reset() }
            try updateRating.bind(rating, at: 1)
            try updateRating.bind(timestamp, at: 2)
            try updateRating.bind(nextSequence, at: 3)
            try updateRating.bind(Int64(user), at: 4)
            try updateRating.bind(Int64(item), at: 5)
            try updateRating.step()
        }
        nextSequence += 1
        return nextSequence - 1
    }

    /// Sets an item's title and genres.
    /// - Parameters:
    ///   - item: the item's dense id.
    ///   - title: the title.
    ///   - genres: the "|"-separated genres, if any.
    /// - Throws: `StoreError.sqlite` when SQLite fails.
    public func setTitle(item: Int32, title: String, genres: String?) throws {
        try updateTitle.execute([.text(title), genres.map { .text($0) } ?? .null, .integer(Int64(item))])
    }

    /// Records the sequence numbers used (called by `writeRatings` when its body returns).
    func finish() throws {
        if nextSequence != firstSequence { try store.setMetadata("next_seq", String(nextSequence)) }
    }
}

/// Ratings in (user, item) order, pulled one at a time (see `Store.ratingCursor()`).
public final class RatingCursor {
    private let statement: Statement
    private var done = false

    init(statement: Statement) { self.statement = statement }

    /// The next rating, or nil after the last.
    /// - Throws: `StoreError.sqlite` when SQLite fails.
    /// - Returns: (user, item, rating), or nil.
    public func next() throws -> (user: Int32, item: Int32, rating: Float)? {
        guard !done else { return nil }
        guard try statement.step() else {
            done = true
            return nil
        }
        return (
            Int32(truncatingIfNeeded: statement.int64(0)), Int32(truncatingIfNeeded: statement.int64(1)),
            Float(statement.double(2))
        )
    }
}

extension Store {
    /// Streams every stored rating with its timestamp, in (user, item) order, one row at a time (memory
    /// does not grow with the table). Call it inside `read` so the rows are one consistent state.
    /// - Parameter body: called once per rating: dense user id, dense item id, rating, timestamp (nil when none).
    /// - Throws: `StoreError.sqlite`, or what `body` throws.
    public func forEachTimedRating(_ body: (Int32, Int32, Double, Int64?) throws -> Void) throws {
        let stmt = try db.prepare("SELECT user_id, item_id, rating, ts FROM ratings ORDER BY user_id, item_id")
        while try stmt.step() {
            try body(
                Int32(truncatingIfNeeded: stmt.int64(0)), Int32(truncatingIfNeeded: stmt.int64(1)), stmt.double(2),
                stmt.isNull(3) ? nil : stmt.int64(3))
        }
    }
}

extension Store {
    /// Streams every user's current ratings, one user at a time in id order (memory holds one user's).
    /// - Parameter body: called once per user with ratings: the dense user id and their (item, rating) pairs.
    /// - Throws: `StoreError.sqlite`, or what `body` throws.
    public func forEachUserRatings(_ body: (Int, [(item: Int32, rating: Float)]) throws -> Void) throws {
        var current = -1
        var ratings: [(item: Int32, rating: Float)] = []
        try forEachRating(maxSeq: nil) { u, i, r in
            if Int(u) != current {
                if current >= 0 { try body(current, ratings) }
                current = Int(u)
                ratings.removeAll(keepingCapacity: true)
            }
            ratings.append((i, r))
        }
        if current >= 0 { try body(current, ratings) }
    }
}

/// One part of `readRatings`: its own statement (which keeps its own connection open), used by one thread
/// at a time (the opening thread, then its worker), never two at once.
private final class PartReader: @unchecked Sendable {
    let statement: Statement
    let hasRow: Bool
    init(statement: Statement, hasRow: Bool) {
        self.statement = statement
        self.hasRow = hasRow
    }
}

/// Each part's result, written by its worker and read after all have finished.
private final class PartResults<T: Sendable>: Sendable {
    private let slots: Mutex<[Result<T, Error>?]>
    init(count: Int) { slots = Mutex([Result<T, Error>?](repeating: nil, count: count)) }
    func set(_ part: Int, _ value: Result<T, Error>) { slots.withLock { $0[part] = value } }
    func get(_ part: Int) throws -> T { try slots.withLock { $0[part]! }.get() }
}
