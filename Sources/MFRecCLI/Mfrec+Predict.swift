import ArgumentParser
import Foundation
import MFRec

extension Mfrec {
    struct Predict: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the predicted rating of a user for an item, or of every pair in a file.",
            discussion: """
                mfrec predict USER ITEM prints one prediction. mfrec predict --file PAIRS [--output FILE] \
                predicts every (user, item) pair of a file in any layout ingest reads, where a line may stop \
                after the item; it writes user,item,prediction lines (standard output by default) and, when the \
                lines carry ratings, reports RMSE and MAE. Pairs the model cannot predict get the fallback \
                (μ plus the known side's bias) and are counted.
                """)
        @OptionGroup var database: DatabaseOptions
        @Argument(help: "The user's id.") var user: String?
        @Argument(help: "The item's id.") var item: String?
        @Option(help: "text (4 decimals) or json (the full value, and whether the fallback answered).")
        var format: PredictFormat = .text
        @Option(help: "A file of (user, item[, rating]) pairs to predict (u.data, ratings.dat or CSV; gzip too).")
        var file: String?
        @Option(
            help: "With --file: where to write the predictions (- for standard output, the default; .gz compresses).")
        var output: String?

        enum PredictFormat: String, ExpressibleByArgument, CaseIterable { case text, json }

        struct Answer: Encodable {
            var user: String
            var item: String
            var prediction: Double
            var fallback: Bool
        }

        func validate() throws {
            if file != nil {
                guard user == nil && item == nil else {
                    throw ValidationError("give USER ITEM or --file PAIRS, not both")
                }
                guard format == .text else { throw ValidationError("--format applies to one prediction, not --file") }
            } else {
                guard user != nil && item != nil else { throw ValidationError("give USER ITEM, or --file PAIRS") }
                guard output == nil else { throw ValidationError("--output needs --file") }
            }
        }

        func run() throws {
            let engine = try database.read().queries()
            if let file {
                let target = output ?? "-"
                if target == "-" { OutputFile.reserveStandardOutput() }
                let r = try engine.predictFile(file, to: target)
                var line =
                    "predicted \(plural(r.pairs, "pair")) in \(duration(r.seconds))"
                    + " (\(grouped(Int(Double(r.pairs) / max(r.seconds, 1e-9)))) pairs/s)"
                if r.fallback > 0 {
                    line +=
                        "; \(grouped(r.fallback)) by the fallback (\(grouped(r.unknownUsers)) with an unknown user, "
                        + "\(grouped(r.unknownItems)) with an unknown item, the rest without a vector)"
                }
                if let rmse = r.rmse, let mae = r.mae {
                    line += String(format: "; RMSE %.4f, MAE %.4f over %@ rated pairs", rmse, mae, grouped(r.rated))
                }
                // The summary goes to stderr when the predictions go to standard output.
                if target == "-" { FileHandle.standardError.write(Data((line + "\n").utf8)) } else { print(line) }
                return
            }
            let (rating, fallback) = try engine.predict(user: user!, item: item!)
            if format == .json {
                try printJSON(Answer(user: user!, item: item!, prediction: Double(rating), fallback: fallback))
                return
            }
            print(String(format: "%.4f", rating))
            if fallback {
                Console.note("the model has no vector for this user or item: predicted by the fallback μ + known bias")
            }
        }
    }
}
