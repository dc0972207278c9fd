import ArgumentParser
import Foundation
import MFRec

extension Mfrec {
    struct Info: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show what the database holds.")

        @OptionGroup var database: DatabaseOptions

        func run() throws {
            let rec = try Recommender(path: database.db)
            let info = try rec.info()
            var rows: [(String, String)] = [
                ("database", info.path),
                ("users", grouped(info.users)),
                ("items", grouped(info.items) + (info.itemsWithTitles > 0 ? " (\(grouped(info.itemsWithTitles)) with titles)" : "")),
                ("ratings", grouped(info.ratings)),
            ]
            if let scale = info.scale { rows.append(("scale", "\(compact(scale.lowerBound))–\(compact(scale.upperBound))")) }
            if let mean = info.meanRating { rows.append(("mean rating", String(format: "%.5f", mean))) }
            rows.append(("density", String(format: "%.4f%%", info.density * 100)))
            rows.append(("snapshots", grouped(info.snapshots)))
            let width = rows.map(\.0.count).max() ?? 0
            for (key, value) in rows { print(key.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + value) }
            printModelSummary(rec)
        }
    }
}

/// Prints the live model's summary (filled in by the training commands).
func printModelSummary(_ rec: Recommender) {
    let live = (try? rec.store.liveModel())
    if live?.snapshotID == nil { print("model        none yet (run `mfrec train`)") }
}
