import ArgumentParser
import Foundation
import MFRec

extension ExportFormat: ExpressibleByArgument {}

extension Mfrec {
    struct Eval: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Report error and ranking metrics of the live model (or a snapshot) on its test split or a test file.")
        @OptionGroup var database: DatabaseOptions
        @Option(help: "Evaluate this snapshot instead of the live model (1…9223372036854775807; a snapshot id).")
        var snapshot: Int?
        @Option(help: "Evaluate on this ratings file instead of the snapshot's test split.") var testFile: String?
        @Option(help: "Cut-off K of the ranking metrics (1…10000).") var top = 10
        @Option(help: "A test rating at least this high makes the item relevant (-1000000…1000000).") var relevant = 4.0
        @Option(help: "Rank at most this many test users, a seeded sample beyond (1…10000000).") var maxUsers = 5000
        @Flag(
            help: ArgumentHelp(
                "Also rank the same users by co-occurrence and by popularity (fitted on the training split) to "
                    + "compare. The default column ranks each user as `recommend` does; ranking is the ranking model alone, rating the rating model."
            )
        )
        var compare = false
        @Flag(help: "Print JSON.") var json = false
        @Option(
            help: ArgumentHelp(
                "K-fold cross-validation instead (2…20): train K models on the stored ratings with the live snapshot's "
                    + "settings, each scored on its held-out fold; nothing is stored."))
        var folds: Int?

        func validate() throws {
            try require(folds, in: 2...20, "--folds")
            if folds != nil && (snapshot != nil || testFile != nil || compare) {
                throw ValidationError("--folds trains its own models: it takes no --snapshot, --test-file or --compare")
            }
            try require(snapshot, in: 1...Int.max, "--snapshot")
            try require(top, in: 1...10_000, "--top")
            try require(maxUsers, in: 1...10_000_000, "--max-users")
            try require(relevant, in: -1_000_000...1_000_000, "--relevant")
        }

        func run() throws {
            if let folds {
                try crossValidate(folds)
                return
            }
            let report = try database.read().evaluate(
                snapshot: snapshot, testFile: testFile, top: top,
                relevantThreshold: relevant, maxUsers: maxUsers, compareRankings: compare)
            if json {
                try printJSON(report)
                return
            }
            let what =
                !report.live
                ? "snapshot \(report.snapshotID)"
                : "the live model (snapshot \(report.snapshotID)"
                    + (report.updatesSinceSnapshot > 0 ? " + \(plural(report.updatesSinceSnapshot, "update")))" : ")")
            print(
                "\(what) on \(report.testSource): \(plural(report.error.count, "rating"))"
                    + (report.unseenTestPairs > 0
                        ? " (\(grouped(report.unseenTestPairs)) with a user or item unseen in training)" : ""))
            if report.leftOutRatedAfterTraining > 0 {
                print(
                    "left out \(plural(report.leftOutRatedAfterTraining, "test rating")) written after training "
                        + "(the live model has seen them)")
            }
            print(
                String(
                    format: "MAE   %.4f\nMSE   %.4f\nRMSE  %.4f", report.error.mae, report.error.mse, report.error.rmse)
            )
            if let r = report.ranking {
                if let choice = report.rankingChoice { print("\n" + describe(choice)) }
                print(
                    "\nranking at K = \(r.k) over \(plural(r.users, "user")) (relevant: rating ≥ "
                        + "\(compact(report.relevantThreshold)); training items excluded)"
                )
                let rankings = [
                    ("default", report.defaultRanking), ("ranking", report.rankingModelRanking), ("rating", r),
                    ("co-occurrence", report.cooccurrenceRanking), ("popular", report.popularRanking),
                ]
                .compactMap { name, metrics in metrics.map { (name, $0) } }
                let rows = [
                    ("precision@\(r.k)", \RankingMetrics.precision), ("recall@\(r.k)", \.recall),
                    ("NDCG@\(r.k)", \.ndcg),
                    ("MAP@\(r.k)", \.map), ("hit rate", \.hitRate), ("coverage", \.coverage),
                ]
                if rankings.count == 1 {
                    for (name, path) in rows {
                        print(
                            name.padding(toLength: 14, withPad: " ", startingAt: 0)
                                + String(format: "%.4f", r[keyPath: path]))
                    }
                } else {
                    print(
                        table(
                            ["metric"] + rankings.map(\.0),
                            rows.map { name, path in
                                [name] + rankings.map { String(format: "%.4f", $0.1[keyPath: path]) }
                            },
                            rightAligned: Set(1...rankings.count)))
                }
            }
        }

        /// `--folds K`: the live snapshot's settings (or the defaults before the first `train`), K models.
        func crossValidate(_ folds: Int) throws {
            let rec = try database.read()
            var request = TrainRequest()
            if let live = try? rec.liveState() {
                if let options = live.snapshot.options { request.options = options }
                if let choice = live.ranking?.choice, choice.parameters.implicitALS == nil {
                    request.rankingParameters = choice.parameters
                    request.rankingRatingWeight = choice.ratingBlend
                } else if live.ranking == nil {
                    request.rankingModel = false
                }
            }
            let report = try rec.crossValidate(
                folds: folds, request: request, maxUsers: maxUsers,
                progress: { f, fold in
                    guard !json else { return }
                    var line = String(
                        format: "fold %d: RMSE %.4f, MAE %.4f on %@ held-out ratings", f + 1, fold.error.rmse,
                        fold.error.mae, grouped(fold.testRatings))
                    if let r = fold.ranking {
                        line += String(
                            format: "; P@10 %.4f, NDCG@10 %.4f over %@ users", r.precision, r.ndcg, grouped(r.users))
                    }
                    print(line)
                })
            if json {
                try printJSON(report)
                return
            }
            print(
                String(
                    format: "%d folds (seed %llu), %@: RMSE %.4f ± %.4f, MAE %.4f ± %.4f", folds, report.seed,
                    duration(report.seconds), report.rmse.mean, report.rmse.sd, report.mae.mean, report.mae.sd))
            if let p = report.precision, let n = report.ndcg {
                print(
                    String(format: "ranking model: P@10 %.4f ± %.4f, NDCG@10 %.4f ± %.4f", p.mean, p.sd, n.mean, n.sd))
            }
        }
    }

}
