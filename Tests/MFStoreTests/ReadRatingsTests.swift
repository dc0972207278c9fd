import Foundation
import TestFixtures
import Testing

@testable import MFStore

/// Issue 16 (from SQLite to the trainer): `readRatings` reads the ratings with two connections at once, and
/// the parts, in order, are exactly what one `forEachRating` scan gives, also as the ratings stood at an
/// earlier watermark (re-rated pairs with their old values); `maxSequence` reads one metadata row.
@Suite struct ReadRatingsTests {
    func store() throws -> (Store, String) {
        let dir = scratchPath("mfrec-read")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let path = dir.appendingPathComponent("r.db").path
        let store = try Store(path: path)
        try store.writeRatings { writer in
            for u in 0..<2_500 { try writer.insertUser(id: Int32(u), key: "u\(u)") }
            for i in 0..<40 { try writer.insertItem(id: Int32(i), key: "i\(i)") }
            for u in 0..<2_500 {
                for i in stride(from: u % 7, to: 40, by: 9) {
                    try writer.upsert(user: Int32(u), item: Int32(i), rating: Double(1 + (u + i) % 5), timestamp: nil)
                }
            }
        }
        return (store, path)
    }

    func scan(_ store: Store, maxSeq: Int64?) throws -> [String] {
        var out: [String] = []
        try store.forEachRating(maxSeq: maxSeq) { out.append("\($0) \($1) \($2)") }
        return out
    }

    func parts(_ store: Store, maxSeq: Int64?, parts: Int) throws -> (count: Int, rows: [String]) {
        let read = try store.readRatings(
            maxSeq: maxSeq, parts: parts, userCount: 2_500, make: { [String]() },
            add: { out, u, i, r in out.append("\(u) \(i) \(r)") })
        return (read.count, read.flatMap { $0 })
    }

    @Test func partsInOrderEqualOneScan() throws {
        let (store, path) = try store()
        defer { try? FileManager.default.removeItem(atPath: (path as NSString).deletingLastPathComponent) }
        let watermark = try store.maxSequence()
        #expect(watermark == (try store.db.scalarInt("SELECT max(seq) FROM ratings")))
        // After the watermark: re-ratings (their old values go to replaced_ratings) and new ratings.
        try store.writeRatings { writer in
            for u in stride(from: 0, to: 2_500, by: 37) {
                try writer.upsert(user: Int32(u), item: Int32(u % 7), rating: 5, timestamp: nil)
                try writer.upsert(user: Int32(u), item: 39 - Int32(u % 3), rating: 2, timestamp: nil)
            }
        }
        for maxSeq in [nil, watermark] {
            let one = try scan(store, maxSeq: maxSeq)
            let two = try parts(store, maxSeq: maxSeq, parts: 2)
            #expect(two.count == 2)
            #expect(two.rows == one, "maxSeq \(String(describing: maxSeq))")
            #expect(try parts(store, maxSeq: maxSeq, parts: 1).rows == one)
        }
        #expect(try scan(store, maxSeq: watermark) != scan(store, maxSeq: nil))  // the old values were read

        // A read-only store reads with its one connection.
        let reader = try Store(path: path, readOnly: true)
        let read = try parts(reader, maxSeq: watermark, parts: 2)
        let expected = try scan(store, maxSeq: watermark)
        #expect(read.count == 1 && read.rows == expected)
    }

    @Test func maxSequenceIsTheLatestWriteWithoutAScan() throws {
        let (store, path) = try store()
        defer { try? FileManager.default.removeItem(atPath: (path as NSString).deletingLastPathComponent) }
        let before = try store.maxSequence()
        let seq = try store.writeRatings { try $0.upsert(user: 3, item: 0, rating: 4, timestamp: nil) }
        let after = try store.maxSequence()
        #expect(seq == before + 1 && after == seq)
        #expect(try store.maxSequence() == (try store.db.scalarInt("SELECT max(seq) FROM ratings")))
    }

    /// The time order a recency-weighted list reads: by timestamp, ties in the order written, ratings without a
    /// timestamp after the timestamped ones in the order written, a re-rating where it was written last.
    @Test func ratingsInTimeOrderTieByWriteOrderAndPutUntimedLast() throws {
        let dir = scratchPath("mfrec-time-order")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let store = try Store(path: dir.appendingPathComponent("t.db").path)
        try store.writeRatings { writer in
            try writer.insertUser(id: 0, key: "u")
            for i in 0..<7 { try writer.insertItem(id: Int32(i), key: "i\(i)") }
            try writer.upsert(user: 0, item: 5, rating: 4, timestamp: 200)
            try writer.upsert(user: 0, item: 6, rating: 3, timestamp: nil)
            try writer.upsert(user: 0, item: 1, rating: 5, timestamp: 100)
            try writer.upsert(user: 0, item: 4, rating: 2, timestamp: 200)  // same second as item 5, written later
            try writer.upsert(user: 0, item: 0, rating: 1, timestamp: nil)
            try writer.upsert(user: 0, item: 3, rating: 5, timestamp: 150)
        }
        let order = try store.ratingsInTimeOrder(ofUser: 0, maxSeq: .max).map(\.item)
        #expect(order == [1, 3, 5, 4, 6, 0])
        // A re-rating without a time moves the pair to the end; the watermark leaves out later writes.
        let watermark = try store.maxSequence()
        try store.writeRatings { writer in
            try writer.upsert(user: 0, item: 3, rating: 1, timestamp: nil)
            try writer.upsert(user: 0, item: 2, rating: 4, timestamp: 50)
        }
        #expect(try store.ratingsInTimeOrder(ofUser: 0, maxSeq: .max).map(\.item) == [2, 1, 5, 4, 6, 0, 3])
        #expect(try store.ratingsInTimeOrder(ofUser: 0, maxSeq: watermark).map(\.item) == [1, 5, 4, 6, 0])
    }
}
