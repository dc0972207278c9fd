import ArgumentParser
import Foundation
import MFRec

extension RatingsFormat: ExpressibleByArgument {}
extension ItemsFormat: ExpressibleByArgument {}

extension Mfrec {
    struct Ingest: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Store a ratings file (u.data, ratings.dat, CSV; optionally gzip-compressed) in the database.",
            discussion: """
                The whole file goes in as one transaction: on the first bad line mfrec stops with FILE:LINE and \
                the reason, and the database stays exactly as it was (unless --skip-invalid).
                """)

        @OptionGroup var database: DatabaseOptions

        @Argument(help: "The ratings file.")
        var file: String

        @Option(help: "An item file with titles and genres (u.item, movies.dat, movies.csv).")
        var items: String?

        @Option(help: "The ratings layout: udata, dat or csv (default: detected).")
        var format: RatingsFormat?

        @Option(help: "The item file layout: uitem, dat or csv (default: detected).")
        var itemsFormat: ItemsFormat?

        @Option(
            help: ArgumentHelp(
                "The rating scale, fixed by the first ingest (default: the smallest of 0:1, 1:5, 0.5:5, 1:10 "
                    + "holding every rating); every later write refuses ratings outside it.", valueName: "min:max"))
        var scale: String?

        @Flag(help: "Store the valid lines, skip the invalid ones and report them.")
        var skipInvalid = false

        @Flag(help: "Also update the live model incrementally with the new ratings (no retraining).")
        var update = false

        @Option(help: "With --update: SGD steps per rating (0…100).")
        var steps = UpdateOptions().steps

        func validate() throws {
            try require(steps, in: 0...100, "--steps")
            if let scale, parseScale(scale) == nil {
                throw ValidationError("--scale must be MIN:MAX with MIN < MAX, like 1:5 or 0.5:5")
            }
        }

        func run() throws {
            // A failed first ingest leaves no database behind (an empty file it found stays empty).
            let isNew = !Store.databaseExists(at: database.db)
            let wasEmptyFile = FileManager.default.fileExists(atPath: database.db)
            // The connection that ingests is closed before a failure removes what it created.
            func ingestFile() throws -> IngestReport {
                let rec = try Recommender(path: database.db, mode: update ? .write : .create)
                let options = IngestOptions(
                    format: format, itemsPath: items, itemsFormat: itemsFormat,
                    scale: scale.flatMap(parseScale), skipInvalid: skipInvalid)
                guard update else {
                    return try rec.ingest(path: file, options: options, progress: Console.progressBar("ingest"))
                }
                let (ingested, updated) = try rec.ingestUpdating(
                    path: file, options: options, update: UpdateOptions(steps: steps),
                    progress: Console.progressBar("ingest"))
                print(updateSummary(updated))
                return ingested
            }
            let report: IngestReport
            do {
                report = try ingestFile()
            } catch {
                if isNew { Recommender.removeDatabaseFiles(at: database.db, keepingEmptyFile: wasEmptyFile) }
                throw error
            }
            let rec = try database.write()
            var line = "ingested \(plural(report.ratingsRead, "rating"))"
            // Counts and scale only: `rec.info()` would also average every rating (seconds on 25M).
            let catalog = try rec.catalog()
            line += ": \(plural(catalog.users, "user")), \(plural(catalog.items, "item"))"
            if let scale = catalog.scale { line += ", scale " + RatingScale.describe(scale) }
            line += ", \(duration(report.seconds))"
            print(line)
            var details: [String] = []
            if report.newUsers != catalog.users || report.newItems != catalog.items {
                details.append("\(plural(report.newUsers, "new user")), \(plural(report.newItems, "new item"))")
            }
            if report.newItemsWithoutRatings > 0 {
                details.append(
                    "\(plural(report.newItemsWithoutRatings, "item")) from the item file without ratings yet")
            }
            if report.ratingsReplaced > 0 {
                details.append("\(plural(report.ratingsReplaced, "earlier rating")) replaced")
            }
            if items != nil { details.append("\(grouped(report.itemsTitled)) item titles") }
            if !details.isEmpty { print(details.joined(separator: "; ")) }
            switch report.scaleSource {
            case .standard where report.observedScale != report.scale:
                Console.note(
                    "the rating scale is \(RatingScale.describe(report.scale!)): the smallest standard scale holding "
                        + "every rating (give --scale MIN:MAX on the first ingest to choose another)")
            case .data:
                Console.note(
                    "warning: no standard scale (1–5, 0.5–5, 1–10, 0–1) holds these ratings; the scale is their own "
                        + "range, \(RatingScale.describe(report.scale!)) (give --scale MIN:MAX to choose one)")
            default: break
            }
            if report.ratingsRead == 0 {
                Console.note("warning: \(file) holds no ratings; nothing was stored")
            }
            if report.skippedLines > 0 {
                print(
                    "skipped \(plural(report.skippedLines, "invalid line")); the first \(report.skippedReasons.count):")
                for reason in report.skippedReasons { print("  \(reason)") }
            }
        }
    }
}

func updateSummary(_ u: UpdateReport) -> String {
    var text =
        "updated the live model with \(plural(u.ratings, "rating")) in \(duration(u.seconds))"
    var folded: [String] = []
    // Folded in: users and items that had no vector (new ones, or ones whose ratings were all held out).
    if u.foldedUsers > 0 { folded.append(plural(u.foldedUsers, "user")) }
    if u.foldedItems > 0 { folded.append(plural(u.foldedItems, "item")) }
    if !folded.isEmpty { text += "; folded in " + folded.joined(separator: " and ") + " without a vector" }
    return text + " (not yet in a snapshot: `mfrec snapshot create` freezes it)"
}

func parseScale(_ text: String) -> ClosedRange<Double>? {
    let parts = text.split(separator: ":")
    guard parts.count == 2, let lo = Double(parts[0]), let hi = Double(parts[1]), lo.isFinite, hi.isFinite, lo < hi
    else { return nil }
    return lo...hi
}
