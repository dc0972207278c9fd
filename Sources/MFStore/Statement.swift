import CSQLite

/// A prepared statement. Owns its `sqlite3_stmt` and finalizes it in `deinit`.
///
/// Invariant: `handle` is a valid prepared statement of `database` for the statement's whole life;
/// the `Database` it came from outlives it (it holds a strong reference).
public final class Statement {
    let handle: OpaquePointer
    let database: Database
    public let sql: String

    init(database: Database, sql: String) throws {
        var stmt: OpaquePointer?
        let rc = sqlite3_prepare_v2(database.handle, sql, -1, &stmt, nil)
        guard rc == SQLITE_OK, let stmt else {
            throw StoreError.sqlite(DatabaseError(handle: database.handle, code: rc, sql: sql))
        }
        self.handle = stmt
        self.database = database
        self.sql = sql
    }

    deinit { sqlite3_finalize(handle) }

    private func check(_ rc: Int32) throws {
        if rc != SQLITE_OK { throw StoreError.sqlite(DatabaseError(handle: database.handle, code: rc, sql: sql)) }
    }

    // MARK: Binding (1-based indices, as in SQLite)

    public func bind(_ value: Int64, at index: Int32) throws { try check(sqlite3_bind_int64(handle, index, value)) }
    public func bind(_ value: Int, at index: Int32) throws { try bind(Int64(value), at: index) }
    public func bind(_ value: Double, at index: Int32) throws { try check(sqlite3_bind_double(handle, index, value)) }
    public func bindNull(at index: Int32) throws { try check(sqlite3_bind_null(handle, index)) }
    public func bind(_ value: String, at index: Int32) throws {
        var value = value
        try value.withUTF8 { try bindText(UnsafeRawBufferPointer($0), at: index) }
    }
    /// Binds UTF-8 bytes as text without building a `String`.
    public func bindText(_ bytes: UnsafeRawBufferPointer, at index: Int32) throws {
        if let base = bytes.baseAddress, bytes.count > 0 {
            try check(mfrec_bind_text(handle, index, base.assumingMemoryBound(to: CChar.self), Int32(bytes.count)))
        } else {
            try check(mfrec_bind_text(handle, index, "", 0))
        }
    }
    public func bind(_ value: String?, at index: Int32) throws {
        if let value { try bind(value, at: index) } else { try bindNull(at: index) }
    }
    public func bind(_ value: Int64?, at index: Int32) throws {
        if let value { try bind(value, at: index) } else { try bindNull(at: index) }
    }
    public func bindBlob(_ bytes: UnsafeRawBufferPointer, at index: Int32) throws {
        // A zero-length blob still needs a non-null pointer, or SQLite stores NULL.
        let empty: UInt8 = 0
        try withUnsafePointer(to: empty) { fallback in
            try check(
                mfrec_bind_blob(handle, index, bytes.baseAddress ?? UnsafeRawPointer(fallback), Int32(bytes.count)))
        }
    }
    public func bindBlob(_ bytes: [UInt8], at index: Int32) throws {
        try bytes.withUnsafeBytes { try bindBlob($0, at: index) }
    }

    // MARK: Stepping

    /// Advances the statement: `true` when a row is available, `false` when done.
    @discardableResult
    public func step() throws -> Bool {
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
    public func reset() {
        sqlite3_reset(handle)
        sqlite3_clear_bindings(handle)
    }

    /// Runs the statement to completion with the given bindings, then resets it.
    public func execute(_ values: [DatabaseValue] = []) throws {
        defer { reset() }
        try bind(values)
        while try step() {}
    }

    public func bind(_ values: [DatabaseValue]) throws {
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

    public func int64(_ column: Int32) -> Int64 { sqlite3_column_int64(handle, column) }
    public func int(_ column: Int32) -> Int { Int(sqlite3_column_int64(handle, column)) }
    public func double(_ column: Int32) -> Double { sqlite3_column_double(handle, column) }
    public func isNull(_ column: Int32) -> Bool { sqlite3_column_type(handle, column) == SQLITE_NULL }
    public func string(_ column: Int32) -> String? {
        guard let text = sqlite3_column_text(handle, column) else { return nil }
        let count = Int(sqlite3_column_bytes(handle, column))
        return String(decoding: UnsafeBufferPointer(start: text, count: count), as: UTF8.self)
    }
    /// Calls `body` with the column's blob bytes, valid only during the call.
    public func withBlob<R>(_ column: Int32, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        let pointer = sqlite3_column_blob(handle, column)
        let count = Int(sqlite3_column_bytes(handle, column))
        return try body(UnsafeRawBufferPointer(start: pointer, count: pointer == nil ? 0 : count))
    }
    public func blob(_ column: Int32) -> [UInt8] { withBlob(column) { Array($0) } }
}

/// A value to bind to a statement.
public enum DatabaseValue: Sendable, Equatable {
    case null
    case integer(Int64)
    case real(Double)
    case text(String)
    case blob([UInt8])
}

extension DatabaseValue: ExpressibleByIntegerLiteral, ExpressibleByStringLiteral, ExpressibleByFloatLiteral {
    public init(integerLiteral value: Int64) { self = .integer(value) }
    public init(stringLiteral value: String) { self = .text(value) }
    public init(floatLiteral value: Double) { self = .real(value) }
}
