import Foundation
import MFEngine
import MFStore

/// Which of a snapshot's two models an import replaces.
public enum ImportTarget: String, Sendable, CaseIterable {
    /// The rating model (`predict`, `recommend --by rating`): an explicit ALS model.
    case rating
    /// The ranking model (`recommend --by ranking`, the default lists): an implicit ALS model.
    case ranking
}

/// What `importSpark` did.
public struct ImportReport: Sendable {
    /// The new snapshot.
    public var snapshotID: Int
    /// Whether it is now the live model.
    public var activated: Bool
    /// The model it replaced.
    public var target: ImportTarget
    /// k.
    public var rank: Int
    /// Users and items with a vector in the files.
    public var users = 0, items = 0
    /// Of those, the ones the database did not know (added to it).
    public var newUsers = 0, newItems = 0
    /// Users and items of the database without a vector in the files (they fall back as untrained ones do).
    public var usersWithoutVector = 0, itemsWithoutVector = 0
    /// For `.rating`: whether the live ranking model was kept (a `.ranking` import always keeps the rating model).
    public var keptOtherModel = false
    /// The snapshot the unsaved incremental updates were frozen into first, if there were any.
    public var savedUpdatesAs: Int?
    /// Part files read.
    public var files = 0
    /// Wall-clock time.
    public var seconds = 0.0
}

extension Recommender {
    /// Imports a model trained by Spark MLlib ALS (`spark/train_als.py`) as a new snapshot: an explicit
    /// model as the rating model, an implicit one as the ranking model. Ids are mapped onto the stored users
    /// and items by their original ids; ids the database does not know are added. The other model of the
    /// snapshot is the live one's (its rating model with the incremental updates, or its ranking model),
    /// so an import replaces one model and keeps the other.
    ///
    /// - As the rating model: Spark's ALS has no biases, so the snapshot predicts p_u·q_i clipped to the
    ///   rating scale (μ = b_u = b_i = 0); `rate` moves it by the usual SGD steps and fold-ins.
    /// - As the ranking model: users are scored by their Spark vector while their ratings are the ones it
    ///   stood for, and by the ALS user step over their ratings once they change (see `ImplicitALS`).
    ///
    /// Everything happens in one transaction, after every file has been read and checked: a bad file
    /// changes nothing. Unsaved incremental updates are frozen into a snapshot first, as `rollback` does.
    /// - Parameters:
    ///   - folder: the Spark job's output folder.
    ///   - target: which model it becomes (must match the manifest's `model`: rating or implicit).
    ///   - note: a note for the snapshot.
    ///   - activate: make it the live model (otherwise it is stored for a later `rollback`).
    /// - Returns: the new snapshot and what the import mapped, added and kept.
    /// - Throws: `MFRecError` (a file, line and field), `MFRecError.modelMismatch` (the wrong kind of model,
    ///   no rating model to keep), `MFRecError.noRatings`, `StoreError`.
    @discardableResult
    public func importSpark(folder: String, as target: ImportTarget, note: String? = nil, activate: Bool = true)
        throws -> ImportReport
    {
        return try serialized {
            let started = Date()
            let spark = try SparkFactors(folder: folder)
            let manifest = spark.manifest
            let implicit = manifest.model == "implicit" || manifest.parameters.implicitPrefs == true
            switch target {
            case .rating where implicit:
                throw MFRecError.modelMismatch(
                    "\(folder) holds an implicit ALS model (scores, not ratings): import it --as ranking")
            case .ranking where !implicit:
                throw MFRecError.modelMismatch(
                    "\(folder) holds an explicit ALS model (ratings): import it --as rating, or train with --model implicit"
                )
            default: break
            }
            var report = ImportReport(snapshotID: 0, activated: activate, target: target, rank: manifest.rank)
            report.files = spark.users.files + spark.items.files
            let k = manifest.rank
            let source = ImportSource(
                source: "spark", target: target.rawValue,
                algorithm: "Spark MLlib ALS" + (implicit ? " (implicitPrefs)" : " (explicit)"), path: folder, rank: k,
                parameters: manifest.parameters, metrics: manifest.metrics, sparkVersion: manifest.sparkVersion,
                rows: manifest.rows,
                scoring: target == .rating
                    ? "no biases: a prediction is p·q clipped to the rating scale"
                    : "a user's Spark vector until their ratings change, then the ALS user step over them")
            let state = try store.transaction { () -> LiveState? in
                guard let scale = try store.ratingScale() else { throw MFRecError.noRatings }
                let live = try store.liveModel()
                let current = live.snapshotID == nil ? nil : try liveState()
                if activate, let current, current.live.dirty {
                    report.savedUpdatesAs = try freeze(
                        current, note: "saved automatically before importing \(target.rawValue) model from \(folder)")
                }
                func ids(_ side: SparkFactors.Side, add: (String) throws -> (id: Int, isNew: Bool)) throws -> [Int] {
                    try side.keys.map { key in
                        let (id, isNew) = try add(key)
                        return isNew ? -id - 1 : id  // new ids marked negative, counted below
                    }
                }
                let userIDs = try ids(spark.users) { try store.addUser(key: $0) }
                let itemIDs = try ids(spark.items) { try store.addItem(key: $0) }
                report.newUsers = userIDs.filter { $0 < 0 }.count
                report.newItems = itemIDs.filter { $0 < 0 }.count
                let users = userIDs.map { $0 < 0 ? -$0 - 1 : $0 }, items = itemIDs.map { $0 < 0 ? -$0 - 1 : $0 }
                report.users = users.count
                report.items = items.count
                let userCount = try store.userCount(), itemCount = try store.itemCount()
                report.usersWithoutVector = userCount - users.count
                report.itemsWithoutVector = itemCount - items.count
                let watermark = try store.maxSequence()
                let id: Int
                switch target {
                case .rating:
                    var model = FactorModel(
                        factors: k, userCount: userCount, itemCount: itemCount, useBias: false, globalMean: 0,
                        scale: Float(scale.lowerBound)...Float(scale.upperBound))
                    let stride = model.stride
                    for (r, u) in users.enumerated() {
                        for c in 0..<k { model.userFactors[u * stride + c] = spark.users.vectors[r * k + c] }
                    }
                    for (r, i) in items.enumerated() {
                        for c in 0..<k { model.itemFactors[i * stride + c] = spark.items.vectors[r * k + c] }
                    }
                    try checkFits(model)
                    id = try store.insertSnapshot(
                        SnapshotCodec.record(
                            model: model, kind: "imported", note: note ?? "Spark ALS rating model from \(folder)",
                            parent: live.snapshotID, options: nil, history: [], test: nil, unseen: nil, split: nil,
                            watermark: watermark, imported: source))
                    if let (ranking, choice) = current?.ranking {
                        try store.setRankingModel(
                            SnapshotCodec.rankingRecord(snapshot: id, model: ranking, choice: choice))
                        report.keptOtherModel = true
                    }
                case .ranking:
                    guard let current else {
                        throw MFRecError.modelMismatch(
                            "there is no rating model to keep beside an imported ranking model: "
                                + "run mfrec train, or import a rating model first")
                    }
                    let model = try importedRankingModel(
                        spark, users: users, items: items, itemCount: itemCount, scale: scale,
                        als: ImplicitALS(
                            alpha: manifest.parameters.alpha ?? 1, regularization: manifest.parameters.regParam,
                            nonnegative: manifest.parameters.nonnegative ?? false))
                    let parent = current.snapshot
                    id = try store.insertSnapshot(
                        SnapshotCodec.record(
                            model: current.model, kind: "imported",
                            note: note
                                ?? "Spark ALS ranking model from \(folder); rating model of snapshot \(parent.id)",
                            parent: parent.id, options: parent.options, history: parent.history,
                            test: current.live.dirty ? nil : parent.metrics?.test,
                            unseen: current.live.dirty ? nil : parent.metrics?.unseenTestPairs, split: parent.split,
                            watermark: max(watermark, parent.watermark), splitAsOf: parent.splitAsOf,
                            imported: source))
                    let choice = RankingChoice(
                        parameters: model.parameters, popularityWeight: 0, lightBelow: 0, lightRanker: .ranking,
                        lightPopularityWeight: 0, validation: nil, grid: [], newcomers: nil, tuned: false, seconds: 0)
                    try store.setRankingModel(SnapshotCodec.rankingRecord(snapshot: id, model: model, choice: choice))
                    report.keptOtherModel = true
                }
                report.snapshotID = id
                guard activate else { return nil }
                try store.setLiveSnapshot(id, watermark: watermark)
                return try liveState()
            }
            if let state { writeItemMatrix(state) }
            report.seconds = Date().timeIntervalSince(started)
            return report
        }
    }

    /// The implicit-ALS ranking model of an import: Spark's item and user vectors at the stored ids, each
    /// user's vector tagged with the hash of their stored ratings, and the popularity prior of the stored
    /// ratings (one pass over them, in user order; memory flat in their number).
    private func importedRankingModel(
        _ spark: SparkFactors, users: [Int], items: [Int], itemCount: Int, scale: ClosedRange<Double>,
        als: ImplicitALS
    ) throws -> RankingModel {
        let k = spark.manifest.rank
        var itemVectors = [Float](repeating: 0, count: itemCount * k)
        var hasVector = [Bool](repeating: false, count: itemCount)
        for (r, i) in items.enumerated() {
            hasVector[i] = true
            for c in 0..<k { itemVectors[i * k + c] = spark.items.vectors[r * k + c] }
        }
        let storedUsers = (users.max() ?? -1) + 1
        var userVectors = [Float](repeating: 0, count: storedUsers * k)
        var hasUser = [Bool](repeating: false, count: storedUsers)
        for (r, u) in users.enumerated() {
            hasUser[u] = true
            for c in 0..<k { userVectors[u * k + c] = spark.users.vectors[r * k + c] }
        }
        var hashes = [UInt64](repeating: 0, count: storedUsers)
        var relevant = [Int](repeating: 0, count: itemCount)
        let relevantAt = Float(Recommender.topQuarter(of: scale))
        try store.forEachUserRatings { u, ratings in
            if u < storedUsers, hasUser[u] { hashes[u] = RankingModel.ratingsHash(ratings) }
            for (i, r) in ratings where r >= relevantAt && Int(i) < itemCount { relevant[Int(i)] += 1 }
        }
        return RankingModel.importedALS(
            als, factors: k, itemVectors: itemVectors, hasItemVector: hasVector, userVectors: userVectors,
            userHashes: hashes, ratingOffset: scale.lowerBound
        ).withPopularity(relevantCounts: relevant)
    }
}
