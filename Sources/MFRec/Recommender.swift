import Foundation
@_exported import MFEngine
@_exported import MFStore

/// The embeddable mfrec API: one database file.
///
/// ```swift
/// let rec = try Recommender(path: "mfrec.db")
/// try rec.ingest(path: "u.data", options: IngestOptions(itemsPath: "u.item"))
/// print(try rec.info())
/// ```
///
/// A `Recommender` is safe to share between threads and tasks. It owns one read-write SQLite
/// connection; every public method holds its lock for the method's duration, so writes (and the reads
/// they depend on) never interleave. Queries go through `queries()`, a `QueryEngine` with read-only
/// connections of its own, so they do not wait for a long `train` or `ingest` here.
public final class Recommender: @unchecked Sendable {
    // Invariant (why `@unchecked Sendable` is sound): `store` and `liveCache` are touched only by code
    // running inside `serialized`, which holds `lock`. Every public entry point of `Recommender`
    // (in this file and its extensions) wraps its body in `serialized`; internal helpers are called
    // only from those bodies.
    private let lock = NSRecursiveLock()
    /// The read-write connection (guarded by `lock`).
    let store: Store
    /// The live model as last loaded by this connection (guarded by `lock`; see `cachedLiveState`).
    var liveCache: LiveState?
    /// The database file.
    public let path: String
    /// Stored ratings (as counted by the sequence) from which `train` and a first `ingest` keep the training
    /// cache (guarded by `lock`; see `setTrainingCacheMinimum`).
    private var cacheMinimum = 1_000_000

    /// How long a write waits for another process's lock on the database before it fails with a
    /// `StoreError` whose `isBusy` is true, changing nothing (default 10 s). A server sets it short and
    /// answers "try again later" instead of holding a request.
    /// - Parameter milliseconds: the longest wait for another process's lock (0: fail at once).
    public func setLockWait(milliseconds: Int) { serialized { store.setLockWait(milliseconds: milliseconds) } }

    /// Who moves the write-ahead log into the database file.
    public enum Checkpointing: Sendable {
        /// A thread of the recommender with a connection of its own (`WALCheckpointer`), started after its
        /// first write; its writes never checkpoint. The default.
        case background
        /// The write whose commit takes the log past 1,000 pages (SQLite's automatic checkpoint): that one
        /// write waits for the copy and the file's sync (tens of milliseconds on a large database).
        case inWrites
    }

    /// Who checkpoints this recommender's writes (set when it is opened).
    public let checkpointing: Checkpointing
    /// The background checkpointer once started (guarded by `lock`).
    private var checkpointer: WALCheckpointer?
    /// `store.totalChanges` after opening (migrations included), to tell when this recommender first wrote.
    private var changesAtOpen: Int64 = 0

    /// Opens the database at `path` for `mode` (see `AccessMode`: `.create` creates and migrates it
    /// when needed, `.write` needs it to exist, `.read` changes nothing).
    /// - Parameters:
    ///   - path: the database file.
    ///   - mode: what this recommender will do with the file.
    ///   - checkpointing: who moves the write-ahead log into the database file (see `Checkpointing`).
    /// - Throws: `StoreError` when the file cannot be opened (`.sqlite` and `.cannotOpen` carry SQLite's
    ///   code), is missing and `mode` is not `.create`, or is a SQLite file of something else (`.notMfrec`).
    public init(path: String, mode: AccessMode, checkpointing: Checkpointing = .background) throws {
        store = try Store(path: path, mode: mode)
        self.path = path
        self.checkpointing = checkpointing
        changesAtOpen = store.totalChanges
        if !store.isReadOnly {
            if checkpointing == .background { try store.setAutoCheckpoint(pages: 0) }
            removeStaleTempFiles()
            finishPendingScrub()
        }
        changesAtOpen = store.totalChanges
    }

    deinit { checkpointer?.stop() }

    /// Opens the database at `path`: read-only, or creating and migrating it when needed.
    /// - Parameters:
    ///   - path: the database file.
    ///   - readOnly: open without creating, migrating or writing anything (`AccessMode.read`).
    /// - Throws: as `init(path:mode:)`.
    public convenience init(path: String, readOnly: Bool = false) throws {
        try self.init(path: path, mode: readOnly ? .read : .create)
    }

    /// Removes a database file and SQLite's -wal, -shm and -journal files beside it: for a caller that
    /// created the database and failed before storing anything (no `Recommender` may have it open).
    /// - Parameters:
    ///   - path: the database file.
    ///   - keepingEmptyFile: truncate the database file to 0 bytes instead of removing it.
    public static func removeDatabaseFiles(at path: String, keepingEmptyFile: Bool) {
        for suffix in ["-wal", "-shm", "-journal"] { unlink(path + suffix) }
        if keepingEmptyFile { truncate(path, 0) } else { unlink(path) }
    }

    /// The database's schema version (the id of the last migration applied).
    /// - Returns: the version (the number of the last `migrations/` file applied).
    /// - Throws: `StoreError` when the metadata cannot be read.
    public func schemaVersion() throws -> Int { try serialized { try store.schemaVersion() } }

    /// Whether this recommender can only read (opened with `.read`, or the file cannot be written).
    public var isReadOnly: Bool { store.isReadOnly }

    /// Runs `body` holding this recommender's lock (re-entrant: a public method may call another). After
    /// the first body that wrote, the background checkpointer starts (see `Checkpointing`).
    func serialized<R>(_ body: () throws -> R) rethrows -> R {
        lock.lock()
        defer { lock.unlock() }
        let result = try body()
        if checkpointer == nil, checkpointing == .background, !store.isReadOnly, store.totalChanges != changesAtOpen {
            checkpointer = WALCheckpointer(path: path)
        }
        return result
    }

    /// Whether the background checkpointer has started (for tests).
    var hasBackgroundCheckpointer: Bool { serialized { checkpointer != nil } }

    /// Runs `body` (a checkpoint of this recommender's own) while the background checkpointer does not
    /// checkpoint: SQLite answers a second checkpointer busy.
    func withoutBackgroundCheckpoint<R>(_ body: () throws -> R) rethrows -> R {
        try serialized { try checkpointer.map { try $0.pausing(body) } ?? body() }
    }

    /// A reader of models over this recommender's connection (call inside `serialized`).
    var reader: ModelReader { ModelReader(store: store) }

    /// Streams a ratings file (and optionally an item file) into the database, atomically.
    /// - Parameters:
    ///   - path: the ratings file (any format `RatingsReader` detects, optionally gzip-compressed).
    ///   - options: format, item file, scale and error handling.
    ///   - progress: called with bytes read and the file's size.
    /// - Returns: what was stored.
    /// - Throws: `MFRecError` naming file, line and field for bad input (nothing is stored then).
    @discardableResult
    public func ingest(path: String, options: IngestOptions = IngestOptions(), progress: ProgressHandler? = nil) throws
        -> IngestReport
    {
        try ingest(path: path, options: options, progress: progress, isCancelled: nil)
    }

    /// `ingest` with a cancellation check (see `Async.swift`). The database's first ratings also become the
    /// training cache (`TrainingCache`), from the rows parsed, once they are committed.
    func ingest(path: String, options: IngestOptions, progress: ProgressHandler?, isCancelled: (() -> Bool)?) throws
        -> IngestReport
    {
        try serialized {
            let first = try store.maxSequence() == 0
            var parsed: (ratings: RatingTriples, watermark: Int64)?
            let report = try Ingestor(store: store).ingest(
                path: path, options: options, progress: progress, isCancelled: isCancelled,
                stored: first ? { parsed = ($0, $1) } : nil)
            if let parsed, let stamp = try cacheStamp(maxSeq: parsed.watermark) {
                writeTrainingCache(
                    stamp: stamp, all: RatingTriples.latestPerPair(parsed.ratings, userCount: stamp.userCount))
            }
            return report
        }
    }

    /// Stored ratings from which `train` and a first `ingest` keep the training cache (`<database>.ratings`, see
    /// `TrainingCache`): below it the ratings table reads about as fast. Default 1,000,000; 0 keeps it always.
    /// - Parameter ratings: the least count (as the sequence numbers count writes).
    public func setTrainingCacheMinimum(_ ratings: Int) { serialized { cacheMinimum = max(0, ratings) } }

    /// See `setTrainingCacheMinimum` (read inside `serialized`).
    var trainingCacheMinimum: Int { cacheMinimum }

    /// Counts and statistics of what the database holds.
    /// - Returns: users, items, ratings, scale, snapshots and the live model's state.
    /// - Throws: `StoreError` when the database cannot be read.
    public func info() throws -> DatabaseInfo {
        try serialized {
            try store.read {
                DatabaseInfo(
                    path: store.path, users: try store.userCount(), items: try store.itemCount(),
                    ratings: try store.ratingCount(), itemsWithTitles: try store.titledItemCount(),
                    scale: try store.ratingScale(), meanRating: try store.meanRating(),
                    snapshots: try store.snapshots().count, live: try store.liveModel(),
                    cooccurrence: try store.cooccurrenceShape().map {
                        CooccurrenceShape(
                            factors: $0.factors, itemCount: $0.itemCount, exponent: $0.exponent, createdAt: $0.createdAt
                        )
                    })
            }
        }
    }

    /// The cheap counts (no pass over the ratings): users, items and the rating scale.
    /// - Returns: users, items, and the rating scale (nil before the first ingest).
    /// - Throws: `StoreError` when the database cannot be read.
    public func catalog() throws -> (users: Int, items: Int, scale: ClosedRange<Double>?) {
        try serialized { try store.read { (try store.userCount(), try store.itemCount(), try store.ratingScale()) } }
    }

    /// Stored ratings.
    /// - Returns: the number of ratings stored.
    /// - Throws: `StoreError` when the database cannot be read.
    public func ratingCount() throws -> Int { try serialized { try store.ratingCount() } }

    /// Which snapshot is live, its generation, and the incremental updates since.
    /// - Returns: the live row (snapshot id nil before the first `train`).
    /// - Throws: `StoreError` when the database cannot be read.
    public func liveModel() throws -> Store.LiveModel { try serialized { try store.liveModel() } }

    /// Every snapshot's metadata, oldest first.
    /// - Returns: one entry per snapshot, oldest first (empty before the first `train`).
    /// - Throws: `StoreError` when the database cannot be read.
    public func snapshots() throws -> [SnapshotInfo] { try serialized { try reader.snapshots() } }

    /// Loads a snapshot's model, verifying its checksum.
    /// - Parameter id: the snapshot; the live one when nil.
    /// - Returns: the snapshot's metadata and its model (without incremental updates: see `liveState()`).
    /// - Throws: `MFRecError.noModel`, `StoreError.noSnapshot` or `StoreError.corrupt`.
    public func loadModel(snapshot id: Int? = nil) throws -> (SnapshotInfo, FactorModel) {
        try serialized { try reader.loadModel(snapshot: id) }
    }

    /// Loads the live model: the live snapshot (checksum verified) plus the rows changed since.
    /// - Throws: `MFRecError.noModel` before the first `train`.
    /// - Returns: both live models, with the generation they stand for.
    public func liveState() throws -> LiveState { try serialized { try reader.liveState() } }

    /// The ranking model stored with a snapshot and what validation chose.
    /// - Returns: nil when the snapshot has none.
    /// - Parameter id: the snapshot.
    /// - Throws: `StoreError.noSnapshot` or `.corrupt`.
    public func loadRankingModel(snapshot id: Int) throws -> (RankingModel, RankingChoice)? {
        try serialized { try reader.rankingModel(snapshot: id) }
    }

    /// The item matrix file of this database: `<database>.items`.
    public var itemMatrixPath: String { path + ".items" }

    /// Opens a query engine on the live model, with read-only connections of its own.
    /// - Returns: an engine that follows the live model as writers change it.
    /// - Throws: `StoreError` when the database cannot be opened for reading, `MFRecError` or `EngineError` when
    ///   the live model or its item matrix cannot be loaded.
    public func queries() throws -> QueryEngine {
        try QueryEngine(path: path, itemMatrixPath: itemMatrixPath)
    }
}

/// What `mfrec info` shows about the data.
public struct DatabaseInfo: Sendable {
    /// The database file.
    public let path: String
    /// Users (dense ids 0..<users).
    public let users: Int
    /// Items (dense ids 0..<items).
    public let items: Int
    /// Stored ratings.
    public let ratings: Int
    /// Items with a title from an item file.
    public let itemsWithTitles: Int
    /// The rating scale (nil before the first ingest).
    public let scale: ClosedRange<Double>?
    /// The mean stored rating (nil when there are none).
    public let meanRating: Double?
    /// Stored snapshots.
    public let snapshots: Int
    /// Which snapshot is live, its generation and the incremental updates since.
    public let live: Store.LiveModel
    /// The stored co-occurrence embedding's shape (nil when there is none).
    public let cooccurrence: CooccurrenceShape?

    /// Share of the user × item matrix that is rated.
    public var density: Double { users > 0 && items > 0 ? Double(ratings) / (Double(users) * Double(items)) : 0 }
}

/// The shape of the stored co-occurrence embedding.
public struct CooccurrenceShape: Sendable {
    /// k: the length of each item's vector.
    public let factors: Int
    /// Items with a vector.
    public let itemCount: Int
    /// The popularity damping exponent of the fit.
    public let exponent: Double
    /// When it was fitted (ISO 8601, UTC).
    public let createdAt: String
}
