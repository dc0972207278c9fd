import ArgumentParser
import Foundation
import MFRec

extension Mfrec {
    struct Generate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a MovieLens-shaped synthetic ratings file.",
            discussion: """
                Skewed item popularity and user activity, no repeated (user, item) pair, ratings 1–5 from a \
                low-rank model with biases and noise. The output name picks the layout: .csv gives a CSV with a \
                header, anything else tab-separated u.data; .gz compresses it.
                """)

        @Option(help: "Number of users (1…100000000).") var users = 6040
        @Option(help: "Number of items (1…10000000).") var items = 3706
        @Option(help: "Number of ratings (1…10000000000).") var ratings = 1_000_000
        @Option(help: "Random seed (0…18446744073709551615).") var seed: UInt64 = 42
        @Option(name: .shortAndLong, help: "The file to write (- for standard output; .gz compresses).") var output:
            String

        func validate() throws {
            try require(users, in: 1...100_000_000, "--users")
            try require(items, in: 1...10_000_000, "--items")
            try require(ratings, in: 1...10_000_000_000, "--ratings")
        }

        func run() throws {
            if output == "-" { OutputFile.reserveStandardOutput() }
            let spec = SyntheticRatings(users: users, items: items, ratings: ratings, seed: seed)
            let report = try spec.write(to: output, progress: Console.progressBar("generate", unit: .count))
            print(
                "wrote \(plural(report.ratings, "rating")) (\(plural(users, "user")), \(plural(items, "item"))) to "
                    + "\(output) in \(duration(report.seconds))"
            )
        }
    }
}
