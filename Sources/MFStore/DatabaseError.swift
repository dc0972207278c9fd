import CSQLite

/// An error reported by SQLite, with the SQL it concerned. Bound values are never included,
/// so an error message can be logged without leaking data.
public struct DatabaseError: Error, CustomStringConvertible, Sendable {
    /// The primary result code (`SQLITE_BUSY`, `SQLITE_CONSTRAINT`, …).
    public var code: Int32 { extendedCode & 0xff }
    /// The extended result code.
    public let extendedCode: Int32
    /// SQLite's own message.
    public let message: String
    /// The statement that failed, if any.
    public let sql: String?

    public init(extendedCode: Int32, message: String, sql: String? = nil) {
        self.extendedCode = extendedCode
        self.message = message
        self.sql = sql
    }

    init(handle: OpaquePointer?, code: Int32, sql: String? = nil) {
        let message =
            handle.flatMap { sqlite3_errmsg($0).map { String(cString: $0) } }
            ?? String(cString: sqlite3_errstr(code))
        self.init(extendedCode: handle.map { sqlite3_extended_errcode($0) } ?? code, message: message, sql: sql)
    }

    public var description: String {
        var text = "SQLite error \(code)"
        if extendedCode != code { text += " (extended \(extendedCode))" }
        text += ": \(message)"
        if code == SQLITE_BUSY || code == SQLITE_LOCKED {
            text += " — another mfrec process is writing to this database; try again when it has finished"
        } else if code == SQLITE_READONLY {
            text += " — the database file or its folder is read-only"
        } else if code == SQLITE_FULL {
            text += " — the disk is full; nothing was changed"
        }
        if let sql { text += " [SQL: \(sql)]" }
        return text
    }
}

/// An error of the store itself (not of SQLite).
public struct StoreError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
