import ArgumentParser
import Foundation
import MFRec

extension Mfrec {
    struct Demo: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run the whole job end to end on a generated data set in a temporary folder.")

        @Option(help: "Keep the demo's files in this folder instead of a temporary one.")
        var folder: String?

        func run() throws {
            let dir = folder ?? (NSTemporaryDirectory() as NSString).appendingPathComponent("mfrec-demo-\(getpid())")
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            defer { if folder == nil { try? FileManager.default.removeItem(atPath: dir) } }
            let data = (dir as NSString).appendingPathComponent("ratings.csv")
            let db = (dir as NSString).appendingPathComponent("demo.db")

            step("mfrec generate --users 1000 --items 1700 --ratings 100000 --output \(data)")
            let generated = try SyntheticRatings(users: 1000, items: 1700, ratings: 100_000, seed: 42).write(to: data)
            print("wrote \(plural(generated.ratings, "rating")) in \(duration(generated.seconds))")

            try run(Ingest.self, [data, "--db", db], shown: "mfrec ingest \(data) --db \(db)")
            try run(Info.self, ["--db", db])
            try run(Train.self, ["--db", db])
            try run(Recommend.self, ["1", "-n", "5", "--explain", "--db", db])
            try run(Similar.self, ["1", "-n", "5", "--db", db])
            try run(
                Eval.self, ["--compare", "--db", db],
                comment: "the three rankings recommend can answer with, on the same users")
            try run(
                Rate.self, ["1", "7", "5", "--db", db], comment: "a new rating moves the live model, no retraining")
            try run(
                Rate.self, ["newcomer", "7", "5", "--db", db], comment: "a user the model has never seen is folded in")
            try run(Rate.self, ["newcomer", "30", "4", "--db", db])
            try run(
                Recommend.self, ["newcomer", "-n", "3", "--explain", "--db", db],
                comment: "three ratings: ranked by the light-user rule chosen at training (`mfrec info`)")
            try run(Snapshot.Create.self, ["--note", "with 3 new ratings", "--db", db])
            try run(Rollback.self, ["1", "--db", db])
            try run(Snapshot.List.self, ["--db", db])
            if folder == nil {
                print("\n(the demo's files were in \(dir) and are removed; keep them with --folder DIR)")
            }
        }

        private func step(_ command: String) {
            print("\n$ \(command)")
        }

        /// Prints the command line as a user would type it, then runs it in this process.
        private func run<C: ParsableCommand>(
            _ type: C.Type, _ arguments: [String], shown: String? = nil, comment: String? = nil
        ) throws {
            let name =
                type._commandName == "create" || type._commandName == "list"
                ? "snapshot \(type._commandName)" : type._commandName
            let line =
                shown
                ?? (["mfrec", name] + arguments.map { $0.contains(" ") ? "\"\($0)\"" : $0 }).joined(separator: " ")
            step(line + (comment.map { "        # \($0)" } ?? ""))
            var command = try type.parse(arguments)
            try command.run()
        }
    }
}
