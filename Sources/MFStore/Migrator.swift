import CZlib
import Foundation

/// One numbered schema migration: a file `NNNN_name.sql` of the top-level `migrations/` folder.
public struct Migration: Sendable, Equatable {
    /// Its number (the file name's prefix).
    public let id: Int
    /// The file name.
    public let name: String
    /// The SQL it applies.
    public let sql: String

    /// CRC-32 of the SQL text, recorded when applied so an edited migration is detected.
    public var checksum: Int64 {
        crc32Checksum(Array(sql.utf8))
    }

    /// A migration from a file `NNNN_name.sql`; throws `StoreError.badMigration` for another name.
    /// - Parameters:
    ///   - name: the file name.
    ///   - sql: its statements.
    /// - Throws: `StoreError.badMigration` for a name that is not `NNNN_name.sql`.
    public init(name: String, sql: String) throws {
        guard let prefix = name.split(separator: "_").first, let id = Int(prefix), id > 0 else {
            throw StoreError.badMigration(
                "migration file \(name) must start with a positive number, like 0001_initial.sql")
        }
        self.id = id
        self.name = name
        self.sql = sql
    }
}

/// Creates and evolves the schema from the migrations compiled into the binary.
///
/// Migrations are append-only and keyed by id; each is applied in its own immediate transaction
/// together with the row that records it (id, name, checksum, time). Opening a database that a newer
/// mfrec has migrated further is refused, and an applied migration whose text changed is reported.
public struct Migrator: Sendable {
    /// The known migrations, by number.
    public let migrations: [Migration]

    /// The migrations embedded at build time from `migrations/*.sql`.
    public static let embedded: Migrator = {
        do {
            return try Migrator(migrations: embeddedMigrationFiles.map { try Migration(name: $0.name, sql: $0.sql) })
        } catch {
            fatalError("embedded migrations are malformed: \(error)")
        }
    }()

    /// A migrator over `migrations`; throws `StoreError.badMigration` when two share a number.
    /// - Parameter migrations: the migrations, in any order.
    /// - Throws: `StoreError.badMigration` when two share a number.
    public init(migrations: [Migration]) throws {
        let sorted = migrations.sorted { $0.id < $1.id }
        for (a, b) in zip(sorted, sorted.dropFirst()) where a.id == b.id {
            throw StoreError.badMigration("two migrations share the number \(a.id): \(a.name) and \(b.name)")
        }
        self.migrations = sorted
    }

    /// The schema version this binary knows.
    public var latestVersion: Int { migrations.last?.id ?? 0 }

    struct Applied {
        let id: Int
        let name: String
        let checksum: Int64
    }

    /// Whether the file has mfrec's schema table.
    func isMfrec(_ db: Database) throws -> Bool {
        try db.scalarInt(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'") ?? 0 > 0
    }

    func applied(in db: Database) throws -> [Applied] {
        guard try isMfrec(db) else { return [] }
        let stmt = try db.prepare("SELECT id, name, checksum FROM schema_migrations ORDER BY id")
        var rows: [Applied] = []
        while try stmt.step() {
            rows.append(Applied(id: stmt.int(0), name: stmt.string(1) ?? "", checksum: stmt.int64(2)))
        }
        return rows
    }

    /// Checks the applied migrations against the known ones without changing anything.
    /// - Returns: the migrations still to apply.
    func pending(in db: Database) throws -> [Migration] {
        let applied = try applied(in: db)
        let known = Dictionary(uniqueKeysWithValues: migrations.map { ($0.id, $0) })
        for row in applied {
            guard let migration = known[row.id] else {
                throw StoreError.newerSchema(path: db.path, version: applied.last?.id ?? row.id, known: latestVersion)
            }
            if migration.checksum != row.checksum {
                throw StoreError.migrationChanged(
                    name: migration.name, path: db.path, recorded: row.checksum, now: migration.checksum)
            }
        }
        let done = Set(applied.map(\.id))
        return migrations.filter { !done.contains($0.id) }
    }

    /// Applies every pending migration, each in its own transaction.
    /// - Returns: the ids applied.
    @discardableResult
    func migrate(_ db: Database) throws -> [Int] {
        let todo = try pending(in: db)
        guard !todo.isEmpty else { return [] }
        try db.execute(
            """
            CREATE TABLE IF NOT EXISTS schema_migrations (
                id INTEGER PRIMARY KEY, name TEXT NOT NULL, checksum INTEGER NOT NULL, applied_at TEXT NOT NULL)
            """)
        for migration in todo {
            try db.transaction {
                // Another process may have applied it while we waited for the write lock.
                if try db.scalarInt(
                    "SELECT count(*) FROM schema_migrations WHERE id = ?", [.integer(Int64(migration.id))]) ?? 0 > 0
                {
                    return
                }
                do {
                    try db.execute(migration.sql)
                } catch StoreError.sqlite(let error) {
                    throw StoreError.migrationFailed(name: migration.name, message: error.message)
                }
                try db.execute(
                    "INSERT INTO schema_migrations (id, name, checksum, applied_at) VALUES (?, ?, ?, ?)",
                    [
                        .integer(Int64(migration.id)), .text(migration.name), .integer(migration.checksum),
                        .text(ISO8601DateFormatter().string(from: Date())),
                    ])
            }
        }
        return todo.map(\.id)
    }
}
