import ArgumentParser
import Foundation
import MFRec

extension Mfrec {
    struct Predict: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the predicted rating of a user for an item.")
        @OptionGroup var database: DatabaseOptions
        @Argument(help: "The user's id.") var user: String
        @Argument(help: "The item's id.") var item: String

        func run() throws {
            let engine = try database.read().queries()
            let (rating, fallback) = try engine.predict(user: user, item: item)
            print(String(format: "%.4f", rating))
            if fallback {
                Console.note("the model has no vector for this user or item: predicted by the fallback μ + known bias")
            }
        }
    }
}
