import ArgumentParser
import Foundation
import MFRec

extension Mfrec.Snapshot {
    struct Diff: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Compare two snapshots.")
        @OptionGroup var database: DatabaseOptions
        @Argument(help: "The first snapshot.") var a: Int
        @Argument(help: "The second snapshot.") var b: Int
        @Option(help: "Users sampled for the top-10 overlap (0…1000000).") var users = 200

        func validate() throws {
            try require(users, in: 0...1_000_000, "--users")
        }

        func run() throws {
            let d = try database.read().diffSnapshots(a, b, sampleUsers: users)
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
}
