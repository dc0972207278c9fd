import Foundation
import MFEngine
import MFStore

/// The embeddable mfrec API: one database file, opened once.
///
/// ```swift
/// let rec = try Recommender(path: "mfrec.db")
/// try rec.ingest(path: "u.data", options: IngestOptions(itemsPath: "u.item"))
/// print(try rec.info())
/// ```
///
/// A `Recommender` holds one SQLite connection and is not safe to share between threads.
public final class Recommender {
    public let store: Store
    /// The live model as last loaded by this connection (see `cachedLiveState`).
    var liveCache: LiveState?

    /// Opens (creating and migrating when needed) the database at `path`.
    public init(path: String, readOnly: Bool = false) throws {
        store = try Store(path: path, readOnly: readOnly)
        if !store.isReadOnly { removeStaleTempFiles() }
    }

    public var path: String { store.path }

    /// Streams a ratings file (and optionally an item file) into the database, atomically.
    @discardableResult
    public func ingest(path: String, options: IngestOptions = IngestOptions(), progress: Progress? = nil) throws -> IngestReport {
        try Ingestor(store: store).ingest(path: path, options: options, progress: progress)
    }

    /// Counts and statistics of what the database holds.
    public func info() throws -> DatabaseInfo {
        let users = try store.userCount(), items = try store.itemCount(), ratings = try store.ratingCount()
        let titled = Int(try store.db.scalarInt("SELECT count(*) FROM items WHERE title IS NOT NULL") ?? 0)
        return DatabaseInfo(
            path: store.path, users: users, items: items, ratings: ratings, itemsWithTitles: titled,
            scale: try store.ratingScale(), meanRating: try store.meanRating(),
            snapshots: try store.snapshots().count, live: try store.liveModel())
    }
}

/// What `mfrec info` shows about the data.
public struct DatabaseInfo: Sendable {
    public let path: String
    public let users: Int
    public let items: Int
    public let ratings: Int
    public let itemsWithTitles: Int
    public let scale: ClosedRange<Double>?
    public let meanRating: Double?
    public let snapshots: Int
    public let live: Store.LiveModel

    /// Share of the user × item matrix that is rated.
    public var density: Double { users > 0 && items > 0 ? Double(ratings) / (Double(users) * Double(items)) : 0 }
}
