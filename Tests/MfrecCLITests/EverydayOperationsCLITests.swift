import Foundation
import TestFixtures
import Testing

/// Issue 17 through the real binary: `recommend --ratings` on a database that may only be read, `delete rating`,
/// and `forget user|item`, with what a user sees and the exit statuses.
@Suite struct EverydayOperationsCLITests {
    let dir = folder()

    @Test func sessionsDeleteAndForget() throws {
        let db = try trainedDatabase(in: dir, name: "e.db", users: 150, items: 90, ratings: 4000, epochs: 2).db
        // A session: a list, and the database file byte for byte as it was.
        _ = try mfrec(["info", "--db", db], in: dir)  // any first-open work (the item matrix) done before
        let before = try Data(contentsOf: URL(fileURLWithPath: db))
        let session = try mfrec(["recommend", "--ratings", "1:5,2:4,3:5,no-such:4", "-n", "3", "--db", db], in: dir)
        #expect(session.status == 0, "\(session.stderr)")
        #expect(session.stdout.contains("rank") && session.stderr.contains("left out 1 rating of items"), "\(session)")
        #expect(!session.stdout.contains("\n   1  1 ") && !session.stdout.contains("\n   1  2 "))
        #expect(try Data(contentsOf: URL(fileURLWithPath: db)) == before)
        let bad = try mfrec(["recommend", "--ratings", "1:x", "--db", db], in: dir)
        #expect(bad.status == 64 && bad.stderr.contains("field rating is not a number"), "\(bad.stderr)")
        let both = try mfrec(["recommend", "7", "--ratings", "1:5", "--db", db], in: dir)
        #expect(both.status == 64, "\(both.stderr)")

        // Delete a rating of a user; a second time it is an error that changes nothing.
        let rated = try mfrec(["export", "--ratings", "r.csv", "--db", db], in: dir)
        #expect(rated.status == 0, "\(rated.stderr)")
        let line = try #require(
            try String(contentsOf: dir.appendingPathComponent("r.csv"), encoding: .utf8).split(separator: "\n")
                .dropFirst()
                .first)
        let fields = line.split(separator: ",").map(String.init)
        let delete = try mfrec(["delete", "rating", fields[0], fields[1], "--db", db], in: dir)
        #expect(delete.status == 0 && delete.stdout.contains("deleted the rating"), "\(delete.stderr)")
        let again = try mfrec(["delete", "rating", fields[0], fields[1], "--db", db], in: dir)
        #expect(again.status == 1 && again.stderr.contains("has not rated item"), "\(again.stderr)")

        // Forget the user: gone from lists of keys, a second forget is an error.
        let forget = try mfrec(["forget", "user", fields[0], "--db", db], in: dir)
        #expect(forget.status == 0 && forget.stdout.contains("forgot user \(fields[0]): deleted"), "\(forget.stderr)")
        let missing = try mfrec(["recommend", fields[0], "--cold", "error", "--db", db], in: dir)
        #expect(missing.status == 1, "\(missing.stdout)")
        #expect(try mfrec(["forget", "user", fields[0], "--db", db], in: dir).status == 1)
        let item = try mfrec(["forget", "item", fields[1], "--db", db], in: dir)
        #expect(item.status == 0 && item.stdout.contains("zeroed its row in 1 snapshot"), "\(item.stdout)")
        let similar = try mfrec(["similar", fields[1], "--db", db], in: dir)
        #expect(similar.status == 1, "\(similar.stdout)")
    }
}
