import Foundation
import MFEngine
import MFStore
import Testing

@testable import MFRec

/// A long-lived `QueryEngine` follows incremental updates by patching a model with the rows written since
/// (issue 14: without copying the whole model per rating, it keeps the state before the current one as a spare
/// and patches that in place). Whichever state it patches, after every update its models must be exactly the
/// ones a fresh decode of the live model gives, and its lists the fresh engine's.
@Suite struct EngineReloadTests {
    @Test func patchedStatesEqualAFreshDecodeAfterEveryUpdate() throws {
        let (rec, _) = try trainedSmallDatabase()
        let engine = try rec.queries()
        _ = try engine.recommend(user: "1", n: 5)
        // Known users rated again, users and items the model has no row for, and a user rated twice in a row, so
        // the spare (two generations back) misses rows of both the last and the one before.
        let updates: [[NewRating]] = [
            [NewRating(user: "4", item: "10", rating: 5)],
            [NewRating(user: "7", item: "11", rating: 1)],
            [NewRating(user: "4", item: "12", rating: 2)],
            [NewRating(user: "newcomer", item: "10", rating: 5), NewRating(user: "newcomer", item: "13", rating: 4)],
            [NewRating(user: "9", item: "new item", rating: 4), NewRating(user: "4", item: "new item", rating: 5)],
            [NewRating(user: "newcomer", item: "14", rating: 3)],
            [NewRating(user: "7", item: "12", rating: 5)],
        ]
        for (step, batch) in updates.enumerated() {
            try rec.rate(batch)
            // Queries between updates make the engine reload (and swap its spare) at every step.
            let lists = try ["1", "4", "7", "newcomer"].map { try engine.recommend(user: $0, n: 8).items.map(\.item) }
            let live = try rec.liveState()
            #expect(try engine.current().model == live.model, "step \(step)")
            #expect(try engine.rankingModel()?.0 == live.ranking?.model, "step \(step)")
            let fresh = try rec.queries()
            let expected = try ["1", "4", "7", "newcomer"].map { try fresh.recommend(user: $0, n: 8).items.map(\.item) }
            #expect(lists == expected, "step \(step)")
            for item in step >= 4 ? ["10", "new item"] : ["10"] {
                #expect(
                    try engine.predict(user: "4", item: item).rating == fresh.predict(user: "4", item: item).rating,
                    "step \(step)")
            }
        }
    }

    /// A loader whose state is no longer the live one must not write it over the file (which would take the file
    /// back a generation): it is told to load again, and the file stays as it was.
    @Test func aStaleStateNeverRebuildsTheItemMatrix() throws {
        let (rec, _) = try trainedSmallDatabase()
        let old = try rec.liveState()
        try rec.rate(user: "4", item: "10", rating: 5)  // the file moves on in place
        let before = try Data(contentsOf: URL(fileURLWithPath: rec.itemMatrixPath))
        #expect(throws: QueryEngine.StaleState.self) {
            try QueryEngine.openMatrix(path: rec.itemMatrixPath, state: old) {
                try rec.store.liveGeneration() == old.live.generation
            }
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: rec.itemMatrixPath)) == before)
        // With the live state it maps the file as it is.
        let live = try rec.liveState()
        let (mapped, rebuilt) = try QueryEngine.openMatrix(path: rec.itemMatrixPath, state: live) {
            try rec.store.liveGeneration() == live.live.generation
        }
        #expect(!rebuilt && mapped.mappedGeneration == UInt64(live.live.generation))
    }

    /// A writer whose cached live model another writer moved on (a CLI `rate` beside a server) patches its cache
    /// forward with the rows written since; what it then holds and writes must be what a fresh decode gives.
    @Test func aWriterFollowsAnotherWritersUpdates() throws {
        let (first, dir) = try trainedSmallDatabase()
        let second = try Recommender(path: dir.appendingPathComponent("t.db").path)
        try second.rate(user: "5", item: "11", rating: 4)  // loads its cache
        let batches: [[NewRating]] = [
            [NewRating(user: "4", item: "10", rating: 5)],
            [
                NewRating(user: "brand new", item: "12", rating: 2),
                NewRating(user: "4", item: "another new", rating: 4),
            ],
            [NewRating(user: "5", item: "10", rating: 1)],
        ]
        for (step, batch) in batches.enumerated() {
            try first.rate(batch)
            try second.rate(user: "5", item: "\(20 + step)", rating: 3)
            let fresh = try second.liveState()
            let cached = try second.serialized { try second.cachedLiveState() }
            #expect(cached.model == fresh.model, "step \(step)")
            #expect(cached.ranking?.model == fresh.ranking?.model, "step \(step)")
            #expect(cached.live.generation == fresh.live.generation, "step \(step)")
        }
    }

    /// The engine's read connections remember a user's ratings between queries (issue 14's per-query cost): a
    /// rating stored by another connection without touching the model (a plain `ingest`) must still leave the
    /// next list at once, as it did when every query read the ratings.
    @Test func aRatingIngestedElsewhereLeavesTheNextList() throws {
        let (rec, dir) = try trainedSmallDatabase()
        let engine = try rec.queries()
        for by in [Ranker.ranking, .rating] {
            let first = try engine.recommend(user: "4", n: 5, by: by).items.map(\.item)
            #expect(try engine.recommend(user: "4", n: 5, by: by).items.map(\.item) == first)
            let other = try Recommender(path: rec.path)
            try other.ingest(path: writeFile(dir, "more-\(by).data", "4\t\(first[0])\t2\t0\n"))
            let next = try engine.recommend(user: "4", n: 5, by: by).items.map(\.item)
            #expect(!next.contains(first[0]), "\(by): \(next)")
            #expect(next == (try rec.queries().recommend(user: "4", n: 5, by: by).items.map(\.item)), "\(by)")
        }
    }

    /// An incremental update holds the item matrix lock from before its commit until the file carries the new
    /// generation (issue 14's mixed-load tail): a query that reads the new generation and then gets the lock finds
    /// the file stamped. Before, the commit came first, and a query getting the lock in between found the file
    /// behind the database and rewrote it whole (fsync and all, on a server's event loop).
    @Test func anUpdateCommitsOnlyUnderTheItemMatrixLock() throws {
        let (rec, _) = try trainedSmallDatabase()
        let observer = try Recommender(path: rec.path, mode: .read)
        let before = try observer.store.liveGeneration()
        let ratings = try observer.ratingCount()
        let inode = ItemPrecisionServeTests.inode(rec.itemMatrixPath)
        let done = DispatchSemaphore(value: 0)
        let failure = Locked<Error?>(nil)
        try ItemMatrix.exclusively(path: rec.itemMatrixPath) { () throws -> Void in
            Thread {
                do { try rec.rate(user: "under lock", item: "10", rating: 5) } catch {
                    failure.withLock { $0 = error }
                }
                done.signal()
            }.start()
            Thread.sleep(forTimeInterval: 0.3)
            // The writer waits for the lock before committing anything.
            #expect(try observer.store.liveGeneration() == before)
            #expect(try observer.ratingCount() == ratings)
        }
        #expect(done.wait(timeout: .now() + 30) == .success)
        #expect(failure.withLock { $0 == nil })
        let live = try observer.store.liveGeneration()
        #expect(live > before)
        #expect(try observer.ratingCount() == ratings + 1)
        // Stamped in place: the same file, with the new generation.
        #expect(ItemPrecisionServeTests.inode(rec.itemMatrixPath) == inode)
        #expect(try rec.queries().matrix().mappedGeneration == UInt64(live))
    }

    /// The item matrix lock is waited for as long as the database's lock (`setLockWait`; a server's bound): past
    /// it the update fails busy — a server's 503 — and nothing is stored.
    @Test func anUpdateGivesUpOnTheItemMatrixLockAfterTheLockWait() throws {
        let (rec, _) = try trainedSmallDatabase()
        rec.setLockWait(milliseconds: 150)
        let before = try rec.store.liveGeneration()
        let ratings = try rec.ratingCount()
        let started = Date()
        ItemMatrix.exclusively(path: rec.itemMatrixPath) {
            do {
                try rec.rate(user: "4", item: "10", rating: 5)
                Issue.record("the rating was stored while another writer held the item matrix lock")
            } catch let error as StoreError {
                #expect(error.isBusy, "\(error)")
            } catch {
                Issue.record("\(error)")
            }
        }
        #expect(Date().timeIntervalSince(started) >= 0.15)
        #expect(try rec.store.liveGeneration() == before)
        #expect(try rec.ratingCount() == ratings)
        try rec.rate(user: "4", item: "10", rating: 5)
        #expect(try rec.store.liveGeneration() > before)
    }
}
