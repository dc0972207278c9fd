import Foundation
import TestFixtures
import Testing

@testable import MFStore

private func tempDB() -> String {
    let dir = scratchPath("mfrec-store")
    try! FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir.appendingPathComponent("test.db").path
}

/// The repository's top-level migrations/ folder, found from this source file.
private let migrationsFolder = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("migrations")

@Suite struct MigratorTests {
    @Test func everyMigrationFileIsEmbedded() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: migrationsFolder.path).filter {
            $0.hasSuffix(".sql")
        }.sorted()
        #expect(!files.isEmpty)
        let embedded = Migrator.embedded.migrations
        #expect(embedded.map(\.name) == files, "a migrations/*.sql file is missing from the build: run a clean build")
        for migration in embedded {
            let text = try String(contentsOf: migrationsFolder.appendingPathComponent(migration.name), encoding: .utf8)
            #expect(text == migration.sql, "\(migration.name) differs from the embedded copy")
        }
    }

    @Test func freshDatabaseGetsEverySchemaObject() throws {
        let store = try Store(path: tempDB())
        let tables = Set(
            try (store.db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'")).rows { $0.string(0)! })
        for name in ["users", "items", "ratings", "snapshots", "live_model", "metadata", "schema_migrations"] {
            #expect(tables.contains(name), "missing table \(name)")
        }
        let applied = try store.db.scalarInt("SELECT count(*) FROM schema_migrations")
        #expect(applied == Int64(Migrator.embedded.migrations.count))
    }

    @Test func upToDateDatabaseIsLeftAlone() throws {
        let path = tempDB()
        _ = try Store(path: path)
        let db = try Database(path: path)
        #expect(try Migrator.embedded.migrate(db) == [])
        #expect(try Migrator.embedded.pending(in: db).isEmpty)
    }

    @Test func newMigrationIsAppliedToOlderDatabase() throws {
        let path = tempDB()
        let v1 = try Migrator(migrations: [try Migration(name: "0001_a.sql", sql: "CREATE TABLE a(x);")])
        let v2 = try Migrator(
            migrations: v1.migrations + [try Migration(name: "0002_b.sql", sql: "CREATE TABLE b(y);")])
        let db = try Database(path: path)
        #expect(try v1.migrate(db) == [1])
        #expect(try v2.migrate(db) == [2])
        #expect(try db.scalarInt("SELECT count(*) FROM sqlite_master WHERE name = 'b'") == 1)
    }

    @Test func databaseFromNewerMfrecIsRefused() throws {
        let path = tempDB()
        let db = try Database(path: path)
        let newer = try Migrator(migrations: [
            try Migration(name: "0001_a.sql", sql: "CREATE TABLE a(x);"),
            try Migration(name: "0002_b.sql", sql: "CREATE TABLE b(y);"),
        ])
        try newer.migrate(db)
        let older = try Migrator(migrations: [newer.migrations[0]])
        let error = #expect(throws: StoreError.self) { try older.migrate(db) }
        #expect(
            error?.description.contains("written by a newer mfrec (schema version 2, this mfrec knows up to 1)") == true
        )
    }

    @Test func editedMigrationIsReported() throws {
        let path = tempDB()
        let db = try Database(path: path)
        try Migrator(migrations: [try Migration(name: "0001_a.sql", sql: "CREATE TABLE a(x);")]).migrate(db)
        let edited = try Migrator(migrations: [try Migration(name: "0001_a.sql", sql: "CREATE TABLE a(x, z);")])
        let error = #expect(throws: StoreError.self) { try edited.migrate(db) }
        #expect(error?.description.contains("migration 0001_a.sql was changed after it was applied") == true)
    }

    @Test func failingMigrationLeavesNoTrace() throws {
        let path = tempDB()
        let db = try Database(path: path)
        let broken = try Migrator(migrations: [
            try Migration(name: "0001_a.sql", sql: "CREATE TABLE a(x); CREATE TABLE oops(")
        ])
        #expect(throws: StoreError.self) { try broken.migrate(db) }
        #expect(try db.scalarInt("SELECT count(*) FROM sqlite_master WHERE name = 'a'") == 0)
        #expect(try db.scalarInt("SELECT count(*) FROM schema_migrations") == 0)
    }

    @Test func migrationNamesMustBeNumbered() {
        #expect(throws: StoreError.self) { try Migration(name: "initial.sql", sql: "") }
    }
}

extension Statement {
    func rows<T>(_ map: (Statement) -> T) throws -> [T] {
        var out: [T] = []
        while try step() { out.append(map(self)) }
        return out
    }
}
