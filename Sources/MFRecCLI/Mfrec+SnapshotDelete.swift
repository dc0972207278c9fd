import ArgumentParser
import Foundation
import MFRec

extension Mfrec.Snapshot {
    struct Delete: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a snapshot (not the live one).")
        @OptionGroup var database: DatabaseOptions
        @Argument(help: "The snapshot id.") var id: Int

        func run() throws {
            try database.write().deleteSnapshot(id)
            print("deleted snapshot \(id)")
        }
    }
}
