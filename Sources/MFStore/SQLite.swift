import CSQLite
import CZlib
import Foundation

// The one file of MFStore that touches C: the sqlite3 connection and statement handles, and zlib's CRC-32.
//
// Invariants that keep it safe:
// - `Database.handle` is a valid open connection from `init` until `deinit` (which closes it); a
//   `Database` is used by one thread at a time (its owner: a `Store`, itself owned by a `Recommender`
//   behind a lock, or checked out of a `ReadPool`).
// - `Statement.handle` is a valid prepared statement until `deinit`; a statement keeps its `Database`
//   alive, so it is finalized before the connection is closed.
// - Pointers handed to SQLite (`bindText`, `bindBlob`) are bound with SQLITE_TRANSIENT (SQLite copies
//   them); pointers read back (`withBlob`, `string`) are used only until the next step or reset, inside
//   the closure that receives them.

/// A connection to one SQLite database file. Owns its `sqlite3` handle and closes it in `deinit`.
///
/// On open it switches on WAL mode (and checks that SQLite agreed), foreign keys and a busy timeout,
/// so a second process waits for a writer instead of failing at once.
///
/// A `Database` is not thread-safe: use one per thread (SQLite's default threading mode allows that).
final class Database {
    /// Invariant: a valid open connection until `deinit`.
    let handle: OpaquePointer
    let path: String
    let isReadOnly: Bool

    enum Mode: Sendable {
        case readWrite, readOnly
        /// Read-only, and SQLite may assume nobody changes the file (no -shm needed): for a database
        /// on a read-only file system.
        case immutable
    }

    /// Opens (and, in `.readWrite` mode, creates) the database at `path`.
    /// - Parameters:
    ///   - path: the database file.
    ///   - mode: read-write, read-only, or immutable.
    ///   - create: in `.readWrite` mode, create the file when it does not exist.
    ///   - busyTimeout: how long a statement waits for another connection's lock, in milliseconds.
    /// - Throws: `StoreError.cannotOpen`, `.noWAL` or `.sqlite`.
    init(path: String, mode: Mode = .readWrite, create: Bool = true, busyTimeout: Int32 = 10_000) throws {
        var db: OpaquePointer?
        let flags =
            mode == .readWrite
            ? SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0) : SQLITE_OPEN_READONLY
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

    /// How long a statement waits for another connection's lock before failing with `SQLITE_BUSY`.
    func setBusyTimeout(milliseconds: Int32) {
        sqlite3_busy_timeout(handle, milliseconds)
    }

    deinit {
        for handles in idleStatements.values { for statement in handles { sqlite3_finalize(statement) } }
        sqlite3_close_v2(handle)
    }

    /// Prepared statements of this connection not in use, by SQL text: a `Statement` takes one instead of
    /// parsing its SQL again and gives it back, reset and unbound, when it ends (a rating's write runs about
    /// twenty statements, and parsing them was a visible share of its time). At most `idleLimit` are kept.
    /// Invariant: every handle here is a valid, reset statement of `handle`, owned by this pool alone.
    private var idleStatements: [String: [OpaquePointer]] = [:]
    private var idleCount = 0
    private static let idleLimit = 64

    /// An idle prepared statement for `sql`, now owned by the caller, if the pool has one.
    fileprivate func takeIdleStatement(_ sql: String) -> OpaquePointer? {
        guard let statement = idleStatements[sql]?.popLast() else { return nil }
        idleCount -= 1
        return statement
    }

    /// Takes back a statement (reset and unbound here), or finalizes it when the pool is full.
    fileprivate func giveBack(_ statement: OpaquePointer, sql: String) {
        sqlite3_reset(statement)
        sqlite3_clear_bindings(statement)
        guard idleCount < Self.idleLimit else {
            sqlite3_finalize(statement)
            return
        }
        idleStatements[sql, default: []].append(statement)
        idleCount += 1
    }

    /// Rows inserted, updated or deleted by this connection since it opened (`sqlite3_total_changes64`).
    var totalChanges: Int64 { sqlite3_total_changes64(handle) }

    /// Rows the connection's last finished INSERT, UPDATE or DELETE changed itself, its triggers' changes left out
    /// (`sqlite3_changes64`).
    var lastChanges: Int64 { sqlite3_changes64(handle) }

    /// Runs one or more SQL statements that return no rows.
    func execute(_ sql: String) throws {
        var message: UnsafeMutablePointer<CChar>?
        let rc = sqlite3_exec(handle, sql, nil, nil, &message)
        if rc != SQLITE_OK {
            let text = message.map { String(cString: $0) } ?? String(cString: sqlite3_errstr(rc))
            sqlite3_free(message)
            throw StoreError.sqlite(
                DatabaseError(extendedCode: sqlite3_extended_errcode(handle), message: text, sql: sql))
        }
    }

    /// Runs one fixed statement that returns no rows (`BEGIN`, `COMMIT`, ...) through the pool of prepared
    /// statements: `sqlite3_exec` would parse it again on every call, which was a visible share of a one-user
    /// query's two short read transactions.
    func control(_ sql: String) throws {
        try prepare(sql).execute()
    }

    /// Runs one statement with bindings.
    func execute(_ sql: String, _ values: [DatabaseValue]) throws {
        try prepare(sql).execute(values)
    }

    func prepare(_ sql: String) throws -> Statement {
        try Statement(database: self, sql: sql)
    }

    /// The first column of the first row, or nil when there is no row or it is NULL.
    func scalarInt(_ sql: String, _ values: [DatabaseValue] = []) throws -> Int64? {
        let stmt = try prepare(sql)
        try stmt.bind(values)
        guard try stmt.step(), !stmt.isNull(0) else { return nil }
        return stmt.int64(0)
    }

    func scalarDouble(_ sql: String, _ values: [DatabaseValue] = []) throws -> Double? {
        let stmt = try prepare(sql)
        try stmt.bind(values)
        guard try stmt.step(), !stmt.isNull(0) else { return nil }
        return stmt.double(0)
    }

    func scalarString(_ sql: String, _ values: [DatabaseValue] = []) throws -> String? {
        let stmt = try prepare(sql)
        try stmt.bind(values)
        guard try stmt.step() else { return nil }
        return stmt.string(0)
    }

    var isInTransaction: Bool { sqlite3_get_autocommit(handle) == 0 }

    /// Runs `body` in one transaction: committed when it returns, rolled back when it throws
    /// (the first error is rethrown). `BEGIN IMMEDIATE` takes the write lock up front, so a writer
    /// never fails half-way because another process started writing. Inside a transaction already,
    /// `body` runs in a savepoint of it: a throw undoes just its own changes.
    func transaction<R>(_ body: () throws -> R) throws -> R {
        let nested = isInTransaction
        try control(nested ? "SAVEPOINT nested" : "BEGIN IMMEDIATE")
        do {
            let result = try body()
            try control(nested ? "RELEASE nested" : "COMMIT")
            return result
        } catch {
            if nested {
                try? control("ROLLBACK TO nested")
                try? control("RELEASE nested")
            } else if isInTransaction {
                try? control("ROLLBACK")
            }
            throw error
        }
    }

    /// Runs `body` in a read transaction (`BEGIN DEFERRED`): every statement in it sees the same
    /// committed state, even while another connection commits. Inside a transaction, it just runs.
    func readTransaction<R>(_ body: () throws -> R) throws -> R {
        if isInTransaction { return try body() }
        try control("BEGIN DEFERRED")
        do {
            let result = try body()
            try control("COMMIT")
            return result
        } catch {
            if isInTransaction { try? control("ROLLBACK") }
            throw error
        }
    }

    /// `PRAGMA integrity_check`: "ok" for a sound file.
    func integrityCheck() throws -> String {
        let stmt = try prepare("PRAGMA integrity_check")
        var lines: [String] = []
        while try stmt.step() { lines.append(stmt.string(0) ?? "") }
        return lines.joined(separator: "\n")
    }
}

/// A prepared statement. Owns its `sqlite3_stmt` and gives it back to its database's pool of idle
/// statements in `deinit` (reset, which also ends the read it may hold), where the next `Statement` for
/// the same SQL takes it.
///
/// Invariant: `handle` is a valid prepared statement of `database` for the statement's whole life, used by
/// this `Statement` alone; the `Database` it came from outlives it (it holds a strong reference).
final class Statement {
    let handle: OpaquePointer
    let database: Database
    let sql: String

    init(database: Database, sql: String) throws {
        if let idle = database.takeIdleStatement(sql) {
            self.handle = idle
            self.database = database
            self.sql = sql
            return
        }
        var stmt: OpaquePointer?
        let rc = sqlite3_prepare_v2(database.handle, sql, -1, &stmt, nil)
        guard rc == SQLITE_OK, let stmt else {
            throw StoreError.sqlite(DatabaseError(handle: database.handle, code: rc, sql: sql))
        }
        self.handle = stmt
        self.database = database
        self.sql = sql
    }

    deinit { database.giveBack(handle, sql: sql) }

    private func check(_ rc: Int32) throws {
        if rc != SQLITE_OK { throw StoreError.sqlite(DatabaseError(handle: database.handle, code: rc, sql: sql)) }
    }

    // MARK: Binding (1-based indices, as in SQLite)

    func bind(_ value: Int64, at index: Int32) throws { try check(sqlite3_bind_int64(handle, index, value)) }
    func bind(_ value: Int, at index: Int32) throws { try bind(Int64(value), at: index) }
    func bind(_ value: Double, at index: Int32) throws { try check(sqlite3_bind_double(handle, index, value)) }
    func bindNull(at index: Int32) throws { try check(sqlite3_bind_null(handle, index)) }
    func bind(_ value: String, at index: Int32) throws {
        var value = value
        try value.withUTF8 { try bindText(UnsafeRawBufferPointer($0), at: index) }
    }
    /// Binds UTF-8 bytes as text without building a `String`.
    func bindText(_ bytes: UnsafeRawBufferPointer, at index: Int32) throws {
        if let base = bytes.baseAddress, bytes.count > 0 {
            try check(mfrec_bind_text(handle, index, base.assumingMemoryBound(to: CChar.self), Int32(bytes.count)))
        } else {
            try check(mfrec_bind_text(handle, index, "", 0))
        }
    }
    func bind(_ value: String?, at index: Int32) throws {
        if let value { try bind(value, at: index) } else { try bindNull(at: index) }
    }
    func bind(_ value: Int64?, at index: Int32) throws {
        if let value { try bind(value, at: index) } else { try bindNull(at: index) }
    }
    func bindBlob(_ bytes: UnsafeRawBufferPointer, at index: Int32) throws {
        // A zero-length blob still needs a non-null pointer, or SQLite stores NULL.
        let empty: UInt8 = 0
        try withUnsafePointer(to: empty) { fallback in
            try check(
                mfrec_bind_blob(handle, index, bytes.baseAddress ?? UnsafeRawPointer(fallback), Int32(bytes.count)))
        }
    }
    func bindBlob(_ bytes: [UInt8], at index: Int32) throws {
        try bytes.withUnsafeBytes { try bindBlob($0, at: index) }
    }

    // MARK: Stepping

    /// Advances the statement: `true` when a row is available, `false` when done.
    @discardableResult
    func step() throws -> Bool {
        let rc = sqlite3_step(handle)
        switch rc {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        default:
            let error = StoreError.sqlite(DatabaseError(handle: database.handle, code: rc, sql: sql))
            sqlite3_reset(handle)
            throw error
        }
    }

    /// Resets the statement for another execution and clears its bindings.
    func reset() {
        sqlite3_reset(handle)
        sqlite3_clear_bindings(handle)
    }

    /// Runs the statement to completion with the given bindings, then resets it.
    func execute(_ values: [DatabaseValue] = []) throws {
        defer { reset() }
        try bind(values)
        while try step() {}
    }

    func bind(_ values: [DatabaseValue]) throws {
        for (offset, value) in values.enumerated() {
            let index = Int32(offset + 1)
            switch value {
            case .null: try bindNull(at: index)
            case .integer(let v): try bind(v, at: index)
            case .real(let v): try bind(v, at: index)
            case .text(let v): try bind(v, at: index)
            case .blob(let v): try bindBlob(v, at: index)
            }
        }
    }

    // MARK: Columns (0-based indices, as in SQLite)

    func int64(_ column: Int32) -> Int64 { sqlite3_column_int64(handle, column) }
    func int(_ column: Int32) -> Int { Int(sqlite3_column_int64(handle, column)) }
    func double(_ column: Int32) -> Double { sqlite3_column_double(handle, column) }
    func isNull(_ column: Int32) -> Bool { sqlite3_column_type(handle, column) == SQLITE_NULL }
    func string(_ column: Int32) -> String? {
        guard let text = sqlite3_column_text(handle, column) else { return nil }
        let count = Int(sqlite3_column_bytes(handle, column))
        return String(decoding: UnsafeBufferPointer(start: text, count: count), as: UTF8.self)
    }
    /// Calls `body` with the column's blob bytes, valid only during the call.
    func withBlob<R>(_ column: Int32, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        let pointer = sqlite3_column_blob(handle, column)
        let count = Int(sqlite3_column_bytes(handle, column))
        return try body(UnsafeRawBufferPointer(start: pointer, count: pointer == nil ? 0 : count))
    }
    func blob(_ column: Int32) -> [UInt8] { withBlob(column) { Array($0) } }
}

/// A value to bind to a statement.
enum DatabaseValue: Sendable, Equatable {
    case null
    case integer(Int64)
    case real(Double)
    case text(String)
    case blob([UInt8])
}

extension DatabaseValue: ExpressibleByIntegerLiteral, ExpressibleByStringLiteral, ExpressibleByFloatLiteral {
    init(integerLiteral value: Int64) { self = .integer(value) }
    init(stringLiteral value: String) { self = .text(value) }
    init(floatLiteral value: Double) { self = .real(value) }
}

extension DatabaseError {
    init(handle: OpaquePointer?, code: Int32, sql: String? = nil) {
        let message =
            handle.flatMap { sqlite3_errmsg($0).map { String(cString: $0) } }
            ?? String(cString: sqlite3_errstr(code))
        self.init(extendedCode: handle.map { sqlite3_extended_errcode($0) } ?? code, message: message, sql: sql)
    }
}

/// The CRC-32 (zlib's) of some bytes, as stored beside every blob and migration.
func crc32Checksum(_ bytes: [UInt8]) -> Int64 {
    bytes.withUnsafeBufferPointer { Int64(crc32(0, $0.baseAddress, uInt($0.count))) }
}
