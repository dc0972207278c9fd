import ArgumentParser
import Foundation
import MFRec

extension Mfrec {
    struct Info: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show what the database holds.")

        @OptionGroup var database: DatabaseOptions

        func run() throws {
            let rec = try database.read()
            let info = try rec.info()
            var rows: [(String, String)] = [
                ("database", info.path),
                ("users", grouped(info.users)),
                (
                    "items",
                    grouped(info.items)
                        + (info.itemsWithTitles > 0 ? " (\(grouped(info.itemsWithTitles)) with titles)" : "")
                ),
                ("ratings", grouped(info.ratings)),
            ]
            if let scale = info.scale {
                rows.append(("scale", RatingScale.describe(scale)))
            }
            if let mean = info.meanRating { rows.append(("mean rating", String(format: "%.5f", mean))) }
            rows.append(("density", String(format: "%.4f%%", info.density * 100)))
            rows.append(("snapshots", grouped(info.snapshots)))
            let width = rows.map(\.0.count).max() ?? 0
            for (key, value) in rows { print(key.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + value) }
            printModelSummary(rec)
        }
    }
}

/// Prints the live model (its snapshot with the users and items folded in since) as a layer summary a
/// Keras user would recognize.
func printModelSummary(_ rec: Recommender) {
    let info: SnapshotInfo, model: FactorModel
    do {
        let state = try rec.liveState()
        (info, model) = (state.snapshot, state.model)
    } catch MFRecError.noModel {
        print("model        none yet (run `mfrec train`)")
        return
    } catch {
        // A live snapshot that cannot be read is not "no model": say what is wrong.
        print("model        cannot be read: \(error)")
        return
    }
    print("\nlive model: snapshot \(info.id) (\(info.kind), \(info.createdAt))")
    var rows: [[String]] = [
        [
            "user_embedding", "(\(grouped(model.userCount)), \(model.factors))",
            grouped(model.userCount * model.factors),
        ],
        [
            "item_embedding", "(\(grouped(model.itemCount)), \(model.factors))",
            grouped(model.itemCount * model.factors),
        ],
    ]
    if model.useBias {
        rows.append(["user_bias", "(\(grouped(model.userCount)),)", grouped(model.userCount)])
        rows.append(["item_bias", "(\(grouped(model.itemCount)),)", grouped(model.itemCount)])
        rows.append(["global_mean", "()", "1"])
    }
    rows.append(["dot + biases", model.useBias ? "μ + b_u + b_i + p_u·q_i" : "p_u·q_i", "0"])
    print(table(["layer", "output shape", "params"], rows, rightAligned: [2]))
    print("total params: \(grouped(model.parameterCount))")
    if let o = info.options {
        print(
            "hyperparameters: k=\(o.factors), epochs=\(o.epochs), learning rate=\(o.learningRate) "
                + "(×\(o.learningRateDecay)/epoch), "
                + "regularization=\(o.regularization), bias regularization=\(o.biasRegularization), seed=\(o.seed)"
                + (o.nonnegative ? ", non-negative" : "") + (o.useBias ? "" : ", no bias"))
        if let precision = o.itemPrecision, precision != .f32 {
            print(
                "item matrix scan copy: \(precision.rawValue) (scans read it and re-score their candidates from the "
                    + "f32 rows)")
        }
    }
    if let test = info.metrics?.test {
        print(
            String(
                format: "test: RMSE %.4f, MAE %.4f, MSE %.4f on %@ ratings", test.rmse, test.mae, test.mse,
                grouped(test.count)))
    }
    if let (ranking, choice) = try? rec.loadRankingModel(snapshot: info.id) {
        print(
            "ranking model (answers recommend): item vectors (\(grouped(ranking.itemCount)), \(ranking.factors)); "
                + "user vectors from their ratings"
        )
        print(describe(choice))
    } else {
        print("ranking model: none in this snapshot (recommend ranks by the rating model; `mfrec train` fits one)")
    }
    if let shape = try? rec.info().cooccurrence {
        print(
            "co-occurrence embedding: (\(grouped(shape.itemCount)), \(shape.factors)), exponent \(shape.exponent), "
                + "fitted \(shape.createdAt)"
        )
    }
    if let live = try? rec.liveModel(), live.dirty {
        print(
            "incremental updates: \(plural(live.updates, "rating")) since snapshot \(info.id), not yet in a "
                + "snapshot (`mfrec snapshot create`)"
        )
    }
}
