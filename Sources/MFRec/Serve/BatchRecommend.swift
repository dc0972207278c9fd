import Dispatch
import Foundation
import MFEngine
import MFStore

extension QueryEngine {
    /// Writes the top-n of every user with at least one rating to a CSV file (`user,rank,item,predicted_rating`),
    /// each ranked exactly as `recommend` ranks them by default (or by `by`): streaming, users in id order,
    /// a round of users scored on `threads` threads (the rating model's and the ranking model's users in
    /// batches of `batch`, each batch one blocked pass over the item vectors: see `BlockScan`). Memory stays bounded by one round's results. The file is written as
    /// `OutputFile` writes (`-` is standard output, a link is followed, a regular file is replaced whole).
    /// - Returns: the number of users written.
    /// - Parameters:
    ///   - n: items per user.
    ///   - path: the CSV file (`-` for standard output).
    ///   - batch: users per blocked pass.
    ///   - threads: scoring threads.
    ///   - cooccurrenceBelow: users with fewer ratings are ranked by the light-user rule.
    ///   - by: the ranker; nil for the rule validation chose.
    ///   - progress: called with users done and users in all.
    ///   - isCancelled: polled between rounds; true stops with `CancellationError` and no file.
    /// - Throws: `MFRecError.noModel`, `MFRecError.cannotWrite`, `CancellationError`, `StoreError`.
    @discardableResult
    public func recommendAll(
        n: Int, to path: String, batch: Int = ItemMatrix.preferredBatch,
        threads: Int = ProcessInfo.processInfo.activeProcessorCount,
        cooccurrenceBelow: Int = QueryEngine.defaultCooccurrenceBelow, by: Ranker? = nil,
        progress: ProgressHandler? = nil, isCancelled: (() -> Bool)? = nil
    ) throws -> Int {
        let (state, matrix) = try consistentState { state, shared in
            (state, try privateCopy(of: shared, model: state.model))
        }
        let model = state.model
        let forgotten = try forgottenItems(state)
        // What a user's list leaves out: their rated items (ascending) and forgotten items.
        @Sendable func excluded(_ rated: [(item: Int32, rating: Float)]) -> [Int32] {
            forgotten.isEmpty ? rated.map(\.item) : Set(rated.map(\.item) + forgotten).sorted()
        }
        // The embedding is read once for the whole run (a damaged one fails the run when a user needs it).
        let embedding = Result { try cooccurrence() }
        let live = try listRankers(state, cooccurrenceBelow: cooccurrenceBelow)
        let rankers = ListRankers(
            ranking: live.ranking, choice: live.choice, embeddingSource: { try embedding.get() },
            popular: live.popular, cooccurrenceBelow: cooccurrenceBelow)
        // The popular list shows each item's mean rating, as `recommend` does.
        let meanOf = Dictionary(rankers.popular.map { ($0.id, Float($0.mean)) }, uniquingKeysWith: { a, _ in a })
        let (userKeys, itemKeys) = try pool.read { (try $0.userKeys(), try $0.itemKeys()) }
        let itemFields = itemKeys.map { key -> [UInt8] in
            var field: [UInt8] = []
            LineWriter.appendCSVField(key, to: &field)
            return field
        }
        let out = try OutputFile(path: path)
        try out.write("user,rank,item,predicted_rating\n")

        // Ratings per user, streamed in (user, item) order alongside the users.
        return try pool.withConnection { store in
            let stream = try store.ratingCursor()
            var pending: (Int, Int32, Float)? = try stream.next().map { (Int($0.user), $0.item, $0.rating) }
            func ratings(of user: Int) throws -> [(item: Int32, rating: Float)] {
                var out: [(item: Int32, rating: Float)] = []
                while let (u, i, r) = pending, u <= user {
                    if u == user { out.append((i, r)) }
                    pending = try stream.next().map { (Int($0.user), $0.item, $0.rating) }
                }
                return out
            }

            let round = batch * threads * 4
            var written = 0
            let userCount = userKeys.count
            typealias Rule = (ranker: Ranker, popularityWeight: Float)
            /// One round's users, their ratings and rules, read on this thread (the one connection's).
            func prepare(_ start: Int) throws -> (
                slice: [Int], rated: [[(item: Int32, rating: Float)]], rules: [Rule?],
                recency: [(decay: Float, oldestFirst: [Int32])?]
            )? {
                guard start < userCount else { return nil }
                let slice = Array(start..<min(start + round, userCount))
                let rated = try slice.map { try ratings(of: $0) }
                let rules = slice.indices.map { j -> Rule? in
                    if rated[j].isEmpty { return nil }
                    let rule =
                        by.map(rankers.explicitRule)
                        ?? rankers.defaultRule(ratingCount: rated[j].count, hasVector: model.hasUser(slice[j]))
                    return rule.ranker == .rating && !model.hasUser(slice[j]) ? (.popular, 0) : rule
                }
                // A damaged embedding fails the run when a user needs it (never a silent fallback).
                if rules.contains(where: { $0?.ranker == .cooccurrence }) { _ = try rankers.embedding }
                // Light users ranked by recency-weighted co-occurrence: their ratings in time order, as
                // `recommend` reads them (the cursor holds the rest of the stream meanwhile).
                let recency = try slice.indices.map { j -> (decay: Float, oldestFirst: [Int32])? in
                    guard rules[j]?.ranker == .cooccurrence else { return nil }
                    let decay = rankers.recencyDecay(ratingCount: rated[j].count, by: by)
                    guard decay < 1 else { return nil }
                    let items = Set(rated[j].map(\.item))
                    return (
                        decay,
                        try store.ratingsInTimeOrder(ofUser: Int32(slice[j]), maxSeq: .max).map(\.item).filter {
                            items.contains($0)
                        }
                    )
                }
                return (slice, rated, rules, recency)
            }
            var upcoming = try prepare(0)
            var start = 0
            while let (slice, rated, rules, recency) = upcoming {
                if isCancelled?() == true { throw CancellationError() }
                let batches = stride(from: 0, to: slice.count, by: batch).map { $0..<min($0 + batch, slice.count) }
                // Each batch's CSV lines, formatted on the thread that ranked it.
                let results = ThreadSlots<[UInt8]>(count: batches.count)
                // Batches are handed out in order to whichever worker is free (a worker the reading thread
                // preempts takes fewer, instead of holding up the round).
                let nextBatch = Locked(0)
                let work = { @Sendable (_: Int) in
                    while true {
                        let b = nextBatch.withLock { next in
                            defer { next += 1 }
                            return next
                        }
                        guard b < batches.count else { return }
                        let range = batches[b]
                        var lists = [[(item: Int32, score: Float)]](repeating: [], count: range.count)
                        var fellBack = Set<Int>()
                        let byRating = range.filter { rules[$0]?.ranker == .rating }
                        if !byRating.isEmpty {
                            let queries = byRating.map { matrix.queryVector(model.userVector(slice[$0])) }
                            let tops = matrix.topNBatch(
                                queries: queries, n: n, excluded: byRating.map { excluded(rated[$0]) })
                            for (j, top) in zip(byRating, tops) { lists[j - range.lowerBound] = top }
                        }
                        // The ranking model's users: one blocked pass for the batch (the same lists as one by one).
                        var done = Set<Int>()
                        if let ranking = rankers.ranking {
                            var members: [Int] = [], queries: [[Float]] = [], weights: [Float] = []
                            var blended: [Int?] = []
                            for j in range where rules[j]?.ranker == .ranking {
                                let query = ranking.userVector(user: slice[j], ratings: rated[j])
                                guard query.contains(where: { $0 != 0 }) else { continue }  // falls back below
                                members.append(j)
                                queries.append(query)
                                weights.append(rules[j]!.popularityWeight)
                                blended.append(
                                    rankers.blendsRatings(ratingCount: rated[j].count, by: by) ? slice[j] : nil)
                            }
                            // Users whose lists blend in the rating model's predictions: their rating scores
                            // computed in blocks too (without a blend, the plain blocked scan).
                            let tops = ranking.topN(
                                users: queries, n: n, excluded: members.map { excluded(rated[$0]) },
                                popularityWeights: weights, ratingWeight: rankers.choice?.ratingBlend ?? 0,
                                ratingModel: model, ratingUsers: blended)
                            for (j, top) in zip(members, tops) {
                                lists[j - range.lowerBound] = top
                                done.insert(j)
                            }
                        }
                        for j in range where !done.contains(j) {
                            guard let rule = rules[j], rule.ranker != .rating else { continue }
                            let excluded = excluded(rated[j])
                            var top =
                                rule.ranker == .popular
                                ? nil
                                : try? rankers.top(
                                    rule.ranker, user: slice[j], popularityWeight: rule.popularityWeight,
                                    ratings: rated[j], n: n,
                                    excluded: excluded, recency: recency[j])
                            if top == nil {
                                fellBack.insert(j)
                                top = try? rankers.top(
                                    .popular, popularityWeight: 0, ratings: [], n: n, excluded: excluded)
                            }
                            lists[j - range.lowerBound] = top ?? []
                        }
                        var text: [UInt8] = []
                        text.reserveCapacity(range.count * n * 32)
                        for j in range where rules[j] != nil {
                            let user = slice[j], known = model.hasUser(user)
                            var userField: [UInt8] = []
                            LineWriter.appendCSVField(userKeys[user], to: &userField)
                            for (rank, row) in lists[j - range.lowerBound].enumerated() {
                                let predicted =
                                    fellBack.contains(j)
                                    ? meanOf[row.item] ?? 0
                                    : model.predictOrFallback(user: user, knownUser: known, item: Int(row.item))
                                text.append(contentsOf: userField)
                                text.append(UInt8(ascii: ","))
                                LineWriter.appendDecimal(rank + 1, to: &text)
                                text.append(UInt8(ascii: ","))
                                text.append(contentsOf: itemFields[Int(row.item)])
                                text.append(UInt8(ascii: ","))
                                LineWriter.appendFixed4(predicted, to: &text)
                                text.append(UInt8(ascii: "\n"))
                            }
                        }
                        results.set(b, text)
                    }
                }
                // The workers score this round while this thread reads the next round's ratings.
                let scored = DispatchGroup()
                DispatchQueue.global().async(group: scored) {
                    DispatchQueue.concurrentPerform(iterations: max(1, threads)) { work($0) }
                }
                let next = Result { try prepare(start + round) }
                scored.wait()
                upcoming = try next.get()
                var text: [UInt8] = []
                for b in batches.indices { text.append(contentsOf: results.get(b)) }
                try out.write(text)
                written += rules.lazy.filter { $0 != nil }.count
                start += round
                progress?(Int64(start), Int64(userCount))
            }
            try out.commit()
            return written
        }
    }

}

extension QueryEngine {
    /// A private copy of the item matrix, mapped from an unlinked temp file: a long run reads one state
    /// of the rows while raters rewrite the shared file in place.
    func privateCopy(of shared: ItemMatrix, model: FactorModel) throws -> ItemMatrix {
        let path = (NSTemporaryDirectory() as NSString).appendingPathComponent(
            "mfrec-\(getpid())-\(UUID().uuidString).items")
        defer { unlink(path) }  // the mapping outlives the name
        try ItemMatrix.write(model: model, generation: shared.generation, snapshotID: shared.snapshotID, to: path)
        return try ItemMatrix.open(
            path: path, generation: shared.generation, snapshotID: shared.snapshotID, factors: model.factors,
            itemCount: model.itemCount, verifyChecksum: false)
    }
}
