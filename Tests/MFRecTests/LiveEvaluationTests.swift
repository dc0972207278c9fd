import Foundation
import MFEngine
import Testing

@testable import MFRec
@testable import MFStore

/// Issue 12, defect 5: `eval` and `export` see the live model; a snapshot's test split is fixed at training
/// time (later re-ratings change neither its members nor their values); eval of a model that has seen
/// later ratings leaves out the test pairs among them and says how many.
@Suite struct LiveEvaluationTests {
    /// A test pair of the live snapshot's split, by its original keys.
    func testPair(_ rec: Recommender) throws -> (user: String, item: String, rating: Double) {
        let info = try rec.liveState().snapshot
        guard case .random(let fraction, let seed) = info.split else { throw CancellationError() }
        let users = try rec.store.userKeys(), items = try rec.store.itemKeys()
        for u in 0..<users.count {
            for r in try rec.store.ratings(ofUser: u)
            where TestSplit.isTest(user: Int32(u), item: Int32(r.item), fraction: fraction, seed: seed) {
                return (users[u], items[r.item], r.rating)
            }
        }
        throw CancellationError()
    }

    @Test func aReRatingLeavesTheSplitFixedAndTheLiveEvalLeavesItOut() throws {
        let (rec, _) = try trainedSmallDatabase()
        let before = try rec.evaluate()
        #expect(before.live && before.leftOutRatedAfterTraining == 0)
        let pair = try testPair(rec)
        let other = pair.rating >= 3 ? 1.0 : 5.0
        try rec.rate([NewRating(user: pair.user, item: pair.item, rating: other)])

        // The snapshot's own evaluation is exactly as before: same members, same values.
        let snapshot = try rec.evaluate(snapshot: before.snapshotID)
        #expect(!snapshot.live && snapshot.leftOutRatedAfterTraining == 0)
        #expect(snapshot.error == before.error)
        // The live model has seen the re-rating: that pair is left out, and counted.
        let live = try rec.evaluate()
        #expect(live.live && live.leftOutRatedAfterTraining == 1)
        #expect(live.error.count == before.error.count - 1)
        // A frozen snapshot of the live model keeps the training split and leaves the pair out too.
        let frozen = try rec.createSnapshot()
        let evalFrozen = try rec.evaluate(snapshot: frozen)
        #expect(evalFrozen.leftOutRatedAfterTraining == 1 && evalFrozen.error.count == live.error.count)
        // Training reads the ratings as they stand now: the re-rating is in, with its new value.
        let now = try rec.loadSplit(.none, maxSeq: try rec.store.maxSequence()).train
        let u = Int32(try rec.store.userKeys().firstIndex(of: pair.user)!)
        let i = Int32(try rec.store.itemKeys().firstIndex(of: pair.item)!)
        let rows = (0..<now.count).filter { now.users[$0] == u && now.items[$0] == i }
        #expect(rows.count == 1 && rows.first.map { Double(now.ratings[$0]) } == other)
        #expect(now.count == (try rec.store.ratingCount()))
    }

    @Test func exportWritesTheLiveModelWithFoldedInUsers() throws {
        let (rec, dir) = try trainedSmallDatabase()
        try rec.rate([
            NewRating(user: "newcomer", item: "1", rating: 5), NewRating(user: "newcomer", item: "2", rating: 4),
        ])
        let out = dir.appendingPathComponent("export").path
        try rec.export(format: .csv, to: out)
        let rows = try String(contentsOfFile: out + "/user_factors.csv", encoding: .utf8).split(separator: "\n")
        let row = rows.first { $0.hasPrefix("newcomer,") }
        #expect(row != nil, "the folded-in user is missing from the export")
        let live = try rec.liveState().model
        let users = try rec.store.userKeys()
        let u = users.firstIndex(of: "newcomer")!
        let exported = row!.split(separator: ",").dropFirst().prefix(live.factors).map { Float($0)! }
        #expect(exported == Array(live.userVector(u)))
        // The snapshot itself does not have the newcomer.
        let snapshotOut = dir.appendingPathComponent("export-snapshot").path
        try rec.export(snapshot: try rec.liveState().snapshot.id, format: .csv, to: snapshotOut)
        let snapshotRows = try String(contentsOfFile: snapshotOut + "/user_factors.csv", encoding: .utf8)
        #expect(!snapshotRows.contains("newcomer,"))
    }

    /// Defect 8: a model with more users or items than the database, or wrong arrays, is refused on import
    /// (it reached `CooccurrenceEmbedding.fit` out of bounds before).
    @Test func importModelChecksTheShape() throws {
        let (rec, dir) = try trainedSmallDatabase()
        let users = try rec.store.userCount(), items = try rec.store.itemCount()
        let tooMany = FactorModel(
            factors: 4, userCount: users + 1, itemCount: items, useBias: true, globalMean: 3, scale: 1...5)
        #expect(throws: MFRecError.self) { try rec.importModel(tooMany) }
        var nan = FactorModel(
            factors: 4, userCount: users, itemCount: items, useBias: true, globalMean: 3, scale: 1...5)
        nan.itemBias[0] = .nan
        #expect(throws: MFRecError.self) { try rec.importModel(nan) }
        // A model with fewer users is fine, and evaluating it with the comparison rankings does not crash.
        let fewer = FactorModel(
            factors: 4, userCount: users / 2, itemCount: items, useBias: true, globalMean: 3, scale: 1...5)
        let id = try rec.importModel(fewer)
        let userKeys = try rec.store.userKeys(), itemKeys = try rec.store.itemKeys()
        var text = ""
        for u in stride(from: 0, to: users, by: 7) {
            for r in try rec.store.ratings(ofUser: u).prefix(3) {
                text += "\(userKeys[u]),\(itemKeys[r.item]),\(r.rating)\n"
            }
        }
        let testFile = dir.appendingPathComponent("test.csv").path
        try text.write(toFile: testFile, atomically: true, encoding: .utf8)
        let report = try rec.evaluate(snapshot: id, testFile: testFile, compareRankings: true)
        #expect(report.error.count > 0 && report.cooccurrenceRanking != nil)
    }
}
