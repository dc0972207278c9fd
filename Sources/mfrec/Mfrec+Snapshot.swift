import ArgumentParser
import Foundation
import MFRec

extension Mfrec {
    struct Snapshot: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List, inspect, create, compare and delete model snapshots.",
            subcommands: [List.self, Show.self, Create.self, Diff.self, Delete.self, Prune.self])

        struct List: ParsableCommand {
            static let configuration = CommandConfiguration(abstract: "List every snapshot; * marks the live one.")
            @OptionGroup var database: DatabaseOptions
            @Option(help: "table or json.") var format: OutputFormat = .table

            func run() throws {
                let rec = try Recommender(path: database.db)
                let snapshots = try rec.snapshots()
                let live = try rec.liveModel()
                if format == .json {
                    let rows = snapshots.map { SnapshotRow($0) }
                    try printJSON(rows)
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
                        "\nthe live model has \(grouped(live.updates)) incremental updates since snapshot \(live.snapshotID ?? 0) (not yet in a snapshot: `mfrec snapshot create`)"
                    )
                }
            }
        }

        struct Show: ParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Show everything about one snapshot.")
            @OptionGroup var database: DatabaseOptions
            @Argument(help: "The snapshot id.") var id: Int

            func run() throws {
                let rec = try Recommender(path: database.db)
                let s = try rec.snapshot(id)
                var lines: [(String, String)] = [
                    ("snapshot", "\(s.id)\(s.isLive ? " (live)" : "")"), ("created", s.createdAt), ("kind", s.kind),
                    ("parent", s.parentID.map(String.init) ?? "-"), ("note", s.note ?? "-"),
                    ("model", "k = \(s.factors), \(grouped(s.userCount)) users × \(grouped(s.itemCount)) items"),
                    ("ratings seen", "up to sequence number \(grouped(Int(s.watermark)))"),
                    (
                        "size",
                        "\(grouped(s.storedBytes)) bytes stored (\(grouped(s.modelBytes)) uncompressed, "
                            + String(format: "%.1f%%", 100 * Double(s.storedBytes) / Double(max(s.modelBytes, 1))) + ")"
                    ),
                ]
                if let split = s.split { lines.append(("test set", split.summary)) }
                if let test = s.metrics?.test {
                    lines.append(
                        (
                            "test",
                            String(
                                format: "RMSE %.4f, MAE %.4f, MSE %.4f on %@ ratings", test.rmse, test.mae, test.mse,
                                grouped(test.count))
                        ))
                }
                if let updates = s.metrics?.incrementalUpdates, updates > 0 {
                    lines.append(("incremental", "\(grouped(updates)) ratings applied since the parent"))
                }
                if let o = s.options {
                    lines.append(
                        (
                            "hyperparameters",
                            "k=\(o.factors) epochs=\(o.epochs) learning-rate=\(o.learningRate) decay=\(o.learningRateDecay) "
                                + "regularization=\(o.regularization) bias-regularization=\(o.biasRegularization) init-scale=\(o.initScale) "
                                + "seed=\(o.seed) bins=\(o.bins)\(o.useBias ? "" : " no-bias")\(o.nonnegative ? " nonnegative" : "")"
                        ))
                }
                let width = lines.map(\.0.count).max() ?? 0
                for (k, v) in lines { print(k.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + v) }
                if !s.history.isEmpty {
                    print("\nhistory:")
                    let rows = s.history.map { h in
                        [
                            String(h.epoch), String(format: "%.4f", h.trainLoss), String(format: "%.4f", h.trainMSE),
                            h.test.map { String(format: "%.4f", $0.mse) } ?? "-",
                            h.test.map { String(format: "%.4f", $0.rmse) } ?? "-",
                            String(format: "%.2f", h.seconds),
                        ]
                    }
                    print(
                        table(
                            ["epoch", "train loss", "train MSE", "test MSE", "test RMSE", "seconds"], rows,
                            rightAligned: [0, 1, 2, 3, 4, 5]))
                }
            }
        }

        struct Create: ParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Freeze the live model (with its incremental updates) as a new snapshot.")
            @OptionGroup var database: DatabaseOptions
            @Option(help: "A note to store with it.") var note: String?

            func run() throws {
                let rec = try Recommender(path: database.db)
                let id = try rec.createSnapshot(note: note)
                print("saved snapshot \(id) (live)")
            }
        }

        struct Diff: ParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Compare two snapshots.")
            @OptionGroup var database: DatabaseOptions
            @Argument(help: "The first snapshot.") var a: Int
            @Argument(help: "The second snapshot.") var b: Int
            @Option(help: "Users sampled for the top-10 overlap (0…1000000).") var users = 200

            func validate() throws {
                guard (0...1_000_000).contains(users) else { throw ValidationError("--users must be 0…1000000") }
            }

            func run() throws {
                let d = try Recommender(path: database.db).diffSnapshots(a, b, sampleUsers: users)
                print("snapshot \(d.a) → \(d.b)")
                if let r = d.rmseDelta, let m = d.maeDelta {
                    print(String(format: "test RMSE %+.4f, MAE %+.4f", r, m))
                } else {
                    print(
                        "test metrics: not available for both (frozen snapshots have none; use `mfrec eval --snapshot N`)"
                    )
                }
                if d.factorsA != d.factorsB {
                    print("vectors: not comparable (k = \(d.factorsA) and k = \(d.factorsB))")
                } else {
                    print(
                        String(
                            format: "item vectors: mean cosine %.4f over %@ items", d.meanItemCosine,
                            grouped(d.comparedItems)))
                    print(
                        String(
                            format: "user vectors: mean cosine %.4f over %@ users", d.meanUserCosine,
                            grouped(d.comparedUsers)))
                }
                print(
                    String(
                        format: "top-10 lists by the rating model: %.1f%% shared on average over %@ sampled users",
                        d.top10Overlap * 100, grouped(d.sampledUsers)))
                if let ranking = d.rankingTop10Overlap {
                    print(String(format: "top-10 lists by the ranking model: %.1f%% shared", ranking * 100))
                }
            }
        }

        struct Delete: ParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Delete a snapshot (not the live one).")
            @OptionGroup var database: DatabaseOptions
            @Argument(help: "The snapshot id.") var id: Int

            func run() throws {
                try Recommender(path: database.db).deleteSnapshot(id)
                print("deleted snapshot \(id)")
            }
        }

        struct Prune: ParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Delete all snapshots but the K newest and the live one.")
            @OptionGroup var database: DatabaseOptions
            @Option(help: "How many of the newest to keep.") var keep: Int

            func validate() throws { guard keep >= 0 else { throw ValidationError("--keep must be at least 0") } }

            func run() throws {
                let deleted = try Recommender(path: database.db).pruneSnapshots(keep: keep)
                print(
                    deleted.isEmpty
                        ? "nothing to delete" : "deleted snapshots \(deleted.map(String.init).joined(separator: ", "))")
            }
        }
    }

    struct Rollback: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Make an earlier snapshot the live model (unsaved incremental updates are saved as a snapshot first).")
        @OptionGroup var database: DatabaseOptions
        @Argument(help: "The snapshot id.") var id: Int

        func run() throws {
            let report = try Recommender(path: database.db).rollback(to: id)
            if let saved = report.savedUpdatesAs {
                print("saved the live model's unsaved incremental updates as snapshot \(saved)")
            }
            print("snapshot \(report.snapshotID) is live (\(duration(report.seconds)))")
        }
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
