import Foundation
import MFEngine
import MFStore

/// Metrics stored with a snapshot (JSON).
public struct SnapshotMetrics: Codable, Sendable, Equatable {
    public var test: ErrorMetrics?
    public var unseenTestPairs: Int?
    public var trainMSE: Double?
    public var trainMAE: Double?
    /// For a snapshot frozen from incremental updates: how many ratings were applied since its parent.
    public var incrementalUpdates: Int?
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

    static func record(
        model: FactorModel, kind: String, note: String?, parent: Int?, options: TrainingOptions?,
        history: [EpochStats], test: ErrorMetrics?, unseen: Int?, split: TestSplit?,
        watermark: Int64, updates: Int? = nil
    ) -> SnapshotRecord {
        let (bytes, rawBytes) = ModelBlob.encode(model)
        let metrics = SnapshotMetrics(
            test: test, unseenTestPairs: unseen, trainMSE: history.last?.trainMSE,
            trainMAE: history.last?.trainMAE, incrementalUpdates: updates)
        return SnapshotRecord(
            createdAt: ISO8601DateFormatter().string(from: Date()), parentID: parent, kind: kind, note: note,
            factors: model.factors, userCount: model.userCount, itemCount: model.itemCount,
            hyperparameters: json(options), metrics: json(metrics), history: json(history), split: json(split),
            watermark: watermark, globalMean: Double(model.globalMean), model: bytes, modelBytes: rawBytes)
    }

    static func decode<T: Decodable>(_ type: T.Type, _ text: String) -> T? {
        try? JSONDecoder().decode(type, from: Data(text.utf8))
    }
}

/// A snapshot as the API presents it.
public struct SnapshotInfo: Sendable {
    public var id: Int
    public var createdAt: String
    public var kind: String
    public var note: String?
    public var factors: Int
    public var userCount: Int
    public var itemCount: Int
    public var watermark: Int64
    public var options: TrainingOptions?
    public var metrics: SnapshotMetrics?
    public var history: [EpochStats]
    public var split: TestSplit?
    /// Bytes of the model blob as stored (compressed), and of its plain encoding.
    public var storedBytes: Int
    public var modelBytes: Int
    public var parentID: Int?
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
        split = SnapshotCodec.decode(TestSplit.self, record.split)
        storedBytes = record.storedBytes
        modelBytes = record.modelBytes
        parentID = record.parentID
        isLive = record.id == live
    }
}
