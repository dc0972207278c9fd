import Foundation

/// The `users` and `items` tables: external keys and dense ids 0, 1, 2… in first-seen order.
extension Store {
    /// Users (ids are dense from 0, so this is max(id) + 1: a rowid look-up, not a table scan).
    /// - Returns: the count.
    /// - Throws: `StoreError.sqlite` when SQLite fails.
    public func userCount() throws -> Int { try denseCount("users") }
    /// Items (max(id) + 1, as for users).
    /// - Returns: the count.
    /// - Throws: `StoreError.sqlite` when SQLite fails.
    public func itemCount() throws -> Int { try denseCount("items") }

    private func denseCount(_ table: String) throws -> Int {
        try withStatement("SELECT coalesce(max(id) + 1, 0) FROM \(table)") { stmt in try stmt.step() ? stmt.int(0) : 0 }
    }

    /// Items with a title.
    /// - Returns: the count.
    /// - Throws: `StoreError.sqlite` when SQLite fails.
    public func titledItemCount() throws -> Int {
        Int(try db.scalarInt("SELECT count(*) FROM items WHERE title IS NOT NULL") ?? 0)
    }

    /// Every user key, in id order (index = dense id).
    /// - Returns: the keys.
    /// - Throws: `StoreError.sqlite` when SQLite fails.
    public func userKeys() throws -> [String] { try keys("SELECT key FROM users ORDER BY id") }
    /// Every item key, in id order (index = dense id).
    /// - Returns: the keys.
    /// - Throws: `StoreError.sqlite` when SQLite fails.
    public func itemKeys() throws -> [String] { try keys("SELECT key FROM items ORDER BY id") }

    private func keys(_ sql: String) throws -> [String] {
        let stmt = try db.prepare(sql)
        var out: [String] = []
        while try stmt.step() { out.append(stmt.string(0) ?? "") }
        return out
    }

    /// The dense id of a user key, or nil for an unknown user.
    /// - Parameter key: the user's key.
    /// - Returns: the id, or nil.
    /// - Throws: `StoreError.sqlite` when SQLite fails.
    public func userID(forKey key: String) throws -> Int? {
        try withStatement("SELECT id FROM users WHERE key = ?") { stmt in
            try stmt.bind(key, at: 1)
            return try stmt.step() ? stmt.int(0) : nil
        }
    }

    /// The dense id of an item key, or nil for an unknown item.
    /// - Parameter key: the item's key.
    /// - Returns: the id, or nil.
    /// - Throws: `StoreError.sqlite` when SQLite fails.
    public func itemID(forKey key: String) throws -> Int? {
        try withStatement("SELECT id FROM items WHERE key = ?") { stmt in
            try stmt.bind(key, at: 1)
            return try stmt.step() ? stmt.int(0) : nil
        }
    }

    /// The id of a user key, adding the user (the next dense id) when new.
    /// - Returns: the id, and whether the user is new.
    /// - Parameter key: the user's key.
    /// - Throws: `StoreError.sqlite` when SQLite fails.
    public func addUser(key: String) throws -> (id: Int, isNew: Bool) { try add(key: key, table: "users") }

    /// The id of an item key, adding the item (the next dense id) when new.
    /// - Returns: the id, and whether the item is new.
    /// - Parameter key: the item's key.
    /// - Throws: `StoreError.sqlite` when SQLite fails.
    public func addItem(key: String) throws -> (id: Int, isNew: Bool) { try add(key: key, table: "items") }

    private func add(key: String, table: String) throws -> (id: Int, isNew: Bool) {
        try transaction {
            let users = table == "users"
            if let id = try (users ? userID(forKey: key) : itemID(forKey: key)) { return (id, false) }
            let id = try users ? userCount() : itemCount()
            try withStatement("INSERT INTO \(table) (id, key) VALUES (?, ?)") { stmt in
                try stmt.bind([.integer(Int64(id)), .text(key)])
                try stmt.step()
            }
            return (id, true)
        }
    }

    /// An item's key, title and genres.
    public struct ItemInfo: Sendable, Equatable {
        /// The dense id.
        public let id: Int
        /// The id as in the files.
        public let key: String
        /// The title, when an item file gave one.
        public let title: String?
        /// The genres, when an item file gave them ("|"-separated).
        public let genres: String?
    }

    /// One item, or nil for an unknown id.
    /// - Parameter id: the item's dense id.
    /// - Returns: its key, title and genres, or nil.
    /// - Throws: `StoreError.sqlite` when SQLite fails.
    public func item(id: Int) throws -> ItemInfo? {
        try withStatement("SELECT id, key, title, genres FROM items WHERE id = ?") { stmt in
            try stmt.bind(Int64(id), at: 1)
            guard try stmt.step() else { return nil }
            return ItemInfo(id: stmt.int(0), key: stmt.string(1) ?? "", title: stmt.string(2), genres: stmt.string(3))
        }
    }

    /// Titles of all items, in id order (nil where none was ingested).
    /// - Returns: one title per item id.
    /// - Throws: `StoreError.sqlite` when SQLite fails.
    public func itemTitles() throws -> [String?] {
        let stmt = try db.prepare("SELECT title FROM items ORDER BY id")
        var out: [String?] = []
        while try stmt.step() { out.append(stmt.string(0)) }
        return out
    }
}

extension Store {
    /// Ids of the items whose genres (the "|"-separated list of the item file) include `genre`, compared
    /// whole and without regard to ASCII case, in id order.
    /// - Parameter genre: the genre.
    /// - Returns: the item ids.
    /// - Throws: `StoreError.sqlite` when SQLite fails.
    public func itemIDs(genre: String) throws -> [Int32] {
        let stmt = try db.prepare(
            "SELECT id FROM items WHERE instr('|' || lower(genres) || '|', '|' || lower(?1) || '|') > 0 ORDER BY id")
        try stmt.bind(genre, at: 1)
        var out: [Int32] = []
        while try stmt.step() { out.append(Int32(truncatingIfNeeded: stmt.int64(0))) }
        return out
    }

    /// Every genre named in the item file, sorted (for the error that names the choices).
    /// - Returns: the genres.
    /// - Throws: `StoreError.sqlite` when SQLite fails.
    public func genres() throws -> [String] {
        let stmt = try db.prepare("SELECT DISTINCT genres FROM items WHERE genres IS NOT NULL")
        var out = Set<String>()
        while try stmt.step() {
            for name in (stmt.string(0) ?? "").split(separator: "|") { out.insert(String(name)) }
        }
        return out.sorted()
    }

    /// How many stored ratings each item has (index: the item's dense id), in one pass over the ratings.
    /// - Returns: one count per item id.
    /// - Throws: `StoreError.sqlite` when SQLite fails.
    public func itemRatingCounts() throws -> [Int32] {
        var counts = [Int32](repeating: 0, count: try itemCount())
        let stmt = try db.prepare("SELECT item_id, count(*) FROM ratings GROUP BY item_id")
        while try stmt.step() {
            let item = stmt.int(0)
            if item >= 0 && item < counts.count { counts[item] = Int32(truncatingIfNeeded: stmt.int64(1)) }
        }
        return counts
    }
}
