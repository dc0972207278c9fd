import ArgumentParser
import Foundation
import MFRec

extension Mfrec {
    struct Export: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Write the embedding matrices (and biases) as CSV or NumPy .npy files, or the stored ratings for Spark.",
            discussion: """
                mfrec export -o FOLDER [--format csv|npy] writes the models' embeddings into FOLDER.
                mfrec export --ratings FILE [--format csv|jsonl] [--gzip] streams every stored rating (original \
                user and item ids, rating, timestamp) into FILE (- for standard output), ready for spark.read; \
                a FILE ending in .gz is compressed, one ending in .jsonl or .json (before .gz) is JSON Lines.
                """)
        @OptionGroup var database: DatabaseOptions
        @Option(help: "Export this snapshot instead of the live model (1…9223372036854775807; a snapshot id).")
        var snapshot: Int?
        @Option(
            help:
                "csv or npy for embeddings (default csv); csv or jsonl for --ratings (default: jsonl for a .jsonl or .json name, else csv)."
        )
        var format: String?
        @Option(name: .shortAndLong, help: "The folder to write the embeddings into.") var output: String?
        @Option(help: "Write the stored ratings to this file instead of the embeddings (- for standard output).")
        var ratings: String?
        @Flag(help: "Compress the --ratings file with gzip (the default when it ends in .gz).") var gzip = false

        func validate() throws {
            try require(snapshot, in: 1...Int.max, "--snapshot")
            switch (output, ratings) {
            case (nil, nil): throw ValidationError("give -o FOLDER (embeddings) or --ratings FILE (ratings)")
            case (.some, .some): throw ValidationError("-o and --ratings cannot be combined: one export at a time")
            case (.some(let output), nil):
                guard output != "-" else {
                    throw ValidationError("--output is a folder (export writes several files); - is not allowed")
                }
                guard format.map({ ExportFormat(rawValue: $0) != nil }) ?? true else {
                    throw ValidationError("--format for embeddings is csv or npy, not \(format ?? "")")
                }
                guard !gzip else { throw ValidationError("--gzip applies to --ratings only") }
            case (nil, .some):
                guard format.map({ RatingsExportFormat(rawValue: $0) != nil }) ?? true else {
                    throw ValidationError("--format for --ratings is csv or jsonl, not \(format ?? "")")
                }
                guard snapshot == nil else {
                    throw ValidationError("--snapshot applies to embeddings; --ratings writes the stored ratings")
                }
            }
        }

        func run() throws {
            if let ratings {
                let stem = ratings.hasSuffix(".gz") ? String(ratings.dropLast(3)) : ratings
                let byName: RatingsExportFormat = stem.hasSuffix(".jsonl") || stem.hasSuffix(".json") ? .jsonl : .csv
                let report = try database.read().exportRatings(
                    to: ratings, format: format.flatMap(RatingsExportFormat.init) ?? byName, gzip: gzip ? true : nil)
                let target = ratings == "-" ? "standard output" : ratings
                // The count goes to stderr when the ratings themselves go to standard output.
                let line = "wrote \(report.ratings) ratings to \(target)" + (report.gzip ? " (gzip)" : "")
                if ratings == "-" { FileHandle.standardError.write(Data((line + "\n").utf8)) } else { print(line) }
                return
            }
            let paths = try database.read().export(
                snapshot: snapshot, format: format.flatMap(ExportFormat.init) ?? .csv, to: output ?? "")
            for path in paths { print("wrote \(path)") }
        }
    }
}
