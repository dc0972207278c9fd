import Dispatch
import Foundation
import MFEngine
import MFStore

extension QueryEngine {
    /// Writes the top-n of every user with a model vector to a CSV file (`user,rank,item,predicted_rating`),
    /// streaming: users are taken in batches of `batch` per pass over the item matrix, the batches of a
    /// round are scored on `threads` threads, and rows are written in user order. Memory stays bounded
    /// by one round's results. The file is written to a temp name and renamed when complete. Users with
    /// fewer than `cooccurrenceBelow` ratings are ranked as `recommend` ranks them: by co-occurrence.
    /// - Returns: the number of users written.
    @discardableResult
    public func recommendAll(n: Int, to path: String, batch: Int = 8, threads: Int = ProcessInfo.processInfo.activeProcessorCount,
                             cooccurrenceBelow: Int = QueryEngine.defaultCooccurrenceBelow,
                             progress: Progress? = nil) throws -> Int {
        let (model, matrix) = current()
        let embedding = cooccurrenceBelow > 0 ? try cooccurrence() : nil
        let userKeys = try withStore { try $0.userKeys() }
        let itemKeys = try withStore { try $0.itemKeys() }
        let temp = path + ".tmp-\(getpid())"
        guard FileManager.default.createFile(atPath: temp, contents: nil), let out = FileHandle(forWritingAtPath: temp) else {
            throw StoreError("cannot create \(temp)")
        }
        var done = false
        defer {
            try? out.close()
            if !done { unlink(temp) }
        }
        try out.write(contentsOf: Data("user,rank,item,predicted_rating\n".utf8))

        // Rated items per user, streamed in (user, item) order alongside the users.
        let rated = try withStore { try $0.db.prepare("SELECT user_id, item_id FROM ratings ORDER BY user_id, item_id") }
        var pending: (Int, Int32)? = try rated.step() ? (rated.int(0), Int32(rated.int(1))) : nil
        func ratedItems(of user: Int) throws -> [Int32] {
            var items: [Int32] = []
            while let (u, i) = pending, u <= user {
                if u == user { items.append(i) }
                pending = try rated.step() ? (rated.int(0), Int32(rated.int(1))) : nil
            }
            return items
        }

        let users = (0..<min(userKeys.count, model.userCount)).filter { model.hasUser($0) }
        let round = batch * threads * 16
        var written = 0
        var start = 0
        while start < users.count {
            let slice = Array(users[start ..< min(start + round, users.count)])
            let exclusions = try withStore { _ in try slice.map { try ratedItems(of: $0) } }
            let batches = stride(from: 0, to: slice.count, by: batch).map { $0 ..< min($0 + batch, slice.count) }
            let results = ResultSlots(count: batches.count)
            let work = { @Sendable (t: Int) in
                var b = t
                while b < batches.count {
                    let range = batches[b]
                    let queries = range.map { matrix.queryVector(model.userVector(slice[$0])) }
                    results.set(b, matrix.topNBatch(queries: queries, n: n, excluded: range.map { exclusions[$0] }))
                    b += threads
                }
            }
            DispatchQueue.concurrentPerform(iterations: max(1, threads), execute: work)
            var text = ""
            for (b, range) in batches.enumerated() {
                for (offset, top) in zip(range, results.get(b)) {
                    let user = slice[offset], rated = exclusions[offset]
                    let base = model.useBias ? model.globalMean + model.userBias[user] : 0
                    var rows = top.map { (item: $0.item, predicted: model.clip(base + $0.score)) }
                    if let embedding, !rated.isEmpty, rated.count < cooccurrenceBelow,
                       let top = embedding.topN(rated: rated, n: n, excluded: Set(rated)) {
                        rows = top.map { ($0.item, model.predictOrFallback(user: user, knownUser: true, item: Int($0.item))) }
                    }
                    for (rank, row) in rows.enumerated() {
                        text += "\(csvField(userKeys[user])),\(rank + 1),\(csvField(itemKeys[Int(row.item)])),"
                        text += String(format: "%.4f", row.predicted) + "\n"
                    }
                }
            }
            try out.write(contentsOf: Data(text.utf8))
            written += slice.count
            start += round
            progress?(Int64(written), Int64(users.count))
        }
        try out.synchronize()
        try out.close()
        guard rename(temp, path) == 0 else { throw StoreError("cannot rename \(temp) to \(path)") }
        done = true
        return written
    }

    func withStore<R>(_ body: (Store) throws -> R) throws -> R { try locked { try body(store) } }
}

/// Quotes a CSV field when it needs it (RFC 4180).
public func csvField(_ text: String) -> String {
    guard text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" }) else { return text }
    return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
}

final class ResultSlots: @unchecked Sendable {
    private var slots: [[[(item: Int32, score: Float)]]]
    private let lock = NSLock()
    init(count: Int) { slots = Array(repeating: [], count: count) }
    func set(_ i: Int, _ value: [[(item: Int32, score: Float)]]) { lock.lock(); slots[i] = value; lock.unlock() }
    func get(_ i: Int) -> [[(item: Int32, score: Float)]] { lock.lock(); defer { lock.unlock() }; return slots[i] }
}
