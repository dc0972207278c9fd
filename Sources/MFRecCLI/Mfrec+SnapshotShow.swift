import ArgumentParser
import Foundation
import MFRec

extension Mfrec.Snapshot {
    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show everything about one snapshot.")
        @OptionGroup var database: DatabaseOptions
        @Argument(help: "The snapshot id.") var id: Int

        func run() throws {
            let rec = try database.read()
            let s = try rec.snapshot(id)
            var lines: [(String, String)] = [
                ("snapshot", "\(s.id)\(s.isLive ? " (live)" : "")"), ("created", s.createdAt), ("kind", s.kind),
                ("parent", s.parentID.map(String.init) ?? "-"), ("note", s.note ?? "-"),
                ("model", "k = \(s.factors), \(plural(s.userCount, "user")) × \(plural(s.itemCount, "item"))"),
                ("ratings seen", "up to sequence number \(grouped(Int(s.watermark)))"),
                (
                    "size",
                    "\(plural(s.storedBytes, "byte")) stored (\(grouped(s.modelBytes)) uncompressed, "
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
            if let imported = s.metrics?.imported {
                let p = imported.parameters
                lines.append(
                    (
                        "imported",
                        "\(imported.target) model: \(imported.algorithm) from \(imported.path), rank \(imported.rank), "
                            + "regParam \(p.regParam)" + (p.alpha.map { ", alpha \($0)" } ?? "")
                            + (p.maxIter.map { ", maxIter \($0)" } ?? "")
                            + (p.nonnegative == true ? ", nonnegative" : "")
                            + (imported.sparkVersion.map { ", Spark \($0)" } ?? "")
                    ))
                lines.append(("scoring", imported.scoring))
                if let metrics = imported.metrics, !metrics.isEmpty {
                    lines.append(
                        (
                            "spark holdout",
                            metrics.sorted { $0.key < $1.key }.map { "\($0.key) \(String(format: "%.4f", $0.value))" }
                                .joined(separator: ", ")
                        ))
                }
            }
            if let updates = s.metrics?.incrementalUpdates, updates > 0 {
                lines.append(("incremental", "\(plural(updates, "rating")) applied since the parent"))
            }
            if let o = s.options {
                lines.append(
                    (
                        "hyperparameters",
                        "k=\(o.factors) epochs=\(o.epochs) learning-rate=\(o.learningRate) "
                            + "decay=\(o.learningRateDecay) "
                            + "regularization=\(o.regularization) bias-regularization=\(o.biasRegularization) "
                            + "init-scale=\(o.initScale) "
                            + "seed=\(o.seed) "
                            + "bins=\(o.bins)\(o.useBias ? "" : " no-bias")\(o.nonnegative ? " nonnegative" : "")"
                    ))
                if let precision = o.itemPrecision, precision != .f32 {
                    lines.append(("item precision", "\(precision.rawValue) scan copy in the item matrix"))
                }
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
}
