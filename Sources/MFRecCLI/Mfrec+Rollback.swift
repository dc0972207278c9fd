import ArgumentParser
import Foundation
import MFRec

extension Mfrec {
    struct Rollback: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Make an earlier snapshot the live model (unsaved incremental updates are saved as a snapshot first).")
        @OptionGroup var database: DatabaseOptions
        @Argument(help: "The snapshot id.") var id: Int

        func run() throws {
            let report = try database.write().rollback(to: id)
            if let saved = report.savedUpdatesAs {
                print("saved the live model's unsaved incremental updates as snapshot \(saved)")
            }
            print("snapshot \(report.snapshotID) is live (\(duration(report.seconds)))")
        }
    }
}
