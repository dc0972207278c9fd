import Foundation
import TestFixtures
import Testing

@testable import MFStore

private func tempPath() -> String {
    scratchPath("mfrec-db.db").path
}

private struct Boom: Error {}

@Suite struct DatabaseTests {
    @Test func opensInWALModeWithForeignKeys() throws {
        let db = try Database(path: tempPath())
        #expect(try db.scalarString("PRAGMA journal_mode") == "wal")
        #expect(try db.scalarInt("PRAGMA foreign_keys") == 1)
    }

    @Test func transactionRollsBackOnThrow() throws {
        let db = try Database(path: tempPath())
        try db.execute("CREATE TABLE t(x)")
        #expect(throws: Boom.self) {
            try db.transaction {
                try db.execute("INSERT INTO t VALUES (?)", [1])
                throw Boom()
            }
        }
        #expect(try db.scalarInt("SELECT count(*) FROM t") == 0)
        #expect(!db.isInTransaction)
        try db.transaction { try db.execute("INSERT INTO t VALUES (?)", [2]) }
        #expect(try db.scalarInt("SELECT x FROM t") == 2)
    }

    @Test func errorsCarryCodeAndSQLButNotValues() throws {
        let db = try Database(path: tempPath())
        try db.execute("CREATE TABLE t(x PRIMARY KEY)")
        try db.execute("INSERT INTO t VALUES (?)", ["secret-value"])
        let thrown = #expect(throws: StoreError.self) { try db.execute("INSERT INTO t VALUES (?)", ["secret-value"]) }
        guard case .sqlite(let error)? = thrown else {
            Issue.record("expected StoreError.sqlite, got \(String(describing: thrown))")
            return
        }
        #expect(thrown?.sqliteCode == 19)  // SQLITE_CONSTRAINT
        #expect(error.sql == "INSERT INTO t VALUES (?)")
        #expect(error.description.contains("secret-value") == false)
        #expect(error.description.contains("UNIQUE constraint failed") == true)
    }

    @Test func blobsAndNullsRoundTrip() throws {
        let db = try Database(path: tempPath())
        try db.execute("CREATE TABLE t(b, n)")
        try db.execute("INSERT INTO t VALUES (?, ?)", [.blob([1, 2, 255]), .null])
        let stmt = try db.prepare("SELECT b, n FROM t")
        #expect(try stmt.step())
        #expect(stmt.blob(0) == [1, 2, 255])
        #expect(stmt.isNull(1))
    }

    @Test func readOnlyConnectionRefusesWrites() throws {
        let path = tempPath()
        let rw = try Database(path: path)
        try rw.execute("CREATE TABLE t(x)")
        let ro = try Database(path: path, mode: .readOnly)
        let error = #expect(throws: StoreError.self) { try ro.execute("INSERT INTO t VALUES (1)") }
        #expect(error?.sqliteCode == 8)  // SQLITE_READONLY
    }
}
