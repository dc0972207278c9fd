import Foundation
import Testing

@testable import MFEngine
@testable import MFRec
@testable import MFStore

/// `forget(user:)`, `forget(item:)` and `deleteRating`: nothing of the forgotten key is left in the database, its
/// -wal file or the item matrix; every snapshot still loads and rolls back, without the row; other users are
/// predicted as before.
@Suite struct ForgetTests {
    /// Generated ratings plus a user and an item with UUID keys, two trained snapshots (the second frozen after
    /// incremental updates), and live updates on top.
    static func database() throws -> (Recommender, URL, user: String, item: String) {
        let dir = tempFolder()
        let user = UUID().uuidString, item = UUID().uuidString
        let data = dir.appendingPathComponent("r.data").path
        _ = try SyntheticRatings(users: 300, items: 150, ratings: 9_000, seed: 21).write(to: data)
        var extra = (1...25).map { "\(user)\t\($0)\t\(1 + $0 % 5)\t\(2_000_000_000 + $0)" }
        extra += (1...30).map { "\($0)\t\(item)\t\(1 + $0 % 5)\t\(2_000_000_100 + $0)" }
        let more = writeFile(dir, "more.data", extra.joined(separator: "\n") + "\n")
        let rec = try Recommender(path: dir.appendingPathComponent("f.db").path)
        try rec.ingest(path: data)
        try rec.ingest(path: more)
        var request = TrainRequest()
        request.tune = false
        request.options.epochs = 8
        request.options.factors = 8
        try rec.train(request)
        try rec.rate(user: user, item: "40", rating: 5)
        try rec.rate(user: "3", item: item, rating: 4)
        _ = try rec.createSnapshot(note: "frozen")
        request.options.factors = 6
        try rec.train(request)
        try rec.rate(user: user, item: "41", rating: 2)
        try rec.rate(user: "4", item: item, rating: 5)
        return (rec, dir, user, item)
    }

    /// Every file of the database: the file itself, its -wal file and the item matrix.
    func files(_ rec: Recommender) -> [String] { [rec.path, rec.path + "-wal", rec.itemMatrixPath] }

    func contains(_ path: String, _ needle: String) -> Bool {
        guard let bytes = FileManager.default.contents(atPath: path) else { return false }
        return bytes.range(of: Data(needle.utf8)) != nil
    }

    /// Predictions of users 0–49 for items 0–29 by the live model and by each snapshot.
    func predictions(_ rec: Recommender, skipping skipped: Int? = nil) throws -> [[Float]] {
        var out: [[Float]] = []
        let models = try [rec.liveState().model] + rec.snapshots().map { try rec.loadModel(snapshot: $0.id).1 }
        for model in models {
            out.append(
                (0..<50).filter { $0 != skipped }.flatMap { u in
                    (0..<30).filter { $0 != skipped }.map { i in
                        model.predictOrFallback(user: u, knownUser: model.hasUser(u), item: i)
                    }
                })
        }
        return out
    }

    @Test func forgettingAUserLeavesNoByteOfItsKey() throws {
        let (rec, dir, user, _) = try Self.database()
        defer { try? FileManager.default.removeItem(at: dir) }
        let id = try #require(try rec.store.userID(forKey: user))
        try rec.withoutBackgroundCheckpoint { try rec.store.checkpoint() }
        #expect(contains(rec.path, user), "the scan must find the key before the forget")
        let others = try predictions(rec)
        let report = try rec.forget(user: user)
        #expect(report.ratings == 27, "\(report)")
        #expect(report.snapshots == 3 && report.checkpointed, "\(report)")
        for path in files(rec) { #expect(!contains(path, user), "\(path) still holds the key") }
        #expect(try rec.store.userID(forKey: user) == nil)
        #expect(try rec.store.ratings(ofUser: id).isEmpty)
        // Every snapshot loads (its checksum is the new blob's), has no row for the user, and rolls back.
        for snapshot in try rec.snapshots() {
            let model = try rec.loadModel(snapshot: snapshot.id).1
            #expect(!model.hasUser(id) && model.userCount > id)
            #expect(try rec.loadRankingModel(snapshot: snapshot.id) != nil)
            #expect(snapshot.note?.contains("a user was forgotten") == true)
        }
        #expect(!(try rec.liveState().model.hasUser(id)))
        // Users 0–49 are not the forgotten one (it was added last): their predictions did not move.
        #expect(try predictions(rec) == others)
        #expect(throws: MFRecError.self) { try rec.queries().recommend(user: user, cold: .error) }
        for snapshot in try rec.snapshots() {
            try rec.rollback(to: snapshot.id)
            #expect(try rec.queries().recommend(user: "7", n: 5).items.count == 5)
        }
        // The same key can come back as a new user.
        try rec.rate(user: user, item: "5", rating: 4)
        #expect(try rec.store.userID(forKey: user) != id)
    }

    @Test func forgettingAnItemLeavesNoByteOfItsKeyAndNoVector() throws {
        let (rec, dir, _, item) = try Self.database()
        defer { try? FileManager.default.removeItem(at: dir) }
        let id = try #require(try rec.store.itemID(forKey: item))
        // An engine opened before the forget (a running server's) caches the popular list.
        let early = try rec.queries()
        _ = try early.recommend(user: "nobody", n: 200)
        let report = try rec.forget(item: item)
        #expect(report.ratings == 30, "\(report)")  // 30 users, two of whom rated it again
        #expect(report.snapshots == 3 && report.checkpointed, "\(report)")
        for path in files(rec) { #expect(!contains(path, item), "\(path) still holds the key") }
        for snapshot in try rec.snapshots() {
            #expect(!(try rec.loadModel(snapshot: snapshot.id).1.hasItem(id)))
            let ranking = try #require(try rec.loadRankingModel(snapshot: snapshot.id)).0
            #expect(!ranking.hasFittedVector(id) && ranking.itemRow(id).vector.allSatisfy { $0 == 0 })
        }
        let embedding = try #require(try rec.queries().cooccurrence())
        #expect(embedding.vectors[(id * embedding.factors)..<((id + 1) * embedding.factors)].allSatisfy { $0 == 0 })
        // No ranker lists it for anyone.
        let engine = try rec.queries()
        for by in [Ranker.ranking, .rating, .cooccurrence, .popular] {
            for user in ["3", "4", "10"] {
                let list = try engine.recommend(user: user, n: 200, by: by)
                #expect(!list.items.contains { $0.item == item || Store.isForgotten(key: $0.item) }, "\(by) \(user)")
            }
        }
        for by in [Ranker.ranking, .rating] {
            #expect(!(try engine.similar(item: "7", n: 500, by: by)).contains { Store.isForgotten(key: $0.item) })
        }
        // The engine that was open before: an unknown user's popular list does not hold it either.
        let popular = try early.recommend(user: "nobody", n: 200)
        #expect(popular.coldStart && !popular.items.isEmpty)
        #expect(!popular.items.contains { $0.item == item || Store.isForgotten(key: $0.item) })
        let all = dir.appendingPathComponent("all.csv").path
        try engine.recommendAll(n: 500, to: all)
        #expect(!(try String(contentsOfFile: all, encoding: .utf8)).contains("forgotten"))
    }

    @Test func aForgetKilledBeforeItsCheckpointIsFinishedByTheNextWriter() throws {
        let (path, marker, dir, user) = try {
            let (rec, dir, user, _) = try Self.database()
            // A reader holding a snapshot of the database keeps the checkpoint from truncating the log.
            let reader = try Store(path: rec.path, mode: .read)
            let report = try reader.read { () -> ForgetReport in
                _ = try reader.ratingCount()
                return try rec.forget(user: user)
            }
            #expect(!report.checkpointed)
            #expect(FileManager.default.fileExists(atPath: rec.scrubMarkerPath))
            return (rec.path, rec.scrubMarkerPath, dir, user)
        }()  // the forgetting writer and the reader are gone (closed, as a killed process's are)
        defer { try? FileManager.default.removeItem(at: dir) }
        let reopened = try Recommender(path: path, mode: .write)
        #expect(!FileManager.default.fileExists(atPath: marker))
        for path in files(reopened) { #expect(!contains(path, user), "\(path) still holds the key") }
    }

    /// The marker is what lets the next writer finish a killed forget, so a forget that cannot write it fails
    /// before changing anything (a directory in its place: creating the file fails even for root).
    @Test func aForgetThatCannotWriteItsMarkerChangesNothing() throws {
        let (rec, dir, user, _) = try Self.database()
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.createDirectory(atPath: rec.scrubMarkerPath, withIntermediateDirectories: false)
        let before = try rec.ratingCount()
        #expect(throws: MFRecError.self) { try rec.forget(user: user) }
        #expect(try rec.ratingCount() == before)
        #expect(contains(rec.path, user) || contains(rec.path + "-wal", user))
        try FileManager.default.removeItem(atPath: rec.scrubMarkerPath)
        _ = try rec.forget(user: user)
        #expect(try rec.ratingCount() == before - 27)
    }

    @Test func deletingARatingRefitsTheUserAndFreesTheItem() throws {
        let (rec, dir, user, _) = try Self.database()
        defer { try? FileManager.default.removeItem(at: dir) }
        let id = try #require(try rec.store.userID(forKey: user))
        let before = Array(try rec.liveState().model.userVector(id))
        let count = try rec.store.ratingCount()
        try rec.deleteRating(user: user, item: "40")
        #expect(try rec.store.ratingCount() == count - 1)
        #expect(!(try rec.store.ratings(ofUser: id).contains { $0.item == (try rec.store.itemID(forKey: "40"))! }))
        let after = try rec.liveState().model
        #expect(Array(after.userVector(id)) != before && after.hasUser(id))
        // Fitted again from the remaining ratings: the fold-in of those ratings, exactly.
        var expected = after
        let updater = UpdateOptions().updater(trainedWith: try rec.liveState().snapshot.options ?? TrainingOptions())
        let left = try rec.store.ratings(ofUser: id).map { (item: $0.item, rating: Float($0.rating)) }
        #expect(updater.foldInUser(&expected, user: id, ratings: left))
        #expect(Array(expected.userVector(id)) == Array(after.userVector(id)))
        // The item may be recommended to the user again; a reopened database agrees.
        let list = try Recommender(path: rec.path, mode: .read).queries().recommend(user: user, n: 500, by: .rating)
        #expect(list.items.contains { $0.item == "40" })
        #expect(throws: MFRecError.self) { try rec.deleteRating(user: user, item: "40") }
    }
}
