import CSQLite
import Foundation

/// Users' ids and ratings a read-only connection has read, kept while nothing was committed since.
///
/// Why: a one-user query reads the user's id and every rating of theirs (to leave them out of the list). On
/// ML-100K that was about 40 µs of SQLite stepping per query, half of the whole query (`mfrec serve`'s reads ask
/// for the same users again and again). SQLite's `PRAGMA data_version` moves whenever another connection commits
/// anything; read in the caller's transaction, an unchanged value means the file is the one the remembered rows
/// were read from, so they are what a read would return now. Only a connection that never writes may use it
/// (data_version does not move for the connection's own commits): on any other the look-ups just read.
struct ReadMemo {
    /// The data_version the entries were read at.
    var version: Int64?
    /// The live generation, as `liveGeneration()` answered.
    var generation: Int64?
    /// User key → dense id (nil: no such user), as `userID(forKey:)` answered.
    var ids: [String: Int?] = [:]
    /// User id → ratings, as `ratings(ofUser:)` answered.
    var ratings: [Int: [(item: Int, rating: Double)]] = [:]
    /// Ratings held in `ratings`; past `maxRatings` the memory starts over.
    var heldRatings = 0
    /// The most ratings kept (16 bytes each): about 8 MB per connection.
    static let maxRatings = 500_000
    /// The most user keys kept.
    static let maxIDs = 100_000

    /// What is remembered of `key`: nil when not (or only partly) remembered; `.some(nil)` for a key remembered as
    /// no user; otherwise the user's id and ratings.
    func user(forKey key: String) -> (id: Int, rated: [(item: Int, rating: Double)])?? {
        guard let id = ids[key] else { return nil }
        guard let id else { return .some(nil) }
        return ratings[id].map { (id, $0) }
    }
}

extension Store {
    /// `userID(forKey:)` and `ratings(ofUser:)` in one, remembered by a read-only connection while the database
    /// is unchanged (see `ReadMemo`). Call it inside a read transaction (`read(_:)`): the version check and the
    /// rows then belong to the same committed state.
    /// - Parameter key: the user's key.
    /// - Returns: the user's id and ratings (in item-id order), or nil for an unknown user.
    /// - Throws: `StoreError.sqlite` when SQLite fails.
    public func rememberedUser(forKey key: String) throws -> (id: Int, rated: [(item: Int, rating: Double)])? {
        guard db.isReadOnly, db.isInTransaction else {
            return try userID(forKey: key).map { (id: $0, rated: try ratings(ofUser: $0)) }
        }
        let version = try dataVersion()
        if memo.version != version { memo = ReadMemo(version: version) }
        if let remembered = memo.user(forKey: key) { return remembered }
        let id: Int?
        if let known = memo.ids[key] {
            id = known
        } else {
            id = try userID(forKey: key)
            if memo.ids.count >= ReadMemo.maxIDs { memo.ids.removeAll(keepingCapacity: true) }
            memo.ids[key] = id
        }
        guard let id else { return nil }
        let rated = try ratings(ofUser: id)
        if memo.heldRatings + rated.count > ReadMemo.maxRatings {
            memo.ratings.removeAll(keepingCapacity: true)
            memo.heldRatings = 0
        }
        if rated.count <= ReadMemo.maxRatings {
            memo.ratings[id] = rated
            memo.heldRatings += rated.count
        }
        return (id, rated)
    }

    /// The live generation and `rememberedUser(forKey:)`: when the connection remembers both and the database is
    /// unchanged (one `PRAGMA data_version`, in a read transaction of its own), from memory; otherwise read in
    /// one read transaction. Either way the generation and the user's ratings are those of one committed state.
    /// - Parameter key: the user's key.
    /// - Returns: the live generation, and the user's id and ratings (nil for an unknown user).
    /// - Throws: `StoreError.sqlite` when SQLite fails.
    public func rememberedGenerationAndUser(forKey key: String) throws -> (
        generation: Int64, fetched: (id: Int, rated: [(item: Int, rating: Double)])?
    ) {
        if db.isReadOnly, !db.isInTransaction, let generation = memo.generation,
            let remembered = memo.user(forKey: key), try dataVersion() == memo.version
        {
            return (generation, remembered)
        }
        return try read {
            let user = try rememberedUser(forKey: key)  // drops the memory first when the database changed
            guard db.isReadOnly else { return (try liveGeneration(), user) }
            let generation = try memo.generation ?? liveGeneration()
            memo.generation = generation
            return (generation, user)
        }
    }

    /// `PRAGMA data_version`: moves whenever another connection commits a change to the file.
    func dataVersion() throws -> Int64 {
        try withStatement("PRAGMA data_version") { stmt in
            guard try stmt.step() else {
                throw StoreError.sqlite(
                    DatabaseError(extendedCode: SQLITE_ERROR, message: "no row", sql: "PRAGMA data_version"))
            }
            return stmt.int64(0)
        }
    }
}
