import Foundation
import TestFixtures
import Testing

@testable import MFStore

/// Issue 14 (the per-query cost of `mfrec serve`): a read-only connection remembers users' ids and ratings
/// between transactions, and must never answer from that memory once another connection committed anything: a
/// new rating, a changed one, a user added after an unknown key was looked up.
@Suite struct ReadMemoTests {
    func fresh(_ reader: Store, _ key: String) throws -> (id: Int, rated: [String])? {
        try reader.read {
            try reader.userID(forKey: key).map { id in
                (id, try reader.ratings(ofUser: id).map { "\($0.item):\($0.rating)" })
            }
        }
    }

    func remembered(_ reader: Store, _ key: String) throws -> (id: Int, rated: [String])? {
        try reader.read {
            try reader.rememberedUser(forKey: key).map { ($0.id, $0.rated.map { "\($0.item):\($0.rating)" }) }
        }
    }

    /// A new database in a scratch folder, written by `fill`: its writing store and its path.
    func database(_ fill: (RatingWriter) throws -> Void) throws -> (Store, String) {
        let path = scratchFolder("memo").appendingPathComponent("m.db").path
        let writer = try Store(path: path)
        try writer.writeRatings(fill)
        return (writer, path)
    }

    /// User "a" with one rating of item "x".
    func oneRating() throws -> (Store, String) {
        try database { w in
            try w.insertUser(id: 0, key: "a")
            try w.insertItem(id: 0, key: "x")
            try w.upsert(user: 0, item: 0, rating: 2, timestamp: nil)
        }
    }

    @Test func anotherConnectionsCommitIsSeen() throws {
        let (writer, path) = try database { w in
            for u in 0..<3 { try w.insertUser(id: Int32(u), key: "u\(u)") }
            for i in 0..<6 { try w.insertItem(id: Int32(i), key: "i\(i)") }
            for u in 0..<3 {
                for i in 0..<3 { try w.upsert(user: Int32(u), item: Int32(u + i), rating: 3, timestamp: nil) }
            }
        }
        let reader = try Store(path: path, mode: .read)
        let before = try remembered(reader, "u1")
        #expect(before?.rated == ["1:3.0", "2:3.0", "3:3.0"])
        #expect(try remembered(reader, "u9") == nil)
        // The second look-ups come from memory (nothing was committed in between).
        #expect(reader.memo.ratings[1] != nil && reader.memo.ids["u9"] == .some(nil))
        #expect(try remembered(reader, "u1")?.rated == before?.rated)

        // Another connection adds a rating, changes one and adds the user looked up before.
        try writer.writeRatings { w in
            try w.upsert(user: 1, item: 5, rating: 4, timestamp: nil)
            try w.upsert(user: 1, item: 2, rating: 1, timestamp: nil)
            try w.insertUser(id: 9, key: "u9")
            try w.upsert(user: 9, item: 0, rating: 5, timestamp: nil)
        }
        for key in ["u1", "u9", "u0"] {
            let (got, expected) = (try remembered(reader, key), try fresh(reader, key))
            #expect(got?.id == expected?.id && got?.rated == expected?.rated, "\(key)")
        }
        #expect(try remembered(reader, "u1")?.rated == ["1:3.0", "2:1.0", "3:3.0", "5:4.0"])
        #expect(try remembered(reader, "u9")?.rated == ["0:5.0"])
        // A deleted rating.
        #expect(try writer.deleteRating(user: 1, item: 3) == 3)
        #expect(try remembered(reader, "u1")?.rated == ["1:3.0", "2:1.0", "5:4.0"])
    }

    /// The live generation read with a user comes from memory only while nothing was committed: a commit that
    /// moves it (training, a rating applied to the model) is seen by the next look-up, outside a transaction too.
    @Test func theGenerationFollowsCommits() throws {
        let (writer, path) = try oneRating()
        let reader = try Store(path: path, mode: .read)
        for step in 1...3 {
            let before = try reader.rememberedGenerationAndUser(forKey: "a")
            #expect(before.generation == Int64(step - 1) && before.fetched?.rated.count == step)
            #expect(try reader.rememberedGenerationAndUser(forKey: "a").generation == before.generation)
            #expect(reader.memo.generation == before.generation)
            try writer.db.execute("UPDATE live_model SET generation = generation + 1 WHERE id = 1")
            try writer.writeRatings { w in
                try w.insertItem(id: Int32(step), key: "x\(step)")
                try w.upsert(user: 0, item: Int32(step), rating: 4, timestamp: nil)
            }
            let after = try reader.rememberedGenerationAndUser(forKey: "a")
            #expect(after.generation == Int64(step) && after.fetched?.rated.count == step + 1, "step \(step)")
            #expect(try reader.rememberedGenerationAndUser(forKey: "nobody").fetched == nil)
        }
    }

    /// A connection that writes keeps no memory (data_version does not move for its own commits), and a look-up
    /// outside a transaction reads through.
    @Test func onlyReadOnlyConnectionsInATransactionRemember() throws {
        let (writer, path) = try oneRating()
        #expect(try writer.read { try writer.rememberedUser(forKey: "a")?.rated.count } == 1)
        #expect(writer.memo.version == nil && writer.memo.ratings.isEmpty)
        let reader = try Store(path: path, mode: .read)
        #expect(try reader.rememberedUser(forKey: "a")?.rated.count == 1)
        #expect(reader.memo.version == nil && reader.memo.ratings.isEmpty)
    }
}
