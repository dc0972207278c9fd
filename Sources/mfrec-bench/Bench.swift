import ArgumentParser
import Foundation

@main
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mfrec-bench",
        abstract: "Measure mfrec's ingest, training and query speed next to baselines from the same run.",
        discussion: "Build in release: swift run -c release mfrec-bench <ingest|train|query>. Machines are noisy: read the ratios.",
        subcommands: [IngestBench.self, TrainBench.self, QueryBench.self, IncrementalBench.self, SnapshotBench.self])
}

struct Scale: ParsableArguments {
    @Option(help: "Folder for generated files and databases (default: a temp folder, removed afterwards).")
    var folder: String?
    @Flag(help: "Keep the folder.") var keep = false
}
