import ArgumentParser
import Foundation
import MFRec

extension Mfrec {
    struct Migrate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Upgrade the database's schema to this mfrec's version (commands that only read never do).")
        @OptionGroup var database: DatabaseOptions

        func run() throws {
            let rec = try database.write()
            guard !rec.isReadOnly else { throw StoreError.readOnly(path: database.db) }
            print("\(database.db): schema version \(try rec.schemaVersion())")
        }
    }
}
