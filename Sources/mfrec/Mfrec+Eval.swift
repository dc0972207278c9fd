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

        func validate() throws {
            try require(snapshot, in: 1...Int.max, "--snapshot")
            try require(top, in: 1...10_000, "--top")
            try require(maxUsers, in: 1...10_000_000, "--max-users")
            try require(relevant, in: -1_000_000...1_000_000, "--relevant")
        }

        func run() throws {
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
    }

}
