import ArgumentParser
import Foundation
import MFRec

enum OutputFormat: String, ExpressibleByArgument, CaseIterable { case table, json, csv }
extension ColdStartPolicy: ExpressibleByArgument {}

extension Mfrec {
    struct Recommend: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the top-n items for a user, or for every user with --all.",
            discussion: """
                USER is the id as it appears in the ratings file. Items the user rated are left out unless \
                --include-rated. A user with fewer than --cooccurrence-below ratings (default 20), or with \
                ratings but no vector in the model, is ranked by how often items are rated together with the \
                items they rated (the co-occurrence embedding of the last training): a rating model ranks \
                obscure, highly rated items first for them. A user without ratings gets the most popular \
                well-rated items (--cold popular, the default) or an error (--cold error). The predicted \
                rating shown is always the rating model's.
                """)

        @OptionGroup var database: DatabaseOptions
        @Argument(help: "The user's id.") var user: String?
        @Option(name: .short, help: "How many items.") var n = 10
        @Option(help: "Output format: table, json or csv.") var format: OutputFormat = .table
        @Flag(help: "Also rank items the user already rated.") var includeRated = false
        @Option(help: "For a user without a model vector: popular or error.") var cold: ColdStartPolicy = .popular
        @Flag(help: "Show, for each item, the user's own highly rated items closest to it.") var explain = false
        @Option(help: "Treat users with fewer ratings than this as cold (see --cold).") var minRatings = 0
        @Option(help: "Rank users with fewer ratings than this by co-occurrence with the items they rated (0: never; users without a vector are then cold).")
        var cooccurrenceBelow = QueryEngine.defaultCooccurrenceBelow
        @Flag(help: "Recommend for every user (needs --output).") var all = false
        @Option(help: "With --all: the CSV file to write.") var output: String?
        @Option(help: "Threads for --all.") var threads = ProcessInfo.processInfo.activeProcessorCount

        func validate() throws {
            guard n >= 1 else { throw ValidationError("-n must be at least 1") }
            guard minRatings >= 0, cooccurrenceBelow >= 0 else { throw ValidationError("--min-ratings and --cooccurrence-below must not be negative") }
            if all {
                guard output != nil else { throw ValidationError("--all needs --output FILE.csv") }
                guard user == nil else { throw ValidationError("give either USER or --all, not both") }
            } else if user == nil {
                throw ValidationError("give a USER id, or --all --output FILE.csv")
            }
        }

        func run() throws {
            let engine = try Recommender(path: database.db).queries()
            if all, let output {
                let count = try engine.recommendAll(n: n, to: output, threads: threads, cooccurrenceBelow: cooccurrenceBelow, progress: Console.progressBar("recommend", unit: .count))
                print("wrote the top \(n) of \(grouped(count)) users to \(output)")
                return
            }
            let list = try engine.recommend(user: user!, n: n, includeRated: includeRated, cold: cold, explain: explain,
                                            minRatings: minRatings, cooccurrenceBelow: cooccurrenceBelow)
            if list.ranking == .cooccurrence {
                Console.note("user \(user!) has fewer than \(cooccurrenceBelow) ratings or no vector in the live model; "
                             + "ranked by co-occurrence with the items they rated")
            }
            if list.coldStart {
                Console.note("user \(user!) has no ratings to rank by" + (minRatings > 0 ? " or fewer than \(minRatings)" : "")
                             + "; showing the most popular well-rated items instead")
            }
            switch format {
            case .json:
                try printJSON(list)
            case .csv:
                print("rank,item,title,predicted_rating")
                for r in list.items {
                    print("\(r.rank),\(csvField(r.item)),\(csvField(r.title ?? "")),\(String(format: "%.4f", r.predictedRating))")
                }
            case .table:
                let rows = list.items.map { [String($0.rank), $0.item, $0.title ?? "", String(format: "%.2f", $0.predictedRating)] }
                print(table(["rank", "item", "title", "predicted"], rows, rightAligned: [0, 3]))
                if explain {
                    for r in list.items where !(r.because ?? []).isEmpty {
                        let reasons = r.because!.map { "\($0.title ?? $0.item) (\(compact($0.rating)), similarity \(String(format: "%.2f", $0.similarity)))" }
                        let kind = list.ranking == .cooccurrence ? "often rated with your" : "because you rated"
                        print("\n\(r.rank). \(r.title ?? r.item)\n   \(kind) " + reasons.joined(separator: "; "))
                    }
                }
            }
        }
    }

    struct Predict: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the predicted rating of a user for an item.")
        @OptionGroup var database: DatabaseOptions
        @Argument(help: "The user's id.") var user: String
        @Argument(help: "The item's id.") var item: String

        func run() throws {
            let engine = try Recommender(path: database.db).queries()
            let (rating, fallback) = try engine.predict(user: user, item: item)
            print(String(format: "%.4f", rating))
            if fallback { Console.note("the model has no vector for this user or item: predicted by the fallback μ + known bias") }
        }
    }

    struct Similar: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the items nearest to an item by cosine similarity of their vectors.")
        @OptionGroup var database: DatabaseOptions
        @Argument(help: "The item's id.") var item: String
        @Option(name: .short, help: "How many items.") var n = 10
        @Option(help: "Output format: table, json or csv.") var format: OutputFormat = .table

        func run() throws {
            let engine = try Recommender(path: database.db).queries()
            let items = try engine.similar(item: item, n: n)
            switch format {
            case .json:
                try printJSON(items)
            case .csv:
                print("rank,item,title,similarity")
                for s in items { print("\(s.rank),\(csvField(s.item)),\(csvField(s.title ?? "")),\(String(format: "%.4f", s.similarity))") }
            case .table:
                print(table(["rank", "item", "title", "cosine"], items.map { [String($0.rank), $0.item, $0.title ?? "", String(format: "%.3f", $0.similarity)] },
                            rightAligned: [0, 3]))
            }
        }
    }
}

