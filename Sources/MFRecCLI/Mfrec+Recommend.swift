import ArgumentParser
import Foundation
import MFRec

enum OutputFormat: String, ExpressibleByArgument, CaseIterable { case table, json, csv }
extension ColdStartPolicy: ExpressibleByArgument {}
extension Ranker: ExpressibleByArgument {}

extension Mfrec {
    struct Recommend: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the top-n items for a user, or for every user with --all.",
            discussion: """
                USER is the id as it appears in the ratings file. Items the user rated are left out unless \
                --include-rated. By default the ranking model of the live snapshot answers (a factor model \
                fitted for top-n lists, its settings chosen on validation data at training time); for users \
                with few ratings, validation may have chosen the co-occurrence embedding or the popular list \
                instead (`mfrec info` shows the rule). --by picks one ranker: ranking, rating (the rating \
                model's largest predicted ratings), cooccurrence or popular. A snapshot without a ranking \
                model ranks users with fewer than --cooccurrence-below ratings by co-occurrence and the rest \
                by the rating model. A user without ratings gets the most popular well-rated items (--cold \
                popular, the default) or an error (--cold error). The predicted rating shown is always the \
                rating model's. --ratings "50:5,181:4" recommends for an anonymous session instead of a stored \
                user: the ratings are folded in as `rate` would fold in a new user, and nothing is written.
                """)

        @OptionGroup var database: DatabaseOptions
        @Argument(help: "The user's id.") var user: String?
        @Option(name: .short, help: "How many items (1…100000).") var n = 10
        @Option(help: "Output format: table, json or csv.") var format: OutputFormat = .table
        @Flag(help: "Also rank items the user already rated.") var includeRated = false
        @Option(help: "For a user without a model vector: popular or error.") var cold: ColdStartPolicy = .popular
        @Flag(help: "Show, for each item, the user's own highly rated items closest to it.") var explain = false
        @Option(help: "Treat users with fewer ratings than this as cold (0…1000000; see --cold).") var minRatings = 0
        @Option(
            help: ArgumentHelp(
                "Rank users with fewer ratings than this by co-occurrence with the items they rated (0…1000000; 0: never; "
                    + "users without a vector are then cold).")
        )
        var cooccurrenceBelow = QueryEngine.defaultCooccurrenceBelow
        @Option(
            help: "The ranker: ranking, rating, cooccurrence or popular (default: what validation chose for this user)."
        )
        var by: Ranker?
        @Flag(help: "Recommend for every user (needs --output).") var all = false
        @Option(
            help: ArgumentHelp(
                "Recommend for an anonymous session with these ratings instead of a stored USER: ITEM:RATING pairs, "
                    + "comma-separated or a file of them (one per line); nothing is written.",
                valueName: "pairs"))
        var ratings: String?
        @Option(help: "With --all: the CSV file to write (- for standard output).") var output: String?
        @Option(help: "Threads for --all (1…256).") var threads = ProcessInfo.processInfo.activeProcessorCount
        @Option(
            help: "Items that may not appear: a file of ids (one per line or comma-separated) or ids,comma,separated.")
        var exclude: String?
        @Option(help: "The only items that may appear (the candidate set): a file of ids or ids,comma,separated.")
        var only: String?
        @Option(help: "Only items of this genre (from the item file; any case).") var genre: String?
        @Option(help: "Only items with at least this many stored ratings (0…1000000000; 0: any).")
        var minItemRatings = 0

        func validate() throws {
            try require(n, in: 1...100_000, "-n")
            try require(threads, in: 1...256, "--threads")
            try require(minRatings, in: 0...1_000_000, "--min-ratings")
            try require(cooccurrenceBelow, in: 0...1_000_000, "--cooccurrence-below")
            try require(minItemRatings, in: 0...1_000_000_000, "--min-item-ratings")
            if let genre, genre.isEmpty { throw ValidationError("--genre is empty") }
            if all && (exclude != nil || only != nil || genre != nil || minItemRatings > 0) {
                throw ValidationError(
                    "--exclude, --only, --genre and --min-item-ratings apply to one user's list, not --all")
            }
            if let ratings {
                guard user == nil, !all else { throw ValidationError("give either USER, --all or --ratings, not two") }
                if !Self.namesFile(ratings) { _ = try Self.sessionRatings(ratings) }
            } else if all {
                guard output != nil else { throw ValidationError("--all needs --output FILE.csv") }
                guard user == nil else { throw ValidationError("give either USER or --all, not both") }
            } else if user == nil {
                throw ValidationError("give a USER id, --ratings ITEM:RATING,..., or --all --output FILE.csv")
            }
        }

        func run() throws {
            if all && output == "-" { OutputFile.reserveStandardOutput() }
            let engine = try database.read().queries()
            if all, let output {
                let count = try engine.recommendAll(
                    n: n, to: output, threads: threads, cooccurrenceBelow: cooccurrenceBelow, by: by,
                    progress: Console.progressBar("recommend", unit: .count))
                print("wrote the top \(n) of \(plural(count, "user")) to \(output)")
                return
            }
            let filter = ItemFilter(
                excluded: Set(try exclude.map { try Self.ids($0, "--exclude") } ?? []),
                only: try only.map { Set(try Self.ids($0, "--only")) }, genre: genre, minRatings: minItemRatings)
            let list: RecommendationList
            if let ratings {
                let session = try engine.recommend(
                    ratings: try Self.sessionRatings(ratings), n: n, includeRated: includeRated, explain: explain,
                    by: by, filter: filter)
                list = session.list
                if session.ignored > 0 {
                    Console.note("left out \(plural(session.ignored, "rating")) of items the database does not know")
                }
            } else {
                list = try engine.recommend(
                    user: user!, n: n, includeRated: includeRated, cold: cold, explain: explain,
                    minRatings: minRatings, cooccurrenceBelow: cooccurrenceBelow, by: by, filter: filter)
            }
            let who = ratings != nil ? "this session" : "user \(list.user)"
            if list.ranking == .cooccurrence && by == nil {
                Console.note(
                    "\(who) has few ratings: ranked by co-occurrence with the items they rated "
                        + "(the light-user rule chosen at training; `mfrec info` shows it)")
            }
            if list.coldStart {
                Console.note(
                    "\(who) has no ratings to rank by" + (minRatings > 0 ? " or fewer than \(minRatings)" : "")
                        + "; showing the most popular well-rated items instead")
            }
            switch format {
            case .json:
                try printJSON(list)
            case .csv:
                print("rank,item,title,predicted_rating")
                for r in list.items {
                    print(
                        "\(r.rank),\(csvField(r.item)),\(csvField(r.title ?? "")),\(String(format: "%.4f", r.predictedRating))"
                    )
                }
            case .table:
                let rows = list.items.map {
                    [String($0.rank), $0.item, $0.title ?? "", String(format: "%.2f", $0.predictedRating)]
                }
                print(table(["rank", "item", "title", "predicted rating"], rows, rightAligned: [0, 3]))
                if explain {
                    for r in list.items where !(r.because ?? []).isEmpty {
                        let reasons = r.because!.map {
                            "\($0.title ?? $0.item) (\(compact($0.rating)), similarity "
                                + "\(String(format: "%.2f", $0.similarity)))"
                        }
                        let kind = list.ranking == .rating ? "because you rated" : "often rated with your"
                        print("\n\(r.rank). \(r.title ?? r.item)\n   \(kind) " + reasons.joined(separator: "; "))
                    }
                }
            }
        }

        static func namesFile(_ value: String) -> Bool {
            var isFolder: ObjCBool = false
            return FileManager.default.fileExists(atPath: value, isDirectory: &isFolder) && !isFolder.boolValue
        }

        /// `--ratings`: ITEM:RATING pairs (split at the last colon), inline or from a file. A malformed pair is a
        /// usage error naming it (with the file and line when it came from a file).
        static func sessionRatings(_ value: String) throws -> [(item: String, rating: Double)] {
            let fromFile = namesFile(value)
            var out: [(item: String, rating: Double)] = []
            for (n, entry) in try ids(value, "--ratings").enumerated() {
                let place = fromFile ? "\(value), entry \(n + 1)" : "pair \(n + 1)"
                guard let colon = entry.lastIndex(of: ":"), colon != entry.startIndex else {
                    throw ValidationError("--ratings: \(place) (\(entry)) is not ITEM:RATING")
                }
                let item = entry[..<colon].trimmingCharacters(in: .whitespaces)
                guard let rating = Double(entry[entry.index(after: colon)...].trimmingCharacters(in: .whitespaces)),
                    rating.isFinite
                else {
                    throw ValidationError("--ratings: \(place) (\(entry)): field rating is not a number")
                }
                out.append((item, rating))
            }
            guard !out.isEmpty else { throw ValidationError("--ratings: no ITEM:RATING pairs") }
            return out
        }

        /// Item ids from an option: the lines (or comma-separated fields) of a file when the value names one,
        /// otherwise the value itself, split at commas.
        static func ids(_ value: String, _ option: String) throws -> [String] {
            var isFolder: ObjCBool = false
            let text: String
            if FileManager.default.fileExists(atPath: value, isDirectory: &isFolder), !isFolder.boolValue {
                do {
                    text = try String(contentsOfFile: value, encoding: .utf8)
                } catch {
                    throw MFRecError.input(file: value, reason: "\(option): cannot read it as UTF-8 text")
                }
            } else {
                text = value
            }
            return text.split(whereSeparator: { $0 == "," || $0 == "\n" || $0 == "\r" })
                .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }
    }

}
