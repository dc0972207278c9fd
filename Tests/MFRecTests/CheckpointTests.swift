import Foundation
import Testing

@testable import MFRec
@testable import MFStore

/// Who moves the write-ahead log into the database file (`Recommender.Checkpointing`).
@Suite struct CheckpointTests {
    /// A temp folder (removed by the caller) with a ratings file `r.data` and the path of a database `c.db` not yet
    /// made.
    static func folderWithRatings() throws -> (dir: URL, data: String, path: String) {
        let dir = tempFolder()
        let data = dir.appendingPathComponent("r.data").path
        _ = try SyntheticRatings(users: 120, items: 90, ratings: 3_000, seed: 3).write(to: data)
        return (dir, data, dir.appendingPathComponent("c.db").path)
    }

    @Test func writesLeaveTheCheckpointToTheRecommendersOwnThread() throws {
        let (dir, data, path) = try Self.folderWithRatings()
        defer { try? FileManager.default.removeItem(at: dir) }
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

    /// The RESTART checkpoint follows the length of the log SQLite is using, not the file's size: the file keeps
    /// its largest size after the log starts over, and measuring it made every tick after one burst of writes a
    /// RESTART (writers waiting every second on a server).
    @Test func aLogThatStartedOverIsNotRestartedAgain() throws {
        let (dir, data, path) = try Self.folderWithRatings()
        defer { try? FileManager.default.removeItem(at: dir) }
        let rec = try Recommender(path: path, mode: .create, checkpointing: .inWrites)
        try rec.ingest(path: data)
        let store = try Store(path: path, mode: .write)
        try store.setAutoCheckpoint(pages: 0)
        func write(_ n: Int) throws {
            for i in 0..<n {
                try store.writeRatings { writer in
                    try writer.upsert(
                        user: Int32(i % 100), item: Int32(i % 80), rating: Double(1 + i % 5), timestamp: nil)
                }
            }
        }
        try write(400)  // a log of some MB
        let checkpointer = WALCheckpointer(path: path, every: 0.05, restartBytes: 256 << 10)
        defer { checkpointer.stop() }
        for _ in 0..<200 where checkpointer.restarts.withLock({ $0 }) == 0 { Thread.sleep(forTimeInterval: 0.05) }
        #expect(checkpointer.restarts.withLock { $0 } == 1, "the long log was restarted once")
        let fileSize = { (try? FileManager.default.attributesOfItem(atPath: path + "-wal")[.size] as? Int) ?? 0 }
        #expect(fileSize() > 256 << 10)
        // The next writes start the log over at its beginning: short again, in a file as large as before.
        try write(3)
        Thread.sleep(forTimeInterval: 0.5)
        #expect(fileSize() > 256 << 10)
        #expect(checkpointer.restarts.withLock { $0 } == 1, "a short log in a large file was restarted")
        // Past the limit again, it is restarted again.
        try write(400)
        for _ in 0..<200 where checkpointer.restarts.withLock({ $0 }) == 1 { Thread.sleep(forTimeInterval: 0.05) }
        #expect(checkpointer.restarts.withLock { $0 } == 2)
    }
}
