import ArgumentParser
import Foundation
import MFRec

extension Mfrec {
    struct Similar: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the items nearest to an item by cosine similarity of their vectors.",
            discussion:
                "--by rating (the default) uses the rating model's item vectors; --by ranking the ranking model's.")
        @OptionGroup var database: DatabaseOptions
        @Argument(help: "The item's id.") var item: String
        @Option(name: .short, help: "How many items (1…100000).") var n = 10
        @Option(help: "Output format: table, json or csv.") var format: OutputFormat = .table
        @Option(help: "Whose item vectors: rating or ranking.") var by: Ranker = .rating

        func validate() throws {
            try require(n, in: 1...100_000, "-n")
            guard by == .rating || by == .ranking else {
                throw ValidationError("--by must be rating or ranking for similar")
            }
        }

        func run() throws {
            let engine = try database.read().queries()
            let items = try engine.similar(item: item, n: n, by: by)
            if format == .table {
                Console.note(
                    by == .ranking
                        ? "by cosine of the ranking model's item vectors, weighted by its spectral filter"
                        : "by cosine of the rating model's item vectors")
            }
            switch format {
            case .json:
                try printJSON(items)
            case .csv:
                print("rank,item,title,similarity")
                for s in items {
                    print(
                        "\(s.rank),\(csvField(s.item)),\(csvField(s.title ?? "")),\(String(format: "%.4f", s.similarity))"
                    )
                }
            case .table:
                print(
                    table(
                        ["rank", "item", "title", "cosine"],
                        items.map {
                            [String($0.rank), $0.item, $0.title ?? "", String(format: "%.3f", $0.similarity)]
                        },
                        rightAligned: [0, 3]))
            }
        }
    }
}
