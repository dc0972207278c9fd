import CSQLite
import Foundation

/// An error reported by SQLite, with the SQL it concerned. Bound values are never included,
/// so an error message can be logged without leaking data.
public struct DatabaseError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The primary result code (`SQLITE_BUSY`, `SQLITE_CONSTRAINT`, …).
    public var code: Int32 { extendedCode & 0xff }
    /// The extended result code.
    public let extendedCode: Int32
    /// SQLite's own message.
    public let message: String
    /// The statement that failed, if any.
    public let sql: String?

    /// An error with SQLite's extended result code and message.
    /// - Parameters:
    ///   - extendedCode: SQLite's extended result code.
    ///   - message: SQLite's message.
    ///   - sql: the statement, when one failed.
    public init(extendedCode: Int32, message: String, sql: String? = nil) {
        self.extendedCode = extendedCode
        self.message = message
        self.sql = sql
    }

    /// SQLite's message with its code and a hint; bound values are never included.
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

/// Every error MFStore throws: a caller can switch on the case (SQLite's own failures keep their
/// result code in `sqlite`); `description` is the message the command line prints.
public enum StoreError: Error, CustomStringConvertible, LocalizedError, Sendable, Equatable {
    /// SQLite reported an error (busy, read-only, disk full, a constraint…); the payload has its code.
    case sqlite(DatabaseError)
    /// The file could not be opened; `code` is SQLite's result code.
    case cannotOpen(path: String, code: Int32, message: String)
    /// There is no database at the path (and it was opened read-only, so none was created).
    case noDatabase(path: String)
    /// A write was asked of a database that can only be read.
    case readOnly(path: String)
    /// A read-only database whose schema is older than this binary's.
    case olderSchema(path: String)
    /// The file is a SQLite database of something else (tables, but no mfrec schema); nothing was changed.
    case notMfrec(path: String)
    /// A database written by a newer mfrec.
    case newerSchema(path: String, version: Int, known: Int)
    /// An already-applied migration was edited.
    case migrationChanged(name: String, path: String, recorded: Int64, now: Int64)
    /// A migration failed to apply (its SQL is wrong); nothing of it was applied.
    case migrationFailed(name: String, message: String)
    /// A migration file is named or numbered wrongly.
    case badMigration(String)
    /// SQLite refused to switch the file to WAL mode.
    case noWAL(path: String, answer: String)
    /// There is no snapshot with this id.
    case noSnapshot(Int)
    /// The live snapshot cannot be deleted.
    case liveSnapshot(Int)
    /// Stored data fails its checksum or cannot be decoded: `what` names it ("snapshot 3", "the
    /// co-occurrence embedding", …), `reason` says how.
    case corrupt(what: String, reason: String)

    /// The message the command line prints.
    public var description: String {
        switch self {
        case .sqlite(let error): return error.description
        case .cannotOpen(let path, _, let message): return "cannot open database \(path): \(message)"
        case .notMfrec(let path):
            return "\(path) is a SQLite database but not an mfrec one (it has other tables); nothing was changed"
        case .noDatabase(let path): return "no database at \(path); run `mfrec ingest FILE` first"
        case .readOnly(let path):
            return "\(path) is read-only (the file or its folder cannot be written); nothing was changed"
        case .olderSchema(let path):
            return "\(path) has an older schema, and this command only reads; run `mfrec migrate --db \(path)` "
                + "(or any command that writes) to upgrade it"
        case .newerSchema(let path, let version, let known):
            return "\(path) was written by a newer mfrec (schema version \(version), this mfrec knows up to \(known)); "
                + "upgrade mfrec to open it"
        case .migrationChanged(let name, let path, let recorded, let now):
            return
                "migration \(name) was changed after it was applied to \(path) (checksum \(recorded) recorded, "
                + "\(now) now); "
                + "migrations are append-only: add a new numbered file instead"
        case .migrationFailed(let name, let message): return "migration \(name) failed: \(message)"
        case .badMigration(let why): return why
        case .noWAL(let path, let answer): return "cannot switch \(path) to WAL mode (SQLite answered \(answer))"
        case .noSnapshot(let id): return "there is no snapshot \(id)"
        case .liveSnapshot(let id):
            return "snapshot \(id) is the live model and cannot be deleted; roll back to another snapshot first"
        case .corrupt(let what, let reason): return "\(what) is corrupt: \(reason)"
        }
    }

    /// The same as `description`.
    public var errorDescription: String? { description }

    /// The busy error of a lock the store's callers keep beside the database's (the item matrix file's, see
    /// `Recommender`): the same `isBusy` answer as SQLite's own, so callers retry both alike.
    /// - Parameter message: what was locked, and by whom.
    /// - Returns: a `.sqlite` error with `SQLITE_BUSY`.
    public static func busy(_ message: String) -> StoreError {
        .sqlite(DatabaseError(extendedCode: SQLITE_BUSY, message: message))
    }

    /// True when another connection held the database lock longer than this one would wait
    /// (`SQLITE_BUSY` or `SQLITE_LOCKED`): nothing was changed, and the same call may succeed later.
    public var isBusy: Bool { sqliteCode == SQLITE_BUSY || sqliteCode == SQLITE_LOCKED }

    /// SQLite's primary result code, when SQLite reported the error.
    public var sqliteCode: Int32? {
        switch self {
        case .sqlite(let error): return error.code
        case .cannotOpen(_, let code, _): return code
        default: return nil
        }
    }
}
