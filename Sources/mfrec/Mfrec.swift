import ArgumentParser
import Foundation
import MFRec

@main
struct Mfrec: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mfrec",
        abstract: "Recommend items by matrix factorization, from one embedded SQLite file.",
        discussion: "Every command takes --db PATH (default: $MFREC_DB, or mfrec.db in the current folder).",
        version: "0.1.0",
        subcommands: [
            Demo.self, Ingest.self, Train.self, Eval.self, Recommend.self, Predict.self, Similar.self, Rate.self,
            Snapshot.self, Rollback.self, Export.self, Info.self, Generate.self,
        ]
    )
}

/// Options every command shares.
struct DatabaseOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The database file.", valueName: "path"))
    var db: String = ProcessInfo.processInfo.environment["MFREC_DB"] ?? "mfrec.db"
}
