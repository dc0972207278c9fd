import ArgumentParser
import Foundation
import MFRec

extension Mfrec {
    struct Predict: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the predicted rating of a user for an item.")
        @OptionGroup var database: DatabaseOptions
        @Argument(help: "The user's id.") var user: String
        @Argument(help: "The item's id.") var item: String
        @Option(help: "text (4 decimals) or json (the full value, and whether the fallback answered).")
        var format: PredictFormat = .text

        enum PredictFormat: String, ExpressibleByArgument, CaseIterable { case text, json }

        struct Answer: Encodable {
            var user: String
            var item: String
            var prediction: Double
            var fallback: Bool
        }

        func run() throws {
            let engine = try database.read().queries()
            let (rating, fallback) = try engine.predict(user: user, item: item)
            if format == .json {
                try printJSON(Answer(user: user, item: item, prediction: Double(rating), fallback: fallback))
                return
            }
            print(String(format: "%.4f", rating))
            if fallback {
                Console.note("the model has no vector for this user or item: predicted by the fallback μ + known bias")
            }
        }
    }
}
