import ArgumentParser
import Foundation

@main
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mfrec-bench",
        abstract: "Measure mfrec's ingest, training and query speed next to baselines from the same run.",
        discussion:
            "Build in release: swift run -c release mfrec-bench <ingest|train|query>. Machines are noisy: read "
            + "the ratios.",
        subcommands: [
            IngestBench.self, TrainBench.self, QueryBench.self, IncrementalBench.self, SnapshotBench.self,
            RankingBench.self, ServeBench.self, LimitsBench.self, PredictBench.self, BatchBench.self, SparkBench.self,
        ])
}

struct Scale: ParsableArguments {
    @Option(help: "Folder for generated files and databases (default: a temp folder, removed afterwards).")
    var folder: String?
    @Flag(help: "Keep the folder.") var keep = false

    /// The folder to work in: --folder, or a new temp folder.
    func makeFolder() throws -> String {
        let dir = folder ?? (NSTemporaryDirectory() as NSString).appendingPathComponent("mfrec-bench-\(getpid())")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    /// Removes a temp folder made by `makeFolder` (never a --folder, nor with --keep).
    func removeFolder(_ dir: String) {
        if !keep && folder == nil { try? FileManager.default.removeItem(atPath: dir) }
    }
}
