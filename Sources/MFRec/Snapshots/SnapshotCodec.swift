import Foundation
import MFEngine
import MFStore

/// Metrics stored with a snapshot (JSON).
public struct SnapshotMetrics: Codable, Sendable, Equatable {
    /// MAE, MSE and RMSE on the test split (nil without one).
    public var test: ErrorMetrics?
    /// Test ratings whose user or item had no training rating.
    public var unseenTestPairs: Int?
    /// MSE on the training ratings in the last epoch.
    public var trainMSE: Double?
    /// MAE on the training ratings in the last epoch.
    public var trainMAE: Double?
    /// For a snapshot frozen from incremental updates: how many ratings were applied since its parent.
    public var incrementalUpdates: Int?
    /// For an imported snapshot: where its model came from.
    public var imported: ImportSource?
}

/// Where an imported snapshot's model came from (`importSpark`).
public struct ImportSource: Codable, Sendable, Equatable {
    /// "spark".
    public var source: String
    /// Which of the snapshot's models was imported: "rating" or "ranking".
    public var target: String
    /// What trained it, e.g. "Spark MLlib ALS (implicitPrefs)".
    public var algorithm: String
    /// The folder it was read from.
    public var path: String
    /// k.
    public var rank: Int
    /// The manifest's ALS parameters.
    public var parameters: SparkFactors.Manifest.Parameters
    /// The manifest's holdout metrics.
    public var metrics: [String: Double]?
    /// The Spark version.
    public var sparkVersion: String?
    /// Rows of the run (ratings, train, holdout, users, items).
    public var rows: [String: Int]?
    /// How the imported model scores, in a sentence.
    public var scoring: String
}

/// Turns models and their training records into snapshot rows and back.
enum SnapshotCodec {
    static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        return e
    }()

    static func json<T: Encodable>(_ value: T) -> String {
        String(decoding: (try? encoder.encode(value)) ?? Data("null".utf8), as: UTF8.self)
    }

    /// The stored form of a snapshot's ranking model and what validation chose.
    static func rankingRecord(snapshot id: Int, model: RankingModel, choice: RankingChoice) -> Store.RankingRecord {
        .init(
            snapshotID: id, factors: model.factors, itemCount: model.itemCount, choice: json(choice),
            model: model.encoded())
    }

    static func record(
        model: FactorModel, kind: String, note: String?, parent: Int?, options: TrainingOptions?,
        history: [EpochStats], test: ErrorMetrics?, unseen: Int?, split: TestSplit?,
        watermark: Int64, splitAsOf: Int64? = nil, updates: Int? = nil, imported: ImportSource? = nil
    ) -> SnapshotRecord {
        let (bytes, rawBytes) = ModelBlob.encode(model)
        let metrics = SnapshotMetrics(
            test: test, unseenTestPairs: unseen, trainMSE: history.last?.trainMSE,
            trainMAE: history.last?.trainMAE, incrementalUpdates: updates, imported: imported)
        return SnapshotRecord(
            createdAt: ISO8601DateFormatter().string(from: Date()), parentID: parent, kind: kind, note: note,
            factors: model.factors, userCount: model.userCount, itemCount: model.itemCount,
            hyperparameters: json(options), metrics: json(metrics), history: json(history),
            split: split.map { json(StoredSplit(split: $0, asOf: splitAsOf ?? watermark)) } ?? json(split),
            watermark: watermark, globalMean: Double(model.globalMean), model: bytes, modelBytes: rawBytes)
    }

    /// The split as stored: the split and the watermark its ratings are read at (the training run's).
    struct StoredSplit: Codable {
        var split: TestSplit
        var asOf: Int64
    }

    static func decode<T: Decodable>(_ type: T.Type, _ text: String) -> T? {
        try? JSONDecoder().decode(type, from: Data(text.utf8))
    }
}

/// A snapshot as the API presents it.
public struct SnapshotInfo: Sendable {
    /// The snapshot's number.
    public var id: Int
    /// When it was made (ISO 8601, UTC).
    public var createdAt: String
    /// "trained", "frozen" (the live model with its updates) or "imported".
    public var kind: String
    /// The note given when it was made.
    public var note: String?
    /// k of its rating model.
    public var factors: Int
    /// Users with a vector.
    public var userCount: Int
    /// Items with a vector.
    public var itemCount: Int
    /// The largest rating sequence number it has seen.
    public var watermark: Int64
    /// The hyperparameters it was trained with.
    public var options: TrainingOptions?
    /// Its error metrics.
    public var metrics: SnapshotMetrics?
    /// Loss, MAE and MSE per epoch.
    public var history: [EpochStats]
    /// How its test ratings were chosen.
    public var split: TestSplit?
    /// The watermark the split's ratings are read at: the training run's (a frozen snapshot keeps its
    /// parent's), so ratings written or re-rated later change neither its members nor their values.
    public var splitAsOf: Int64
    /// Bytes of the model blob as stored (compressed), and of its plain encoding.
    public var storedBytes: Int
    /// The size of its model, uncompressed.
    public var modelBytes: Int
    /// The snapshot that was live when it was made.
    public var parentID: Int?
    /// Whether it is the live snapshot.
    public var isLive: Bool

    init(_ record: SnapshotRecord, live: Int?) {
        id = record.id ?? 0
        createdAt = record.createdAt
        kind = record.kind
        note = record.note
        factors = record.factors
        userCount = record.userCount
        itemCount = record.itemCount
        watermark = record.watermark
        options = SnapshotCodec.decode(TrainingOptions.self, record.hyperparameters)
        metrics = SnapshotCodec.decode(SnapshotMetrics.self, record.metrics)
        history = SnapshotCodec.decode([EpochStats].self, record.history) ?? []
        // Rows written before the split carried its watermark hold the bare split (read at `watermark`).
        let stored = SnapshotCodec.decode(SnapshotCodec.StoredSplit.self, record.split)
        split = stored?.split ?? SnapshotCodec.decode(TestSplit.self, record.split)
        splitAsOf = stored?.asOf ?? record.watermark
        storedBytes = record.storedBytes
        modelBytes = record.modelBytes
        parentID = record.parentID
        isLive = record.id == live
    }
}
