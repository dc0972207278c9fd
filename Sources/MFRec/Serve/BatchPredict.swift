import Foundation
import MFEngine
import MFStore

/// What `predictFile` did.
public struct BatchPredictReport: Sendable {
    /// Pairs predicted.
    public var pairs = 0
    /// Pairs whose user or item the database does not know, or the model has no vector for: predicted by
    /// the fallback (μ plus the known side's bias, as `predict` does).
    public var fallback = 0
    /// Of those, pairs with a user, and with an item, the database does not know at all.
    public var unknownUsers = 0, unknownItems = 0
    /// Pairs that came with a rating (RMSE and MAE are over them).
    public var rated = 0
    /// Error of the predictions on the pairs with a rating (nil without any).
    public var rmse: Double?, mae: Double?
    /// Wall-clock time.
    public var seconds = 0.0
}

extension QueryEngine {
    /// Predicts every (user, item) pair of a file, like LibMF's `mf-predict` and Surprise's `test()`, and
    /// writes `user,item,prediction` lines (the ids as given, 4 decimals) to `output` in the file's order.
    ///
    /// The file is any layout `ingest` reads (u.data, ratings.dat, CSV, gzip), where a line may stop after
    /// the item; a rating, when present, is compared with the prediction (RMSE, MAE). Pairs stream through
    /// in bounded memory (ids are looked up in maps of the stored keys, read once); a pair the model cannot
    /// predict is predicted by the fallback and counted. Nothing is written to the database.
    /// - Parameters:
    ///   - path: the pairs file.
    ///   - format: its layout (detected when nil).
    ///   - output: the file to write (`-` for standard output; see `OutputFile`).
    ///   - isCancelled: polled every 65,536 lines.
    /// - Returns: counts and error metrics.
    /// - Throws: `MFRecError` (file, line, field) for a bad line, nothing written; `MFRecError`; `MFRecError.noModel`.
    @discardableResult
    public func predictFile(
        _ path: String, format: RatingsFormat? = nil, to output: String, isCancelled: (() -> Bool)? = nil
    ) throws -> BatchPredictReport {
        let started = Date()
        let model = try current().model
        let (userIDs, itemIDs) = try pool.read { store in
            (KeyTable(try store.userKeys()), KeyTable(try store.itemKeys()))
        }
        let reader = try RatingsReader(path: path, format: format, ratingOptional: true)
        let writer = try LineWriter(path: output, gzip: output != "-" && output.hasSuffix(".gz"))
        writer.append("user,item,prediction\n")
        // Two stages on two threads: this one reads and parses lines into batches (copying each line's two
        // keys), a worker looks the keys up, predicts and formats, in file order. On 2 cores the prediction
        // then hides behind the parsing instead of adding to it (`mfrec-bench predict`).
        let queue = BatchQueue<PairBatch>(capacity: 4)
        let worker = PredictWorker(
            model: model, userIDs: userIDs, itemIDs: itemIDs, writer: writer, queue: queue)
        let thread = Thread { worker.run() }
        thread.stackSize = 1 << 20
        thread.start()
        var batch = PairBatch()
        var lines = 0
        do {
            try reader.read(
                { line in
                    lines += 1
                    if lines & 0xffff == 0 {
                        if isCancelled?() == true { throw CancellationError() }
                        if worker.failed { throw CancellationError() }  // the worker's error is thrown below
                    }
                    batch.append(user: line.user, item: line.item, rating: line.rating)
                    if batch.count == PairBatch.capacity {
                        queue.put(batch)
                        batch = queue.recycled() ?? PairBatch()
                    }
                }, onError: { throw $0 })
        } catch {
            queue.put(nil, abandon: true)
            worker.done.wait()
            throw worker.failure ?? error
        }
        if batch.count > 0 { queue.put(batch) }
        queue.put(nil)
        worker.done.wait()
        if let failure = worker.failure { throw failure }
        _ = try writer.finish()
        var report = worker.report
        if report.rated > 0 {
            report.rmse = (worker.squared / Double(report.rated)).squareRoot()
            report.mae = worker.absolute / Double(report.rated)
        }
        report.seconds = Date().timeIntervalSince(started)
        return report
    }
}

/// Up to `capacity` parsed pairs: the two keys of each (bytes end to end) and its rating (NaN: none).
struct PairBatch: Sendable {
    static let capacity = 8_192
    var keys: [UInt8] = []
    /// Where each pair's user key ends and its item key ends, in `keys`.
    var userEnds: [Int32] = [], itemEnds: [Int32] = []
    var ratings: [Double] = []
    var count: Int { ratings.count }

    init() {
        keys.reserveCapacity(Self.capacity * 16)
        userEnds.reserveCapacity(Self.capacity)
        itemEnds.reserveCapacity(Self.capacity)
        ratings.reserveCapacity(Self.capacity)
    }

    mutating func append(user: ByteView, item: ByteView, rating: Double) {
        user.append(to: &keys)
        userEnds.append(Int32(keys.count))
        item.append(to: &keys)
        itemEnds.append(Int32(keys.count))
        ratings.append(rating)
    }

    mutating func clear() {
        keys.removeAll(keepingCapacity: true)
        userEnds.removeAll(keepingCapacity: true)
        itemEnds.removeAll(keepingCapacity: true)
        ratings.removeAll(keepingCapacity: true)
    }
}

/// A bounded first-in first-out hand-over between two threads (nil ends the stream), with a pool of emptied
/// batches going back.
final class BatchQueue<T: Sendable>: @unchecked Sendable {
    private let condition = NSCondition()
    private var items: [T?] = []  // guarded by `condition`, like the two below
    private var spare: [T] = []
    private var abandoned = false
    let capacity: Int

    init(capacity: Int) { self.capacity = capacity }

    /// Waits while the queue is full; `abandon` ends the stream at once (the consumer drops what is queued).
    func put(_ item: T?, abandon: Bool = false) {
        condition.lock()
        defer { condition.unlock() }
        if abandon {
            abandoned = true
            condition.broadcast()
            return
        }
        while items.count >= capacity && !abandoned { condition.wait() }
        items.append(item)
        condition.broadcast()
    }

    /// The next item; nil at the end of the stream (or when abandoned).
    func take() -> T? {
        condition.lock()
        defer { condition.unlock() }
        while items.isEmpty && !abandoned { condition.wait() }
        if abandoned { return nil }
        let item = items.removeFirst()
        condition.broadcast()
        return item
    }

    func giveBack(_ item: T) {
        condition.lock()
        if spare.count < capacity { spare.append(item) }
        condition.unlock()
    }

    func recycled() -> T? {
        condition.lock()
        defer { condition.unlock() }
        return spare.popLast()
    }
}

/// The second stage of `predictFile`: looks the keys up, predicts, formats and writes, batch by batch.
final class PredictWorker: @unchecked Sendable {
    // Read by the reading thread only after `done` is signalled; `failed` (under its lock) any time.
    var report = BatchPredictReport()
    var squared = 0.0, absolute = 0.0
    var failure: Error?
    private let failedFlag = Locked(false)
    var failed: Bool { failedFlag.withLock { $0 } }
    let done = DispatchSemaphore(value: 0)
    private let model: FactorModel
    private let userIDs: KeyTable, itemIDs: KeyTable
    private let userHasVector: [Bool], itemHasVector: [Bool]
    private let writer: LineWriter
    private let queue: BatchQueue<PairBatch>

    init(model: FactorModel, userIDs: KeyTable, itemIDs: KeyTable, writer: LineWriter, queue: BatchQueue<PairBatch>) {
        self.model = model
        self.userIDs = userIDs
        self.itemIDs = itemIDs
        self.userHasVector = (0..<model.userCount).map(model.hasUser)
        self.itemHasVector = (0..<model.itemCount).map(model.hasItem)
        self.writer = writer
        self.queue = queue
    }

    func run() {
        defer { done.signal() }
        // Lines are formatted into a local buffer and handed to the writer in blocks.
        var out: [UInt8] = []
        out.reserveCapacity(1 << 16 + 256)
        // Files are usually grouped by user: the last user's key and id are kept.
        var lastUser: [UInt8] = [], lastUserID: Int32 = -1
        var pairs = 0, fallback = 0, unknownUsers = 0, unknownItems = 0, rated = 0
        var squared = 0.0, absolute = 0.0
        var users: [Int32] = [], items: [Int32] = [], predictions: [Float] = []
        var known: [Int32] = [], knownItems: [Int32] = []
        while var batch = queue.take() {
            // Three passes per batch: look the keys up, predict (a tight loop, so the rows' cache misses of many
            // pairs overlap), then count and format.
            users.removeAll(keepingCapacity: true)
            items.removeAll(keepingCapacity: true)
            ByteView.with(batch.keys) { keys in
                var start = 0
                for j in 0..<batch.count {
                    let userEnd = Int(batch.userEnds[j]), itemEnd = Int(batch.itemEnds[j])
                    let userKey = keys.view(start..<userEnd)
                    start = itemEnd
                    if !userKey.elementsEqual(lastUser) {
                        lastUserID = userIDs.id(of: userKey)
                        lastUser.removeAll(keepingCapacity: true)
                        userKey.append(to: &lastUser)
                    }
                    users.append(lastUserID)
                    items.append(itemIDs.id(of: keys.view(userEnd..<itemEnd)))
                }
            }
            // Pairs the model has both vectors for go to the SIMD loop (-1 marks the others), the rest to the fallback.
            known.removeAll(keepingCapacity: true)
            knownItems.removeAll(keepingCapacity: true)
            for j in 0..<users.count {
                let user = users[j], item = items[j]
                let knownUser = user >= 0 && Int(user) < userHasVector.count && userHasVector[Int(user)]
                let knownItem = item >= 0 && Int(item) < itemHasVector.count && itemHasVector[Int(item)]
                known.append(knownUser && knownItem ? user : -1)
                knownItems.append(knownUser && knownItem ? item : -1)
                if !(knownUser && knownItem) {
                    fallback += 1
                    if user < 0 { unknownUsers += 1 }
                    if item < 0 { unknownItems += 1 }
                }
            }
            model.predictPairs(users: known, items: knownItems, into: &predictions)
            for j in 0..<users.count where known[j] < 0 {
                let user = users[j], item = items[j]
                predictions[j] = model.fallbackPrediction(
                    user: max(Int(user), 0),
                    knownUser: user >= 0 && Int(user) < userHasVector.count && userHasVector[Int(user)],
                    item: max(Int(item), 0),
                    knownItem: item >= 0 && Int(item) < itemHasVector.count && itemHasVector[Int(item)])
            }
            pairs += users.count
            ByteView.with(batch.keys) { keys in
                var start = 0
                for j in 0..<batch.count {
                    let userEnd = Int(batch.userEnds[j]), itemEnd = Int(batch.itemEnds[j])
                    let prediction = predictions[j], rating = batch.ratings[j]
                    if !rating.isNaN {
                        let error = Double(prediction) - rating
                        squared += error * error
                        absolute += abs(error)
                        rated += 1
                    }
                    LineWriter.appendCSVField(keys.view(start..<userEnd), to: &out)
                    out.append(UInt8(ascii: ","))
                    LineWriter.appendCSVField(keys.view(userEnd..<itemEnd), to: &out)
                    out.append(UInt8(ascii: ","))
                    LineWriter.appendFixed4(prediction, to: &out)
                    out.append(UInt8(ascii: "\n"))
                    start = itemEnd
                }
            }
            writer.append(bytes: out)
            out.removeAll(keepingCapacity: true)
            batch.clear()
            queue.giveBack(batch)
            do {
                try writer.flushIfNeeded()
            } catch {
                failure = error
                failedFlag.withLock { $0 = true }
                // Keep taking batches so the reader never waits on a full queue; drop them.
                while queue.take() != nil {}
                return
            }
        }
        report.pairs = pairs
        report.fallback = fallback
        report.unknownUsers = unknownUsers
        report.unknownItems = unknownItems
        report.rated = rated
        self.squared = squared
        self.absolute = absolute
    }
}
