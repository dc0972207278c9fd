import Foundation
import Testing

@testable import MFEngine
@testable import MFRec
@testable import MFStore

/// The training cache (`<database>.ratings`): a first ingest writes it, `train` reads it when it holds the
/// ratings' current state and trains exactly the model the ratings table gives, any write or deletion makes it
/// stale (the next `train` reads the table and writes it again), `forget` removes it, and a damaged file is
/// refused.
@Suite struct TrainingCacheTests {
    /// Generated ratings (with a repeated pair: the later value is the stored one) ingested into a fresh
    /// database that keeps the cache whatever its size.
    static func database(in dir: URL) throws -> Recommender {
        let data = dir.appendingPathComponent("r.data").path
        _ = try SyntheticRatings(users: 300, items: 150, ratings: 9_000, seed: 5).write(to: data)
        var text = try String(contentsOfFile: data, encoding: .utf8)
        text += "7\t9\t1\t2000000000\n7\t9\t5\t2000000001\n"  // one pair twice: the second is kept
        try text.write(toFile: data, atomically: true, encoding: .utf8)
        let rec = try Recommender(path: dir.appendingPathComponent("c.db").path)
        rec.setTrainingCacheMinimum(0)
        try rec.ingest(path: data)
        return rec
    }

    static var request: TrainRequest {
        var request = TrainRequest()
        request.tune = false
        request.rankingModel = false
        request.cooccurrenceFactors = 0
        request.options.epochs = 4
        request.options.factors = 6
        request.testFraction = 0.1
        return request
    }

    /// Every stored rating, in (user, item) order, from the ratings table.
    static func stored(_ rec: Recommender) throws -> RatingTriples {
        try rec.loadSplit(.none, maxSeq: try rec.store.maxSequence()).train
    }

    /// The ratings the cache file holds for the database's current state (nil: it does not hold them).
    static func cached(_ rec: Recommender) throws -> RatingTriples? {
        guard let stamp = try rec.serialized({ try rec.cacheStamp(maxSeq: try rec.store.maxSequence()) }) else {
            return nil
        }
        return TrainingCache.withRatings(path: rec.trainingCachePath, stamp: stamp) {
            RatingTriples(users: Array($0.users), items: Array($0.items), ratings: Array($0.ratings))
        }
    }

    static func same(_ a: RatingTriples, _ b: RatingTriples) -> Bool {
        a.users == b.users && a.items == b.items && a.ratings.map(\.bitPattern) == b.ratings.map(\.bitPattern)
    }

    @Test func aFirstIngestWritesTheCacheAndTrainingFromItGivesTheTablesModel() throws {
        let dir = tempFolder()
        let rec = try Self.database(in: dir)
        let fromIngest = try #require(try Self.cached(rec))
        #expect(Self.same(fromIngest, try Self.stored(rec)))
        let pair = (0..<fromIngest.count).filter {
            fromIngest.users[$0] == (try? rec.store.userID(forKey: "7")).flatMap { $0 }.map(Int32.init)
                && fromIngest.items[$0] == (try? rec.store.itemID(forKey: "9")).flatMap { $0 }.map(Int32.init)
        }
        #expect(pair.count == 1 && fromIngest.ratings[pair[0]] == 5)

        let cachedRun = try rec.train(Self.request)
        let (fromCache, cacheSeconds) = (cachedRun.loadedFromCache, cachedRun.cacheSeconds)
        #expect(fromCache && cacheSeconds == 0)
        // The same training with the file gone reads the table, and gives the same model bit for bit.
        let copy = dir.appendingPathComponent("copy.db").path
        for suffix in ["", "-wal"] where FileManager.default.fileExists(atPath: rec.path + suffix) {
            try FileManager.default.copyItem(atPath: rec.path + suffix, toPath: copy + suffix)
        }
        let other = try Recommender(path: copy, mode: .write)
        other.setTrainingCacheMinimum(0)
        #expect(!FileManager.default.fileExists(atPath: other.trainingCachePath))
        let tableRun = try other.train(Self.request)
        let tableFromCache = tableRun.loadedFromCache
        #expect(!tableFromCache)
        #expect(tableRun.trainRatings == cachedRun.trainRatings && tableRun.testRatings == cachedRun.testRatings)
        #expect(tableRun.model.itemFactors == cachedRun.model.itemFactors)
        #expect(tableRun.model.userFactors == cachedRun.model.userFactors)
        #expect(tableRun.runs[0].test == cachedRun.runs[0].test)
        // That run wrote the cache for the next one.
        #expect(FileManager.default.fileExists(atPath: other.trainingCachePath))
        #expect(try other.train(Self.request).loadedFromCache)
    }

    @Test func aWriteOrADeletionMakesTheCacheStaleAndTheNextTrainRebuildsIt() throws {
        let dir = tempFolder()
        let rec = try Self.database(in: dir)
        #expect(try rec.train(Self.request).loadedFromCache)
        // A new rating: the stamp moves, the file is ignored, the table is read and the file written again.
        try rec.rate(user: "3", item: "77", rating: 2)
        #expect(try Self.cached(rec) == nil)
        let afterRate = try rec.train(Self.request)
        let (fromCache, cacheSeconds) = (afterRate.loadedFromCache, afterRate.cacheSeconds)
        #expect(!fromCache && cacheSeconds > 0)
        #expect(Self.same(try #require(try Self.cached(rec)), try Self.stored(rec)))
        #expect(try rec.train(Self.request).loadedFromCache)
        // A deleted rating leaves the sequence where it was; the epoch moves instead.
        try rec.deleteRating(user: "3", item: "77")
        #expect(try Self.cached(rec) == nil)
        #expect(!(try rec.train(Self.request).loadedFromCache))
        #expect(Self.same(try #require(try Self.cached(rec)), try Self.stored(rec)))
        // Forgetting a user removes the file: it held their ratings.
        try rec.forget(user: "5")
        #expect(!FileManager.default.fileExists(atPath: rec.trainingCachePath))
        #expect(!(try rec.train(Self.request).loadedFromCache))
        #expect(Self.same(try #require(try Self.cached(rec)), try Self.stored(rec)))
    }

    @Test func aDamagedOrTruncatedCacheIsRefused() throws {
        let dir = tempFolder()
        let rec = try Self.database(in: dir)
        let good = try #require(FileManager.default.contents(atPath: rec.trainingCachePath))
        let table = try Self.stored(rec)
        // One byte of a rating, one of the checksum, one of the stamp; a file cut short; one grown by a byte.
        var variants: [Data] = []
        for offset in [good.count - 3, 60, 17] {
            var bytes = good
            bytes[offset] ^= 0x10
            variants.append(bytes)
        }
        variants.append(good.prefix(good.count - 12))
        variants.append(good + Data([0]))
        for bytes in variants {
            try bytes.write(to: URL(fileURLWithPath: rec.trainingCachePath))
            #expect(try Self.cached(rec) == nil)
            let fromCache = try rec.train(Self.request).loadedFromCache
            #expect(!fromCache)
            // The refused file was replaced by a good one.
            #expect(Self.same(try #require(try Self.cached(rec)), table))
        }
        // A FIFO in its place (made here, in the test's folder) is refused without waiting for a writer, and
        // replaced by a good file.
        try FileManager.default.removeItem(atPath: rec.trainingCachePath)
        #expect(mkfifo(rec.trainingCachePath, 0o644) == 0)
        let fromFIFO = try rec.train(Self.request).loadedFromCache
        #expect(!fromFIFO)
        #expect(Self.same(try #require(try Self.cached(rec)), table))
        // A file whose checksum matches but whose pairs are out of order is refused too.
        var swapped = table
        swapped.items.swapAt(0, 1)
        let stamp = try #require(try rec.serialized { try rec.cacheStamp(maxSeq: try rec.store.maxSequence()) })
        #expect(!TrainingCache.holdsValidRatings(swapped, stamp: stamp))
    }

    @Test func columnsMergeSplitAndKeepTheLatestValueOfAPair() {
        let written = RatingTriples(
            users: [2, 0, 2, 1, 0, 2], items: [5, 3, 1, 4, 3, 0], ratings: [1, 2, 3, 4, 5, 6])
        let latest = RatingTriples.latestPerPair(written, userCount: 3)
        #expect(latest.users == [0, 1, 2, 2, 2] && latest.items == [3, 4, 0, 1, 5])
        #expect(latest.ratings == [5, 4, 6, 3, 1])
        let (rest, picked) = latest.users.withUnsafeBufferPointer { u in
            latest.items.withUnsafeBufferPointer { i in
                latest.ratings.withUnsafeBufferPointer { r in
                    RatingTriples.split(users: u, items: i, ratings: r, parts: 2) { _, item in item % 2 == 1 }
                }
            }
        }
        #expect(rest.items == [4, 0] && picked.items == [3, 1, 5] && picked.ratings == [5, 3, 1])
        #expect(Self.same(RatingTriples.merged(rest, picked), latest))
    }
}
