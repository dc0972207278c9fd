import ArgumentParser
import Foundation
import MFRec

extension Mfrec.Snapshot {
    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Freeze the live model (with its incremental updates) as a new snapshot.")
        @OptionGroup var database: DatabaseOptions
        @Option(help: "A note to store with it.") var note: String?

        func run() throws {
            let rec = try database.write()
            let before = try rec.liveModel().snapshotID
            let id = try rec.createSnapshot(note: note)
            if id == before {
                print("nothing changed since snapshot \(id) (live): no snapshot made")
            } else {
                print("saved snapshot \(id) (live)")
            }
        }
    }
}
