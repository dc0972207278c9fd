import CSQLite
import Foundation

/// A connection to one SQLite database file. Owns its `sqlite3` handle and closes it in `deinit`.
///
/// On open it switches on WAL mode (and checks that SQLite agreed), foreign keys and a busy timeout,
/// so a second process waits for a writer instead of failing at once.
///
/// A `Database` is not thread-safe: use one per thread (SQLite's default threading mode allows that).
public final class Database {
    /// Invariant: a valid open connection until `deinit`.
    let handle: OpaquePointer
    public let path: String
    public let isReadOnly: Bool

    public enum Mode: Sendable {
        case readWrite, readOnly
        /// Read-only, and SQLite may assume nobody changes the file (no -shm needed): for a database
        /// on a read-only file system.
        case immutable
    }

    /// Opens (and, in `.readWrite` mode, creates) the database at `path`.
    /// - Parameter busyTimeout: how long a statement waits for another connection's lock, in milliseconds.
    public init(path: String, mode: Mode = .readWrite, busyTimeout: Int32 = 10_000) throws {
        var db: OpaquePointer?
        let flags = mode == .readWrite ? SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE : SQLITE_OPEN_READONLY
        let name =
            mode == .immutable
            ? "file:" + path.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed)! + "?immutable=1" : path
        let rc = sqlite3_open_v2(name, &db, flags | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_URI, nil)
        guard rc == SQLITE_OK, let db else {
            let error = DatabaseError(handle: db, code: rc)
            sqlite3_close_v2(db)
            throw StoreError.cannotOpen(path: path, code: error.code, message: error.message)
        }
        self.handle = db
        self.path = path
        self.isReadOnly = mode != .readWrite
        sqlite3_extended_result_codes(db, 1)
        sqlite3_busy_timeout(db, busyTimeout)
        try execute("PRAGMA foreign_keys = ON")
        if mode == .readWrite {
            let journal = try scalarString("PRAGMA journal_mode = WAL")
            guard journal?.lowercased() == "wal" else {
                throw StoreError.noWAL(path: path, answer: journal ?? "nothing")
            }
            // In WAL mode NORMAL keeps the database consistent across crashes; a power loss may lose the
            // last committed transactions, never corrupt the file.
            try execute("PRAGMA synchronous = NORMAL")
        }
        try execute("PRAGMA cache_size = -65536")  // 64 MiB page cache
        if mode == .readWrite && sqlite3_db_readonly(db, "main") == 1 {
            throw StoreError.sqlite(
                DatabaseError(extendedCode: SQLITE_READONLY, message: "the database file is read-only"))
        }
    }

    deinit { sqlite3_close_v2(handle) }

    /// Runs one or more SQL statements that return no rows.
    public func execute(_ sql: String) throws {
        var message: UnsafeMutablePointer<CChar>?
        let rc = sqlite3_exec(handle, sql, nil, nil, &message)
        if rc != SQLITE_OK {
            let text = message.map { String(cString: $0) } ?? String(cString: sqlite3_errstr(rc))
            sqlite3_free(message)
            throw StoreError.sqlite(
                DatabaseError(extendedCode: sqlite3_extended_errcode(handle), message: text, sql: sql))
        }
    }

    /// Runs one statement with bindings.
    public func execute(_ sql: String, _ values: [DatabaseValue]) throws {
        try prepare(sql).execute(values)
    }

    public func prepare(_ sql: String) throws -> Statement {
        try Statement(database: self, sql: sql)
    }

    /// The first column of the first row, or nil when there is no row or it is NULL.
    public func scalarInt(_ sql: String, _ values: [DatabaseValue] = []) throws -> Int64? {
        let stmt = try prepare(sql)
        try stmt.bind(values)
        guard try stmt.step(), !stmt.isNull(0) else { return nil }
        return stmt.int64(0)
    }

    public func scalarDouble(_ sql: String, _ values: [DatabaseValue] = []) throws -> Double? {
        let stmt = try prepare(sql)
        try stmt.bind(values)
        guard try stmt.step(), !stmt.isNull(0) else { return nil }
        return stmt.double(0)
    }

    public func scalarString(_ sql: String, _ values: [DatabaseValue] = []) throws -> String? {
        let stmt = try prepare(sql)
        try stmt.bind(values)
        guard try stmt.step() else { return nil }
        return stmt.string(0)
    }

    public var isInTransaction: Bool { sqlite3_get_autocommit(handle) == 0 }

    /// Runs `body` in one transaction: committed when it returns, rolled back when it throws
    /// (the first error is rethrown). `BEGIN IMMEDIATE` takes the write lock up front, so a writer
    /// never fails half-way because another process started writing. Inside a transaction already,
    /// `body` runs in a savepoint of it: a throw undoes just its own changes.
    func transaction<R>(_ body: () throws -> R) throws -> R {
        let nested = isInTransaction
        try execute(nested ? "SAVEPOINT nested" : "BEGIN IMMEDIATE")
        do {
            let result = try body()
            try execute(nested ? "RELEASE nested" : "COMMIT")
            return result
        } catch {
            if nested {
                try? execute("ROLLBACK TO nested")
                try? execute("RELEASE nested")
            } else if isInTransaction {
                try? execute("ROLLBACK")
            }
            throw error
        }
    }

    /// Runs `body` in a read transaction (`BEGIN DEFERRED`): every statement in it sees the same
    /// committed state, even while another connection commits. Inside a transaction, it just runs.
    func readTransaction<R>(_ body: () throws -> R) throws -> R {
        if isInTransaction { return try body() }
        try execute("BEGIN DEFERRED")
        do {
            let result = try body()
            try execute("COMMIT")
            return result
        } catch {
            if isInTransaction { try? execute("ROLLBACK") }
            throw error
        }
    }

    /// `PRAGMA integrity_check`: "ok" for a sound file.
    public func integrityCheck() throws -> String {
        let stmt = try prepare("PRAGMA integrity_check")
        var lines: [String] = []
        while try stmt.step() { lines.append(stmt.string(0) ?? "") }
        return lines.joined(separator: "\n")
    }
}
