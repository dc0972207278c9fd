import Foundation
import Testing

@testable import MFRec
@testable import MFStore

/// Who moves the write-ahead log into the database file (`Recommender.Checkpointing`).
@Suite struct CheckpointTests {
    @Test func writesLeaveTheCheckpointToTheRecommendersOwnThread() throws {
        let dir = tempFolder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let data = dir.appendingPathComponent("r.data").path
        _ = try SyntheticRatings(users: 120, items: 90, ratings: 3_000, seed: 3).write(to: data)
        let path = dir.appendingPathComponent("c.db").path
        let rec = try Recommender(path: path)
        #expect(!rec.hasBackgroundCheckpointer, "nothing written yet")
        // The writer's own commits never checkpoint: SQLite's automatic checkpoint is off on its connection.
        #expect(try rec.store.db.scalarInt("PRAGMA wal_autocheckpoint") == 0)
        try rec.ingest(path: data)
        #expect(rec.hasBackgroundCheckpointer, "started by the first write")
        var request = TrainRequest()
        request.tune = false
        request.options.epochs = 3
        try rec.train(request)
        let file = URL(fileURLWithPath: path)
        let before = try Data(contentsOf: file)
        // A small write lands in the log; only the background thread can bring it into the database file
        // while this connection stays open.
        try rec.rate(user: "1", item: "2", rating: 5)
        var moved = false
        for _ in 0..<200 where !moved {
            Thread.sleep(forTimeInterval: 0.05)
            moved = try Data(contentsOf: file) != before
        }
        #expect(moved, "the database file did not change within 10 s of the writes")

        // A reader starts no checkpointer; `.inWrites` keeps SQLite's automatic checkpoint.
        let reader = try Recommender(path: path, readOnly: true)
        _ = try reader.catalog()
        #expect(!reader.hasBackgroundCheckpointer)
        let inWrites = try Recommender(path: path, mode: .write, checkpointing: .inWrites)
        try inWrites.rate(user: "1", item: "3", rating: 4)
        #expect(!inWrites.hasBackgroundCheckpointer)
        #expect(try inWrites.store.db.scalarInt("PRAGMA wal_autocheckpoint") == 1000)
    }
}
