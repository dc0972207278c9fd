import ArgumentParser
import Foundation
import MFRec

extension Mfrec {
    struct Export: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write the user and item embedding matrices (and biases) as CSV or NumPy .npy files.")
        @OptionGroup var database: DatabaseOptions
        @Option(help: "Export this snapshot instead of the live model (1…9223372036854775807; a snapshot id).")
        var snapshot: Int?
        @Option(help: "csv or npy.") var format: ExportFormat = .csv
        @Option(name: .shortAndLong, help: "The folder to write into.") var output: String

        func validate() throws {
            try require(snapshot, in: 1...Int.max, "--snapshot")
            guard output != "-" else {
                throw ValidationError("--output is a folder (export writes several files); - is not allowed")
            }
        }

        func run() throws {
            let paths = try database.read().export(snapshot: snapshot, format: format, to: output)
            for path in paths { print("wrote \(path)") }
        }
    }
}
