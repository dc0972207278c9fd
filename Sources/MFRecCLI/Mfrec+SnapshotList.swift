import ArgumentParser
import Foundation
import MFRec

extension Mfrec.Snapshot {
    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List every snapshot; * marks the live one.")
        @OptionGroup var database: DatabaseOptions
        @Option(help: "table, json or csv.") var format: OutputFormat = .table

        func run() throws {
            let rec = try database.read()
            let snapshots = try rec.snapshots()
            let live = try rec.liveModel()
            if format == .json {
                let rows = snapshots.map { SnapshotRow($0) }
                try printJSON(rows)
                return
            }
            if format == .csv {
                print("id,live,created,kind,k,test_rmse,test_mae,ratings_seen,note")
                for s in snapshots {
                    let cells = [
                        String(s.id), s.isLive ? "1" : "0", s.createdAt, s.kind, String(s.factors),
                        s.metrics?.test.map { String(format: "%.4f", $0.rmse) } ?? "",
                        s.metrics?.test.map { String(format: "%.4f", $0.mae) } ?? "", String(s.watermark),
                        csvField(s.note ?? ""),
                    ]
                    print(cells.joined(separator: ","))
                }
                return
            }
            if snapshots.isEmpty {
                print("no snapshots yet (run `mfrec train`)")
                return
            }
            let rows = snapshots.map { s in
                [
                    (s.isLive ? "*" : " ") + String(s.id), s.createdAt, s.kind, String(s.factors),
                    s.metrics?.test.map { String(format: "%.4f", $0.rmse) } ?? "-",
                    s.metrics?.test.map { String(format: "%.4f", $0.mae) } ?? "-", grouped(Int(s.watermark)),
                    s.note ?? "",
                ]
            }
            print(
                table(
                    ["id", "created", "kind", "k", "test RMSE", "test MAE", "ratings seen", "note"], rows,
                    rightAligned: [0, 3, 4, 5, 6]))
            if live.dirty {
                print(
                    "\nthe live model has \(grouped(live.updates)) incremental updates since snapshot "
                        + "\(live.snapshotID ?? 0) (not yet in a snapshot: `mfrec snapshot create`)"
                )
            }
        }
    }
}
