import Foundation
import MFStore

extension QueryEngine {
    // What the database holds, read through the engine's own read-only connections: these never wait for
    // a writer (WAL), so a health check or a status page answers while a long write holds the write lock.

    /// Which snapshot is live, its generation, and the incremental updates since.
    /// - Returns: the live row (snapshot id nil before the first `train`).
    /// - Throws: `StoreError` when the database cannot be read.
    public func liveModel() throws -> Store.LiveModel { try pool.read { try $0.liveModel() } }

    /// Users, items and the rating scale (nil before the first ingest), read in one transaction.
    /// - Returns: users, items, and the rating scale.
    /// - Throws: `StoreError` when the database cannot be read.
    public func catalog() throws -> (users: Int, items: Int, scale: ClosedRange<Double>?) {
        try pool.read { store in
            try store.read { (try store.userCount(), try store.itemCount(), try store.ratingScale()) }
        }
    }

    /// Stored ratings.
    /// - Returns: the number of ratings stored.
    /// - Throws: `StoreError` when the database cannot be read.
    public func ratingCount() throws -> Int { try pool.read { try $0.ratingCount() } }

    /// Every snapshot's metadata, oldest first.
    /// - Returns: one entry per snapshot, oldest first.
    /// - Throws: `StoreError` when the database cannot be read.
    public func snapshots() throws -> [SnapshotInfo] { try pool.read { try ModelReader(store: $0).snapshots() } }
}
