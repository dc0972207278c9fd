import ArgumentParser
import Foundation
import MFRec

extension Mfrec {
    struct Rate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Store a rating and update the live model incrementally (no retraining).",
            discussion: """
                Re-rating replaces the old value. A user or item the model has never seen is folded in from \
                its stored ratings. The rating and the model change are durable when the command returns; \
                `mfrec recommend` reflects them at once.
                """)
        @OptionGroup var database: DatabaseOptions
        @Argument(help: "The user's id.") var user: String
        @Argument(help: "The item's id.") var item: String
        @Argument(help: "The rating.") var rating: Double
        @Option(help: "Unix time of the rating (0…9223372036854775807).") var timestamp: Int64?
        @Option(help: "SGD steps for this rating (0…100).") var steps = UpdateOptions().steps

        func validate() throws {
            try require(timestamp, in: 0...Int64.max, "--timestamp")
            try require(steps, in: 0...100, "--steps")
        }

        func run() throws {
            let rec = try database.write()
            let report = try rec.rate(
                user: user, item: item, rating: rating, timestamp: timestamp, options: UpdateOptions(steps: steps))
            print(updateSummary(report))
        }
    }
}
