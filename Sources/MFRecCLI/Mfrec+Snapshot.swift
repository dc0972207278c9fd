import ArgumentParser
import Foundation
import MFRec

extension Mfrec {
    struct Snapshot: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List, inspect, create, compare and delete model snapshots.",
            subcommands: [List.self, Show.self, Create.self, Diff.self, Delete.self, Prune.self])

    }

}

/// The JSON form of `snapshot list`.
struct SnapshotRow: Encodable {
    var id: Int, createdAt: String, kind: String, factors: Int, testRMSE: Double?, testMAE: Double?
    var watermark: Int64, note: String?, live: Bool, storedBytes: Int
    init(_ s: SnapshotInfo) {
        id = s.id
        createdAt = s.createdAt
        kind = s.kind
        factors = s.factors
        testRMSE = s.metrics?.test?.rmse
        testMAE = s.metrics?.test?.mae
        watermark = s.watermark
        note = s.note
        live = s.isLive
        storedBytes = s.storedBytes
    }
}
