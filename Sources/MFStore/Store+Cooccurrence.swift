import Foundation

/// The `cooccurrence` table: the one stored co-occurrence embedding (row id 1).
extension Store {
    /// The stored co-occurrence embedding's parameters and bytes.
    public struct CooccurrenceRecord: Sendable, Equatable {
        /// Grows by one at every store: readers compare it to their cached copy.
        public var version: Int64
        /// k of the embedding.
        public var factors: Int
        /// Items with a vector.
        public var itemCount: Int
        /// The popularity damping exponent of the fit.
        public var exponent: Double
        /// The vectors, little-endian float32, item by item.
        public var vectors: [UInt8]

        /// A record to store with `setCooccurrence`.
        /// - Parameters:
        ///   - version: the stored version (set by `setCooccurrence`).
        ///   - factors: k.
        ///   - itemCount: items with a vector.
        ///   - exponent: the popularity damping exponent of the fit.
        ///   - vectors: the vectors as little-endian float32 bytes.
        public init(version: Int64 = 0, factors: Int, itemCount: Int, exponent: Double, vectors: [UInt8]) {
            self.version = version
            self.factors = factors
            self.itemCount = itemCount
            self.exponent = exponent
            self.vectors = vectors
        }
    }

    /// Replaces the co-occurrence embedding (the version grows by one).
    /// - Parameter record: the embedding (its version is ignored).
    /// - Throws: `StoreError.sqlite` when SQLite fails.
    public func setCooccurrence(_ record: CooccurrenceRecord) throws {
        try db.execute(
            """
            INSERT INTO cooccurrence (id, version, created_at, factors, item_count, exponent, vectors, checksum)
            VALUES (1, 1, strftime('%Y-%m-%dT%H:%M:%SZ', 'now'), ?, ?, ?, ?, ?)
            ON CONFLICT(id) DO UPDATE SET version = version + 1, created_at = excluded.created_at, factors = excluded.factors,
                item_count = excluded.item_count, exponent = excluded.exponent, vectors = excluded.vectors, checksum = excluded.checksum
            """,
            [
                .integer(Int64(record.factors)), .integer(Int64(record.itemCount)), .real(record.exponent),
                .blob(record.vectors), .integer(Store.checksum(record.vectors)),
            ])
    }

    /// Removes the stored embedding.
    /// - Throws: `StoreError.sqlite` when SQLite fails.
    public func deleteCooccurrence() throws {
        try db.execute("DELETE FROM cooccurrence")
    }

    /// The version of the stored co-occurrence embedding (nil when there is none): cheap, for cache checks.
    /// - Returns: the version, or nil.
    /// - Throws: `StoreError.sqlite` when SQLite fails.
    public func cooccurrenceVersion() throws -> Int64? {
        try withStatement("SELECT version FROM cooccurrence WHERE id = 1") { stmt in
            try stmt.step() ? stmt.int64(0) : nil
        }
    }

    /// The stored co-occurrence embedding's shape, without its vectors (nil when there is none).
    /// - Returns: k, items, the exponent and when it was fitted; nil when there is none.
    /// - Throws: `StoreError.sqlite` when SQLite fails.
    public func cooccurrenceShape() throws -> (factors: Int, itemCount: Int, exponent: Double, createdAt: String)? {
        let stmt = try db.prepare("SELECT factors, item_count, exponent, created_at FROM cooccurrence WHERE id = 1")
        guard try stmt.step() else { return nil }
        return (Int(stmt.int64(0)), Int(stmt.int64(1)), stmt.double(2), stmt.string(3) ?? "")
    }

    /// The stored co-occurrence embedding, its checksum verified; nil when there is none.
    /// - Returns: the embedding, or nil.
    /// - Throws: `StoreError.corrupt` when the checksum does not match; `StoreError.sqlite` when SQLite fails.
    public func cooccurrence() throws -> CooccurrenceRecord? {
        let stmt = try db.prepare(
            "SELECT version, factors, item_count, exponent, vectors, checksum FROM cooccurrence WHERE id = 1")
        guard try stmt.step() else { return nil }
        let record = CooccurrenceRecord(
            version: stmt.int64(0), factors: Int(stmt.int64(1)), itemCount: Int(stmt.int64(2)),
            exponent: stmt.double(3), vectors: stmt.blob(4))
        guard Store.checksum(record.vectors) == stmt.int64(5) else {
            throw StoreError.corrupt(
                what: "\(path): the co-occurrence embedding",
                reason: "it fails its checksum; run `mfrec train` to fit it again")
        }
        return record
    }
}
