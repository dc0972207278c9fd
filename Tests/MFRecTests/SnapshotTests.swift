import Foundation
import MFEngine
import Testing

@testable import MFRec
@testable import MFStore

/// A small trained database on generated data (fast: no MovieLens needed).
func trainedSmallDatabase(seed: UInt64 = 5, epochs: Int = 15, tune: Bool = false) throws -> (Recommender, URL) {
    let dir = tempFolder()
    let data = dir.appendingPathComponent("r.data").path
    _ = try SyntheticRatings(users: 300, items: 200, ratings: 12_000, seed: seed).write(to: data)
    let rec = try Recommender(path: dir.appendingPathComponent("t.db").path)
    try rec.ingest(path: data)
    try rec.train(smallTrainRequest(epochs: epochs, tune: tune))
    return (rec, dir)
}

/// The training request of `trainedSmallDatabase`: k = 16 for both models, a 1 s tuning budget.
func smallTrainRequest(epochs: Int = 15, tune: Bool = false) -> TrainRequest {
    var request = TrainRequest()
    request.options.epochs = epochs
    request.options.factors = 16
    request.tune = tune
    request.tuneSeconds = 1
    request.rankingParameters.factors = 16
    return request
}

@Suite struct SnapshotTests {
    @Test func listShowCreateDiffDeletePrune() throws {
        let (rec, _) = try trainedSmallDatabase()
        var request = TrainRequest()
        request.tune = false
        request.options.factors = 16
        request.options.epochs = 5
        request.note = "short"
        let second = try rec.train(request).snapshotID
        #expect(try rec.snapshots().map(\.id) == [1, 2])
        #expect(try rec.snapshots().map(\.isLive) == [false, true])
        let info = try rec.snapshot(2)
        #expect(info.note == "short" && info.kind == "trained" && info.parentID == 1 && info.history.count == 5)
        #expect(info.storedBytes > 0 && info.storedBytes < info.modelBytes)  // compression paid off
        #expect(info.watermark == 12_000)

        // Nothing changed since snapshot 2: no duplicate (issue 12).
        #expect(try rec.createSnapshot(note: "copy") == second)
        #expect(try rec.snapshots().count == 2)
        try rec.rate(user: "1", item: "1", rating: 4)
        let frozen = try rec.createSnapshot(note: "copy")
        #expect(try rec.snapshot(frozen).kind == "frozen")
        #expect(try rec.store.liveModel().snapshotID == frozen)
        // The frozen snapshot is the live model as it was.
        #expect(try rec.loadModel(snapshot: frozen).1 == rec.liveState().model)

        let diff = try rec.diffSnapshots(1, 2, sampleUsers: 50)
        #expect(diff.comparedItems == 200 && diff.meanItemCosine < 0.9999 && diff.meanItemCosine > -1)
        #expect(diff.top10Overlap >= 0 && diff.top10Overlap <= 1 && diff.sampledUsers == 50)
        let same = try rec.diffSnapshots(2, frozen, sampleUsers: 50)
        #expect(same.meanItemCosine > 0.99 && same.top10Overlap > 0.9)  // one rating apart

        #expect(throws: StoreError.self) { try rec.deleteSnapshot(frozen) }  // live
        try rec.deleteSnapshot(2)
        #expect(try rec.snapshots().map(\.id) == [1, frozen])
        #expect(throws: StoreError.self) { try rec.deleteSnapshot(2) }
        try rec.rollback(to: 1)
        let pruned = try rec.pruneSnapshots(keep: 0)
        #expect(pruned == [frozen])
        #expect(try rec.snapshots().map(\.id) == [1])
    }

    @Test func rollbackGivesExactlyTheRecommendationsOfThatSnapshot() throws {
        let (rec, _) = try trainedSmallDatabase()
        let users = (1...20).map(String.init)
        let before = try users.map { try rec.queries().recommend(user: $0, n: 10) }
        var request = TrainRequest()
        request.tune = false
        request.options.factors = 8
        request.options.seed = 99
        try rec.train(request)
        let after = try users.map { try rec.queries().recommend(user: $0, n: 10) }
        #expect(after != before)
        let report = try rec.rollback(to: 1)
        #expect(report.savedUpdatesAs == nil)
        let engine = try rec.queries()
        #expect(engine.snapshotID == 1)
        #expect(try users.map { try engine.recommend(user: $0, n: 10) } == before)
    }

    @Test func rollbackSavesUnsavedIncrementalUpdatesFirst() throws {
        let (rec, _) = try trainedSmallDatabase()
        try rec.rate(user: "1", item: "5", rating: 5)
        try rec.rate(user: "new-user", item: "5", rating: 4)
        let live = try rec.store.liveModel()
        #expect(live.dirty && live.updates == 2)
        let updatedModel = try rec.liveState().model
        let report = try rec.rollback(to: 1)
        let saved = try #require(report.savedUpdatesAs)
        #expect(try rec.snapshot(saved).kind == "frozen")
        #expect(try rec.snapshot(saved).metrics?.incrementalUpdates == 2)
        #expect(try rec.loadModel(snapshot: saved).1 == updatedModel)  // nothing lost
        #expect(try !rec.store.liveModel().dirty)
        #expect(try rec.liveState().model.userCount == 300)  // the overlay is gone with the rollback
    }

    @Test func corruptedSnapshotIsDetected() throws {
        let (rec, _) = try trainedSmallDatabase()
        try rec.store.db.execute(
            "UPDATE snapshots SET model = substr(model, 1, 100) || x'00' || substr(model, 102) WHERE id = 1")
        let error = #expect(throws: StoreError.self) { try rec.loadModel(snapshot: 1) }
        #expect(error?.description == "snapshot 1 is corrupt: its model blob does not match its checksum")
        #expect(throws: StoreError.self) { try rec.rollback(to: 1) }
    }

    @Test func anEngineRefusesToAnswerFromAModelThatIsNoLongerLive() throws {
        let (rec, _) = try trainedSmallDatabase()
        let engine = try rec.queries()
        #expect(try engine.recommend(user: "1", n: 3).items.count == 3)
        // Another writer makes snapshot 1 live again, but its blob is damaged: the reload fails, and the
        // engine says so instead of answering from the model it had.
        try rec.rate(user: "1", item: "2", rating: 4)
        try rec.createSnapshot(note: "second")
        try rec.store.db.execute(
            "UPDATE snapshots SET model = substr(model, 1, 100) || x'00' || substr(model, 102) WHERE id = 1")
        try rec.store.db.execute("UPDATE live_model SET snapshot_id = 1, generation = generation + 1")
        let error = #expect(throws: MFRecError.self) { try engine.recommend(user: "1", n: 3) }
        guard case .reloadFailed(let why)? = error else {
            Issue.record("expected reloadFailed, got \(String(describing: error))")
            return
        }
        #expect(why.contains("snapshot 1 is corrupt"))
    }

    @Test func modelBlobRoundTripsCompressed() throws {
        let model = try trainedSmallDatabase().0.loadModel().1
        let (blob, raw) = ModelBlob.encode(model)
        #expect(raw == model.encoded().count)
        #expect(blob.count < raw)
        #expect(try ModelBlob.decode(blob) == model)
        #expect(ModelBlob.unshuffle(ModelBlob.shuffle([1, 2, 3, 4, 5, 6, 7, 8, 9])) == [1, 2, 3, 4, 5, 6, 7, 8, 9])
    }
}

@Suite struct IncrementalTests {
    @Test func oneRatingMovesThePredictionTowardIt() throws {
        let (rec, _) = try trainedSmallDatabase()
        let engine = try rec.queries()
        // Pick a pair the user has not rated.
        let user = try #require(try rec.store.userID(forKey: "3"))
        let rated = Set(try rec.store.ratings(ofUser: user).map(\.item))
        let itemID = (0..<200).first { !rated.contains($0) }!
        let itemKey = try rec.store.item(id: itemID)!.key
        let before = try engine.predict(user: "3", item: itemKey).rating
        let target = before < 3 ? 5.0 : 1.0
        try rec.rate(user: "3", item: itemKey, rating: target)
        let after = try engine.predict(user: "3", item: itemKey).rating  // the same engine follows the update
        #expect(abs(after - target) < abs(before - target))
        #expect(try rec.store.ratings(ofUser: user).contains { $0.item == itemID && $0.rating == target })
    }

    @Test func newUserAndNewItemAreFoldedIn() throws {
        let (rec, _) = try trainedSmallDatabase()
        let report = try rec.rate([
            NewRating(user: "fresh", item: "1", rating: 5), NewRating(user: "fresh", item: "2", rating: 4),
            NewRating(user: "fresh", item: "3", rating: 1),
        ])
        #expect(report.newUsers == 1 && report.foldedUsers == 1)
        // The folded-in vector takes part in the rating model's ranking (asked for explicitly: with three
        // ratings the default ranks by co-occurrence).
        let list = try rec.queries().recommend(user: "fresh", n: 5, cold: .error, by: .rating)
        #expect(list.ranking == .rating && list.items.count == 5)
        #expect(try rec.queries().recommend(user: "fresh", n: 5, by: .cooccurrence).ranking == .cooccurrence)
        #expect(!list.items.contains { ["1", "2", "3"].contains($0.item) })
        // --min-ratings: with fewer stored ratings than asked, the user is served as cold.
        #expect(try rec.queries().recommend(user: "fresh", n: 5, minRatings: 4).coldStart)
        #expect(try !rec.queries().recommend(user: "fresh", n: 5, minRatings: 3).coldStart)
        #expect(throws: MFRecError.coldUser("fresh")) {
            try rec.queries().recommend(user: "fresh", cold: .error, minRatings: 10)
        }

        let item = try rec.rate([
            NewRating(user: "1", item: "brand-new", rating: 5), NewRating(user: "2", item: "brand-new", rating: 4),
        ])
        #expect(item.newItems == 1 && item.foldedItems == 1)
        #expect(!item.matrixUpdatedInPlace)  // a new item grows the file: rewritten whole
        let engine = try rec.queries()
        #expect(try engine.matrix().itemCount == 201)
        #expect(try engine.similar(item: "brand-new", n: 3).count == 3)
        #expect(try engine.predict(user: "3", item: "brand-new").fallback == false)
    }

    @Test func updatesAreDurableAcrossReopen() throws {
        let (rec, dir) = try trainedSmallDatabase()
        try rec.rate(user: "7", item: "9", rating: 5)
        let expected = try rec.liveState().model
        let reopened = try Recommender(path: dir.appendingPathComponent("t.db").path)
        #expect(try reopened.liveState().model == expected)
        #expect(try reopened.store.liveModel().dirty)
    }

    @Test func itemMatrixFollowsInPlaceWithoutARebuild() throws {
        let (rec, _) = try trainedSmallDatabase()
        let engine = try rec.queries()  // holds the mapping
        let report = try rec.rate(user: "4", item: "10", rating: 5)
        #expect(report.matrixUpdatedInPlace)
        let item = try #require(try rec.store.itemID(forKey: "10"))
        let model = try rec.liveState().model
        let mapped = try engine.matrix().item(item)
        #expect(mapped.vector == Array(model.itemVector(item)) && mapped.bias == model.itemBias[item])
        // The file is valid for the new generation: opening it does not rebuild it.
        #expect(try rec.queries().rebuiltMatrix == false)
    }

    @Test func badInputChangesNothing() throws {
        let (rec, dir) = try trainedSmallDatabase()
        let before = try dump(rec.store)
        let matrixBefore = try Data(contentsOf: URL(fileURLWithPath: rec.itemMatrixPath))
        for bad in [Double.nan, .infinity, 9, 0] {
            #expect(throws: MFRecError.self) {
                try rec.rate([NewRating(user: "1", item: "2", rating: 4), NewRating(user: "1", item: "3", rating: bad)])
            }
        }
        #expect(throws: MFRecError.self) { try rec.rate(user: "", item: "2", rating: 3) }
        let file = writeFile(dir, "bad.data", "1\t2\t4\t0\n1\t3\tx\t0\n")
        #expect(throws: MFRecError.self) { try rec.ingestUpdating(path: file) }
        #expect(try dump(rec.store) == before)
        #expect(try Data(contentsOf: URL(fileURLWithPath: rec.itemMatrixPath)) == matrixBefore)
    }

    @Test func ingestUpdateMovesTheModel() throws {
        let (rec, dir) = try trainedSmallDatabase()
        let before = try rec.liveState().model
        let file = writeFile(dir, "more.data", "1\t2\t5\t0\n2\t3\t1\t0\nnewcomer\t4\t5\t0\nnewcomer\t5\t4\t0\n")
        let (ingest, update) = try rec.ingestUpdating(path: file)
        #expect(ingest.ratingsRead == 4 && update.ratings == 4 && update.foldedUsers == 1)
        let after = try rec.liveState().model
        #expect(after.userCount == before.userCount + 1)
        #expect(try rec.store.liveModel().updates == 4)
    }
}
