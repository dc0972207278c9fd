import ArgumentParser
import Foundation
import MFRec

extension Mfrec.Snapshot {
    struct Prune: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Delete all snapshots but the K newest and the live one.")
        @OptionGroup var database: DatabaseOptions
        @Option(help: "How many of the newest to keep (0…1000000).") var keep: Int

        func validate() throws { try require(keep, in: 0...1_000_000, "--keep") }

        func run() throws {
            let deleted = try database.write().pruneSnapshots(keep: keep)
            print(
                deleted.isEmpty
                    ? "nothing to delete" : "deleted snapshots \(deleted.map(String.init).joined(separator: ", "))")
        }
    }
}
