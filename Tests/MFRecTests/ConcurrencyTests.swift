import Foundation
import MFEngine
import Testing

@testable import MFRec
@testable import MFStore

@Suite struct ConcurrencyTests {
    /// Reader threads, each with its own connection and query engine, query while a writer rates,
    /// snapshots and rolls back. No reader may fail ("database is locked" included) or see a malformed
    /// answer; every answer must be one a live model could give (n items, best first, none rated).
    @Test func readersWhileAWriterChangesTheModel() throws {
        let (rec, dir) = try trainedSmallDatabase()
        let path = dir.appendingPathComponent("t.db").path
        let stop = Flag()
        let failures = Counter(), queries = Counter(), ready = Counter()
        let readers = (0..<3).map { r in
            Thread {
                let engine: QueryEngine
                do {
                    engine = try Recommender(path: path).queries()
                } catch {
                    print("reader failure: \(error)")
                    failures.add()
                    ready.add()
                    return
                }
                ready.add()
                var i = 0
                while !stop.isSet {
                    let user = String(1 + (i * 7 + r) % 300)
                    i += 1
                    do {
                        // The rating model's lists are sorted by predicted rating; the default (ranking model) lists
                        // by the ranking model's score, which is not shown.
                        let byRating = i % 2 == 0
                        let list = try engine.recommend(user: user, n: 5, by: byRating ? .rating : nil)
                        let ok =
                            list.items.count == 5
                            && (!byRating
                                || zip(list.items, list.items.dropFirst()).allSatisfy {
                                    $0.predictedRating >= $1.predictedRating
                                })
                        if !ok {
                            print("reader failure: a malformed list \(list)")
                            failures.add()
                        }
                        queries.add()
                    } catch {
                        print("reader failure: \(error)")
                        failures.add()
                    }
                }
            }
        }
        for t in readers { t.start() }
        // The writes start once every reader has its engine (a CI run on a loaded machine saw no query at all,
        // most likely because the 46 writes were done before any reader had opened one), and go on past 40 rounds
        // until the readers have answered 30 queries during them — or a minute has passed, which fails below:
        // readers starved by the writer.
        let deadline = Date().addingTimeInterval(60)
        while ready.value < readers.count && Date() < deadline { usleep(1000) }
        let before = queries.value
        var writes = 0, round = 0
        while round < 40 || (queries.value - before < 30 && Date() < deadline) {
            defer { round += 1 }
            try rec.rate(
                user: String(1 + round % 300), item: String(1 + (round * 13) % 200), rating: Double(1 + round % 5))
            writes += 1
            if round % 10 == 9 {
                try rec.createSnapshot(note: "round \(round)")
                writes += 1
            }
            if round % 20 == 19 {
                try rec.rollback(to: 1)
                writes += 1
            }
        }
        let during = queries.value - before
        stop.set()
        while readers.contains(where: { !$0.isFinished }) { usleep(1000) }
        #expect(failures.value == 0)
        #expect(during >= 30, "the readers answered \(during) queries during \(writes) writes")
        print(
            "concurrency: \(during) queries on 3 reader threads during \(writes) writes (\(round) rounds), "
                + "\(failures.value) failures"
        )
    }

    /// Issue 12, defect 7: the README's library use — one `Recommender` rating on one thread while a
    /// `QueryEngine` of it answers on others. At least 1,000 interleaved calls; every answer a reader gets
    /// must be the answer of some committed state (the writer records each state's answers after each
    /// commit, with an engine of its own). Run under ThreadSanitizer by `scripts/sanitizers.sh`.
    @Test func everyAnswerDuringRatingsIsTheAnswerOfACommittedState() throws {
        let (rec, _) = try trainedSmallDatabase()
        let watched = ["1", "2", "3", "4"]
        @Sendable func answer(_ engine: QueryEngine, _ user: String) throws -> String {
            let list = try engine.recommend(user: user, n: 5, by: .rating)
            return user + "|" + list.items.map { "\($0.item):\($0.predictedRating)" }.joined(separator: ",")
        }
        let shared = try rec.queries()
        let checker = try rec.queries()
        var committed = Set(try watched.map { try answer(checker, $0) })
        let seen = Locked<[String]>([])
        let stop = Flag(), failures = Counter()
        let readers = (0..<2).map { r in
            Thread {
                var i = r
                while !stop.isSet {
                    do {
                        let a = try answer(shared, watched[i % watched.count])
                        seen.withLock { $0.append(a) }
                    } catch {
                        print("reader failure: \(error)")
                        failures.add()
                    }
                    i += 1
                }
            }
        }
        for t in readers { t.start() }
        var rates = 0
        var rng = SeededGenerator(seed: 12)
        while rates < 400 || seen.withLock({ $0.count }) < 600 {
            // Other users rate items: the watched users' lists move with the item vectors.
            try rec.rate(
                user: String(5 + rng.next(below: 290)), item: String(1 + rng.next(below: 200)),
                rating: Double(1 + rng.next(below: 5)))
            rates += 1
            for user in watched { committed.insert(try answer(checker, user)) }
        }
        stop.set()
        while readers.contains(where: { !$0.isFinished }) { usleep(1000) }
        let answers = seen.withLock { $0 }
        let strays = answers.filter { !committed.contains($0) }
        #expect(failures.value == 0)
        #expect(strays.isEmpty, "\(strays.count) answers match no committed state, e.g. \(strays.prefix(2))")
        #expect(rates + answers.count >= 1_000)
        #expect(Set(answers).count > watched.count, "the answers never changed: the test saw one state")
        print(
            "concurrency (one process): \(rates) rates and \(answers.count) recommends on 2 reader threads, "
                + "\(Set(answers).count) distinct answers, \(strays.count) matching no committed state")
    }

    @Test func veryLongLineIsReadNotTruncated() throws {
        let dir = tempFolder()
        let long = String(repeating: "x", count: 3_000_000)
        let rec = try Recommender(path: dir.appendingPathComponent("l.db").path)
        try rec.ingest(path: writeFile(dir, "long.data", "1\t\(long)\t3\t4\n2\t2\t4\t5\n"))
        #expect(try rec.store.itemKeys().first?.count == 3_000_000)
    }
}

final class Flag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    func set() {
        lock.lock()
        value = true
        lock.unlock()
    }
    var isSet: Bool {
        lock.lock()
        defer { lock.unlock() }
        return value
    }
}
