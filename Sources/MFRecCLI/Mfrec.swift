import ArgumentParser
import Foundation
import MFRec

/// The root command. `mfrec`'s `main.swift` calls ``main()``; the CLI fuzz target parses and runs commands in-process.
public struct Mfrec: ParsableCommand {
    /// The name, help text and subcommands.
    public static let configuration = CommandConfiguration(
        commandName: "mfrec",
        abstract: "Recommend items by matrix factorization, from one embedded SQLite file.",
        discussion: "Every command takes --db PATH (default: $MFREC_DB, or mfrec.db in the current folder).",
        version: "0.1.0",
        subcommands: [
            Demo.self, Ingest.self, Train.self, Eval.self, Recommend.self, Predict.self, Similar.self, Rate.self,
            Snapshot.self, Rollback.self, Export.self, Import.self, Info.self, Generate.self, Migrate.self, Serve.self,
            Forget.self, Delete.self,
        ]
    )

    /// The root command (ArgumentParser fills its subcommand in when it parses a command line).
    public init() {}

    /// Runs the command line of this process and exits with its status (0, 1 for a failure, 64 for a usage error).
    public static func main() {
        Signals.removeTempFilesOnExit()
        main(nil)
    }
}

/// Refuses an option value outside the range its help states (exit 64, naming the option and the range).
func require<T: Comparable>(_ value: T, in range: ClosedRange<T>, _ option: String) throws {
    guard range.contains(value) else {
        throw ValidationError("\(option) must be \(range.lowerBound)…\(range.upperBound) (got \(value))")
    }
}

/// The same for an optional value (nil: the default, always valid).
func require<T: Comparable>(_ value: T?, in range: ClosedRange<T>, _ option: String) throws {
    if let value { try require(value, in: range, option) }
}

/// Options every command shares.
struct DatabaseOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The database file.", valueName: "path"))
    var db: String = ProcessInfo.processInfo.environment["MFREC_DB"] ?? "mfrec.db"

    func validate() throws {
        guard !db.isEmpty else { throw ValidationError("--db must name a file (it is empty)") }
    }

    /// Opens the database for a command that only reads: it must exist, and nothing in it changes.
    func read() throws -> Recommender { try Recommender(path: db, mode: .read) }
    /// Opens the database for a command that writes: it must exist (`ingest` alone creates one).
    func write() throws -> Recommender { try Recommender(path: db, mode: .write) }
}
