import Foundation
import TestFixtures
import Testing

@testable import MFStore

/// Issue 12, defect 4: only commands that write create a database; a SQLite file of something else is
/// refused untouched; a failed first ingest leaves nothing behind; a read-only command never migrates.
@Suite struct DatabaseAccessTests {
    static let readCommands: [[String]] = [
        ["info"], ["recommend", "1"], ["snapshot", "list"], ["snapshot", "show", "1"], ["snapshot", "diff", "1", "1"],
        ["similar", "1"], ["predict", "1", "1"], ["eval"], ["export", "-o", "out"],
        ["export", "--ratings", "ratings.csv"],
    ]
    static let writeCommands: [[String]] = [
        ["train", "--epochs", "1"], ["rate", "1", "1", "3"], ["snapshot", "create"], ["rollback", "1"],
        ["snapshot", "prune", "--keep", "1"], ["ingest", "--update", "r.csv"],
        ["import", "spark", "r.csv"],
    ]

    @Test func noCommandButIngestCreatesADatabase() throws {
        let dir = folder()
        try "1,1,3\n".write(to: dir.appendingPathComponent("r.csv"), atomically: true, encoding: .utf8)
        for command in Self.readCommands + Self.writeCommands {
            let run = try mfrec(command + ["--db", "typo.db"], in: dir)
            #expect(run.status == 1, "\(command): \(run.status) \(run.stderr)")
            #expect(run.stderr.contains("no database at typo.db"), "\(command): \(run.stderr)")
            let left = try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted()
            #expect(left == ["r.csv"], "\(command) left \(left)")
        }
        // An existing 0-byte file is no database for a reader either, and stays 0 bytes.
        _ = FileManager.default.createFile(atPath: dir.appendingPathComponent("empty.db").path, contents: nil)
        let run = try mfrec(["info", "--db", "empty.db"], in: dir)
        #expect(run.status == 1 && run.stderr.contains("no database at empty.db"), "\(run.stderr)")
        #expect(try Data(contentsOf: dir.appendingPathComponent("empty.db")).isEmpty)
    }

    @Test func aSQLiteFileOfSomethingElseIsRefusedUnchanged() throws {
        let dir = folder()
        let path = dir.appendingPathComponent("other.sqlite").path
        do {
            let db = try Database(path: path)
            try db.execute("CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('keep me')")
        }
        for suffix in ["-wal", "-shm"] { unlink(path + suffix) }
        try "1,1,3\n".write(to: dir.appendingPathComponent("r.csv"), atomically: true, encoding: .utf8)
        let before = try Data(contentsOf: URL(fileURLWithPath: path))
        for command in Self.readCommands + Self.writeCommands + [["ingest", "r.csv"], ["migrate"]] {
            let run = try mfrec(command + ["--db", "other.sqlite"], in: dir)
            #expect(run.status == 1, "\(command): \(run.status) \(run.stderr)")
            #expect(run.stderr.contains("not an mfrec"), "\(command): \(run.stderr)")
            #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == before, "\(command) changed the file")
        }
        #expect(try Database(path: path, mode: .readOnly).scalarString("SELECT body FROM notes") == "keep me")
    }

    @Test func aFailedFirstIngestLeavesNoDatabase() throws {
        let dir = folder()
        try "1,1,3\n2,x\n".write(to: dir.appendingPathComponent("bad.csv"), atomically: true, encoding: .utf8)
        try "1,1,3\n2,1,4\n".write(to: dir.appendingPathComponent("good.csv"), atomically: true, encoding: .utf8)
        for file in ["nosuch.csv", "bad.csv"] {
            let run = try mfrec(["ingest", file, "--db", "new.db"], in: dir)
            #expect(run.status == 1, "\(file): \(run.stderr)")
            let left = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasPrefix("new.db") }
            #expect(left.isEmpty, "\(file) left \(left)")
        }
        // An empty file the user made stays (empty) after a failure, and takes a good ingest.
        _ = FileManager.default.createFile(atPath: dir.appendingPathComponent("made.db").path, contents: nil)
        #expect(try mfrec(["ingest", "bad.csv", "--db", "made.db"], in: dir).status == 1)
        #expect(try Data(contentsOf: dir.appendingPathComponent("made.db")).isEmpty)
        let good = try mfrec(["ingest", "good.csv", "--db", "made.db"], in: dir)
        #expect(good.status == 0 && good.stdout.contains("ingested 2 ratings"), "\(good.stderr)")
        // A failure on an existing database keeps it and its ratings.
        #expect(try mfrec(["ingest", "bad.csv", "--db", "made.db"], in: dir).status == 1)
        #expect(try mfrec(["info", "--db", "made.db"], in: dir).stdout.contains("ratings      2"))
    }

    @Test func aReadOnlyCommandNeverMigrates() throws {
        let dir = folder()
        let path = dir.appendingPathComponent("old.db").path
        do {
            let db = try Database(path: path)
            let embedded = Migrator.embedded.migrations
            try Migrator(migrations: Array(embedded.prefix(embedded.count - 1))).migrate(db)
            try db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        }
        let before = try Data(contentsOf: URL(fileURLWithPath: path))
        for command in Self.readCommands {
            let run = try mfrec(command + ["--db", "old.db"], in: dir)
            #expect(run.status == 1, "\(command): \(run.stderr)")
            #expect(run.stderr.contains("older schema") && run.stderr.contains("mfrec migrate"), "\(run.stderr)")
            #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == before, "\(command) changed the file")
        }
        let migrate = try mfrec(["migrate", "--db", "old.db"], in: dir)
        #expect(migrate.status == 0, "\(migrate.stderr)")
        #expect(migrate.stdout.contains("schema version \(Migrator.embedded.latestVersion)"), "\(migrate.stdout)")
        #expect(try mfrec(["info", "--db", "old.db"], in: dir).status == 0)
    }

    @Test func anEmptyDatabasePathIsAUsageError() throws {
        let run = try mfrec(["info", "--db", ""], in: folder())
        #expect(run.status == 64 && run.stderr.contains("--db"), "\(run.stderr)")
    }
}
