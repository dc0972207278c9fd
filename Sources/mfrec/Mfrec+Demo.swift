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
            print("wrote \(grouped(generated.ratings)) ratings in \(duration(generated.seconds))")

            step("mfrec ingest \(data) --db \(db)")
            var ingest = try Ingest.parse([data, "--db", db])
            try ingest.run()

            step("mfrec info --db \(db)")
            var info = try Info.parse(["--db", db])
            try info.run()

            step("mfrec train --db \(db)")
            var train = try Train.parse(["--db", db])
            try train.run()

            step("mfrec recommend 1 -n 5 --explain --db \(db)")
            var recommend = try Recommend.parse(["1", "-n", "5", "--explain", "--db", db])
            try recommend.run()

            step("mfrec similar 1 -n 5 --db \(db)")
            var similar = try Similar.parse(["1", "-n", "5", "--db", db])
            try similar.run()

            step("mfrec eval --db \(db)")
            var eval = try Eval.parse(["--db", db])
            try eval.run()

            step("mfrec rate 1 7 5 --db \(db)        # a new rating moves the live model, no retraining")
            var rate = try Rate.parse(["1", "7", "5", "--db", db])
            try rate.run()
            step("mfrec rate newcomer 7 5 --db \(db) && mfrec rate newcomer 30 4 --db \(db)")
            var rate2 = try Rate.parse(["newcomer", "7", "5", "--db", db])
            try rate2.run()
            var rate3 = try Rate.parse(["newcomer", "30", "4", "--db", db])
            try rate3.run()
            step("mfrec recommend newcomer -n 3 --db \(db)")
            var newcomer = try Recommend.parse(["newcomer", "-n", "3", "--db", db])
            try newcomer.run()

            step("mfrec snapshot create --note \"with 3 new ratings\" --db \(db)")
            var create = try Snapshot.Create.parse(["--note", "with 3 new ratings", "--db", db])
            try create.run()
            step("mfrec rollback 1 --db \(db)")
            var rollback = try Rollback.parse(["1", "--db", db])
            try rollback.run()
            step("mfrec snapshot list --db \(db)")
            var list = try Snapshot.List.parse(["--db", db])
            try list.run()
            if folder == nil { print("\n(the demo's files were in \(dir) and are removed; keep them with --folder DIR)") }
        }

        private func step(_ command: String) {
            print("\n$ \(command)")
        }
    }
}
