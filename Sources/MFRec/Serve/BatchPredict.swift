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
    /// - Throws: `InputError` (file, line, field) for a bad line, nothing written; `OutputError`; `QueryError.noModel`.
    @discardableResult
    public func predictFile(
        _ path: String, format: RatingsFormat? = nil, to output: String, isCancelled: (() -> Bool)? = nil
    ) throws -> BatchPredictReport {
        let started = Date()
        let model = try current().model
        let (userIDs, itemIDs) = try pool.read { store in
            (KeyTable(try store.userKeys()), KeyTable(try store.itemKeys()))
        }
        let userHasVector = (0..<model.userCount).map(model.hasUser)
        let itemHasVector = (0..<model.itemCount).map(model.hasItem)
        let reader = try RatingsReader(path: path, format: format, ratingOptional: true)
        let writer = try LineWriter(path: output, gzip: output != "-" && output.hasSuffix(".gz"))
        var report = BatchPredictReport()
        var squared = 0.0, absolute = 0.0
        // Files are usually grouped by user: the last user's key and id are kept.
        var lastUser: [UInt8] = [], lastUserID: Int32 = -1
        writer.append("user,item,prediction\n")
        // Lines are formatted into a local buffer and handed to the writer in blocks: appending to the
        // writer's own buffer byte by byte paid for an exclusivity check per byte.
        var out: [UInt8] = []
        out.reserveCapacity(1 << 16 + 256)
        try reader.read(
            { line in
                if report.pairs & 0xffff == 0, isCancelled?() == true { throw CancellationError() }
                var user: Int32 = -1
                if line.user.elementsEqual(lastUser) {
                    user = lastUserID
                } else {
                    user = userIDs.id(of: line.user)
                    lastUser.removeAll(keepingCapacity: true)
                    lastUser.append(contentsOf: line.user)
                    lastUserID = user
                }
                let item = itemIDs.id(of: line.item)
                let knownUser = user >= 0 && Int(user) < userHasVector.count && userHasVector[Int(user)]
                let knownItem = item >= 0 && Int(item) < itemHasVector.count && itemHasVector[Int(item)]
                let prediction =
                    knownUser && knownItem
                    ? model.fastPredict(user: Int(user), item: Int(item))
                    : model.fallbackPrediction(
                        user: max(Int(user), 0), knownUser: knownUser, item: max(Int(item), 0), knownItem: knownItem)
                report.pairs += 1
                if !(knownUser && knownItem) {
                    report.fallback += 1
                    if user < 0 { report.unknownUsers += 1 }
                    if item < 0 { report.unknownItems += 1 }
                }
                if !line.rating.isNaN {
                    let error = Double(prediction) - line.rating
                    squared += error * error
                    absolute += abs(error)
                    report.rated += 1
                }
                LineWriter.appendCSVField(line.user, to: &out)
                out.append(UInt8(ascii: ","))
                LineWriter.appendCSVField(line.item, to: &out)
                out.append(UInt8(ascii: ","))
                LineWriter.appendFixed4(prediction, to: &out)
                out.append(UInt8(ascii: "\n"))
                if out.count >= 1 << 16 {
                    writer.append(bytes: out)
                    out.removeAll(keepingCapacity: true)
                    try writer.flushIfNeeded()
                }
            }, onError: { throw $0 })
        writer.append(bytes: out)
        _ = try writer.finish()
        if report.rated > 0 {
            report.rmse = (squared / Double(report.rated)).squareRoot()
            report.mae = absolute / Double(report.rated)
        }
        report.seconds = Date().timeIntervalSince(started)
        return report
    }
}
