import CSQLite
import CZlib
import Foundation

/// What a caller will do with a database, which decides what opening it may change.
public enum AccessMode: Sendable {
    /// Read only: the file must exist and hold an mfrec database of the current schema; nothing is
    /// created, migrated or written.
    case read
    /// Read and write an existing database (migrating its schema when older).
    case write
    /// Read and write, creating the database when the file is missing or empty.
    case create
}

/// The mfrec database: users, items, ratings, snapshots and the live model in one SQLite file.
///
/// Opening migrates the schema to the version this binary knows (or refuses a newer one). Every
/// operation that writes runs in a transaction of its own, or joins the caller's (`transaction(_:)`),
/// so a multi-step change commits whole or not at all.
///
/// A `Store` owns one SQLite connection and is not thread-safe: its owner serializes access
/// (`Recommender` holds it behind a lock; `QueryEngine` keeps a pool of read-only stores).
/// The SQL for each table lives in the `Store+…` file named for it.
public final class Store {
    /// The connection. Internal: SQL stays in this module.
    let db: Database
    private var statements: [String: Statement] = [:]
    /// What a read-only connection remembers of users between transactions (see `Store+ReadMemo.swift`).
    var memo = ReadMemo()
    /// How long a write waits for another connection's lock, in milliseconds (see `setLockWait`).
    public private(set) var lockWait = 10_000

    /// Runs `body` with a prepared statement kept for reuse (hot look-ups skip re-preparing), reset after.
    func withStatement<R>(_ sql: String, _ body: (Statement) throws -> R) throws -> R {
        let stmt: Statement
        if let cached = statements[sql] {
            stmt = cached
        } else {
            stmt = try db.prepare(sql)
            statements[sql] = stmt
        }
        defer { stmt.reset() }
        return try body(stmt)
    }

    /// Opens the database at `path` for `mode`.
    ///
    /// `.create` and `.write` migrate the schema to the version this binary knows (or refuse a newer
    /// one); `.read` changes nothing (SQLite's own -wal/-shm files aside) and refuses an older schema.
    /// Every mode refuses a SQLite file that is not an mfrec database (it has tables of its own but
    /// no mfrec schema), before touching it. A database that cannot be written (a read-only file or
    /// file system) is opened read-only in every mode: reads work, and writes fail with a clear
    /// "read-only" error.
    /// - Parameters:
    ///   - path: the database file.
    ///   - mode: what the caller will do with it (see `AccessMode`).
    /// - Throws: `StoreError`: `.noDatabase` when the file is missing (or empty) and `mode` is not
    ///   `.create`, `.notMfrec`, `.olderSchema` for a read-only open, `.newerSchema`, `.cannotOpen`
    ///   and `.sqlite` (with SQLite's code) otherwise.
    public init(path: String, mode: AccessMode) throws {
        db = try Store.open(path, mode: mode)
    }

    /// Opens the database at `path`: read-only (`.read`) or creating it as needed (`.create`).
    /// - Parameters:
    ///   - path: the database file.
    ///   - readOnly: open without creating, migrating or writing anything.
    /// - Throws: as `init(path:mode:)`.
    public convenience init(path: String, readOnly: Bool = false) throws {
        try self.init(path: path, mode: readOnly ? .read : .create)
    }

    /// Whether a database file holds something: it exists and is not empty (a 0-byte file counts as new).
    /// - Parameter path: the database file.
    /// - Returns: true when it exists and is not empty.
    public static func databaseExists(at path: String) -> Bool {
        let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.intValue
        return (size ?? 0) > 0
    }

    private static func open(_ path: String, mode: AccessMode) throws -> Database {
        guard !path.isEmpty else {
            throw StoreError.cannotOpen(path: path, code: SQLITE_CANTOPEN, message: "the database path is empty")
        }
        let exists = databaseExists(at: path)
        if !exists && mode != .create {
            throw StoreError.noDatabase(path: path)
        }
        // Look before touching: switching to WAL or migrating would change a file that is not ours.
        var probe = exists ? try openReadOnly(path) : nil
        let isMfrec = try probe.map { try Migrator.embedded.isMfrec($0) } ?? false
        if let probe, !isMfrec, try probe.scalarInt("SELECT count(*) FROM sqlite_master") ?? 0 > 0 {
            throw StoreError.notMfrec(path: path)
        }
        if mode != .read {
            probe = nil  // closed before a read-write connection switches the file to WAL
            do {
                let db = try Database(path: path, mode: .readWrite, create: mode == .create)
                try Migrator.embedded.migrate(db)
                return db
            } catch let error as StoreError
                where [SQLITE_READONLY, SQLITE_CANTOPEN, SQLITE_PERM, SQLITE_AUTH].contains(error.sqliteCode ?? 0)
                && exists
            {
                // Not writable: fall through to read-only.
            }
        }
        // A read-only open: the probe connection serves (a write mode that fell back opens another).
        guard isMfrec else {
            throw StoreError.noDatabase(path: path)  // a SQLite file without any table yet
        }
        let db = try probe ?? openReadOnly(path)
        let pending = try Migrator.embedded.pending(in: db)
        if !pending.isEmpty {
            throw StoreError.olderSchema(path: path)
        }
        return db
    }

    /// The schema version of the file (the id of the last migration applied).
    /// - Returns: the version.
    /// - Throws: `StoreError.sqlite` when SQLite fails.
    public func schemaVersion() throws -> Int {
        try Migrator.embedded.applied(in: db).last?.id ?? 0
    }

    /// How long a write waits for another connection's (or process's) lock before it fails with a busy
    /// `StoreError` (`isBusy`), changing nothing. The default is 10 s.
    /// - Parameter milliseconds: the longest wait (0: fail at once).
    public func setLockWait(milliseconds: Int) {
        lockWait = max(0, milliseconds)
        db.setBusyTimeout(milliseconds: Int32(clamping: lockWait))
    }

    /// Whether this connection can only read.
    public var isReadOnly: Bool { db.isReadOnly }

    private static func openReadOnly(_ path: String) throws -> Database {
        do {
            let db = try Database(path: path, mode: .readOnly)
            // WAL needs its -shm: this fails on a read-only folder.
            _ = try db.scalarInt("SELECT count(*) FROM sqlite_master")
            return db
        } catch {
            return try Database(path: path, mode: .immutable)
        }
    }

    /// The database file.
    public var path: String { db.path }

    /// Runs `body` in one transaction (or, inside one already, in a savepoint of it).
    /// - Parameter body: the work; its store operations commit together.
    /// - Returns: what `body` returns.
    /// - Throws: `StoreError` on a read-only database; whatever `body` throws, after rolling back.
    public func transaction<R>(_ body: () throws -> R) throws -> R {
        if db.isReadOnly {
            throw StoreError.readOnly(path: db.path)
        }
        return try db.transaction(body)
    }

    /// Runs `body` in a read transaction: its reads see one committed state of the database.
    /// - Parameter body: the reads.
    /// - Returns: what `body` returns.
    /// - Throws: what `body` throws, or `StoreError.sqlite`.
    public func read<R>(_ body: () throws -> R) throws -> R { try db.readTransaction(body) }

    /// `PRAGMA integrity_check`.
    /// - Returns: "ok" for a sound file, else SQLite's findings, one per line.
    /// - Throws: `StoreError.sqlite` when SQLite fails.
    public func integrityCheck() throws -> String { try db.integrityCheck() }

    /// Moves the write-ahead log into the database file and truncates it (`PRAGMA wal_checkpoint(TRUNCATE)`).
    /// - Throws: `StoreError.sqlite` when SQLite fails. (`isBusy` when a reader or writer kept it from finishing).
    public func checkpoint() throws { try db.execute("PRAGMA wal_checkpoint(TRUNCATE)") }

    /// Copies the write-ahead log's committed pages into the database file as far as readers allow,
    /// without waiting for readers or writers (`PRAGMA wal_checkpoint(PASSIVE)`): a server runs it on a
    /// connection of its own, so that no request's commit pays for the checkpoint's fsync.
    /// - Returns: the bytes of the log SQLite is using now (its frames since the log last started over, not the
    ///   file's size: the file keeps its largest size while the log restarts from its beginning).
    /// - Throws: `StoreError.sqlite` when SQLite fails.
    @discardableResult
    public func checkpointWithoutWaiting() throws -> Int {
        let frames = try withStatement("PRAGMA wal_checkpoint(PASSIVE)") { stmt -> Int64 in
            guard try stmt.step() else { return 0 }
            return max(0, stmt.int64(1))
        }
        let pageSize = try db.scalarInt("PRAGMA page_size") ?? 4096
        return Int(frames * (pageSize + 24))
    }

    /// Finishes the checkpoint and lets the next writer start the write-ahead log from its beginning
    /// (`PRAGMA wal_checkpoint(RESTART)`): it waits (up to the lock wait) for the writer and blocks new
    /// writes while it copies what is left and syncs the database file. After a `checkpointWithoutWaiting`
    /// little is left, but the database file's sync still makes writes wait once per call (tens of
    /// milliseconds measured under `mfrec-bench serve`: p99 about 30 ms when it ran every second, hence
    /// the `Checkpointer` runs it only once the log passes 64 MB); the log stays bounded.
    /// - Throws: `StoreError.sqlite` when SQLite fails. (`isBusy` when the wait ran out).
    public func checkpointAndRestartLog() throws { try db.execute("PRAGMA wal_checkpoint(RESTART)") }

    /// Rows this connection has inserted, updated or deleted since it opened: a writer's owner compares it
    /// with an earlier value to learn whether it wrote anything.
    public var totalChanges: Int64 { db.totalChanges }

    /// After how many pages in the write-ahead log a commit of this connection checkpoints (SQLite's
    /// default 1000; 0 never: someone else checkpoints, see `checkpointWithoutWaiting`).
    /// - Parameter pages: the page count (0: never).
    /// - Throws: `StoreError.sqlite` when SQLite fails.
    public func setAutoCheckpoint(pages: Int) throws {
        try db.execute("PRAGMA wal_autocheckpoint = \(max(0, pages))")
    }

    // MARK: Metadata (key–value settings of the database)

    func metadata(_ key: String) throws -> String? {
        try db.scalarString("SELECT value FROM metadata WHERE key = ?", [.text(key)])
    }

    func setMetadata(_ key: String, _ value: String) throws {
        try db.execute(
            "INSERT INTO metadata (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            [.text(key), .text(value)])
    }

    /// The popular-items list `train` stored (JSON), if any.
    /// - Returns: the JSON, or nil before the first `train`.
    /// - Throws: `StoreError.sqlite` when SQLite fails.
    public func popularItemsJSON() throws -> String? { try metadata("popular_items") }

    /// Stores the popular-items list (JSON) that `recommend` falls back to.
    /// - Parameter json: the list.
    /// - Throws: `StoreError.sqlite` when SQLite fails.
    public func setPopularItemsJSON(_ json: String) throws {
        try transaction { try setMetadata("popular_items", json) }
    }

    /// A CRC-32 of a blob, as stored beside snapshots, embeddings and ranking models.
    /// - Parameter bytes: the blob.
    /// - Returns: its CRC-32.
    public static func checksum(_ bytes: [UInt8]) -> Int64 {
        crc32Checksum(bytes)
    }
}
