import ArgumentParser
import Foundation
import MFEngine
import MFRec
import MFStore

struct TrainBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract:
            "SGD throughput (rating updates per second per thread) for several k, 1 and 2 threads, on ML-100K and "
            + "generated sets."
    )

    @Option(help: "Epochs per measurement.") var epochs = 20
    @Option(help: "Largest generated set (0 skips generated sets).") var largest = 25_000_000
    @OptionGroup var scale: Scale

    func run() throws {
        let dir = try scale.makeFolder()
        defer { scale.removeFolder(dir) }
        var sets: [(String, String, Int, Int, Int)] = []
        if FileManager.default.fileExists(atPath: sharedML100K) {
            sets.append(("ML-100K", sharedML100K, 943, 1682, 100_000))
        }
        if largest >= 1_000_000 { sets.append(("generated 1M", "", 6_040, 3_706, 1_000_000)) }
        if largest >= 25_000_000 { sets.append(("generated 25M", "", 162_541, 59_047, 25_000_000)) }
        for (name, givenPath, users, items, count) in sets {
            var path = givenPath
            if path.isEmpty {
                path = (dir as NSString).appendingPathComponent("ratings-\(count).data")
                if !FileManager.default.fileExists(atPath: path) {
                    _ = try SyntheticRatings(users: users, items: items, ratings: count).write(to: path)
                }
            }
            let db = (dir as NSString).appendingPathComponent("train-\(count).db")
            if !FileManager.default.fileExists(atPath: db) {
                guard try runChild(mfrecPath, ["ingest", path, "--db", db]).status == 0 else {
                    throw BenchError("ingest failed")
                }
            }
            // End to end first, while this process is small (a spawned child's peak memory includes its parent's pages).
            var endToEnd: [String] = []
            if count >= 1_000_000 {
                for k in [32, 64] {
                    let run = try runChild(
                        mfrecPath,
                        [
                            "train", "--db", db, "--factors", "\(k)", "--epochs", "\(epochs)",
                            "--test-fraction", "0.1", "--threads", "2", "--quiet",
                        ])
                    guard run.status == 0 else { throw BenchError("mfrec train failed") }
                    endToEnd.append(
                        "end to end `mfrec train --factors \(k) --epochs \(epochs) --threads 2` (load + train + "
                            + "test + snapshot + item matrix): "
                            + "\(fmt(run.seconds)) s, peak memory \(fmt(run.peakMegabytes, 0)) MB")
                }
            }
            let rec = try Recommender(path: db)
            let (train, _) = try rec.loadSplit(.random(fraction: 0.1, seed: 42), maxSeq: Int64.max)
            let (userCount, itemCount, _) = try rec.catalog()
            section(
                "\(name): \(train.count) training ratings (90%), \(userCount) users, \(itemCount) items, \(epochs) "
                    + "epochs; memory now \(fmt(currentRSSMegabytes(), 0)) MB"
            )
            print("   k  threads  seconds  updates/s/thread  2-thread speed-up")
            for k in [20, 32, 64] {
                var single = 0.0
                for threads in [1, 2] {
                    var options = TrainingOptions()
                    options.factors = k
                    options.epochs = epochs
                    options.threads = threads
                    let (_, seconds) = try time {
                        try Trainer.train(
                            train: train, test: nil, userCount: userCount, itemCount: itemCount, scale: 1...5,
                            options: options)
                    }
                    if threads == 1 { single = seconds }
                    let perThread = Double(train.count * epochs) / seconds / Double(threads)
                    print(
                        String(
                            format: "%4d  %7d  %7.2f  %16@  %@", k, threads, seconds,
                            rate(perThread * 1, 1) as NSString,
                            threads == 2 ? fmt(single / seconds) + "×" : ""))
                }
            }
            for line in endToEnd { print(line) }
        }
        print("\npeak memory of this benchmark process: \(fmt(peakRSSMegabytes(), 0)) MB")
        if let libmf = ["/usr/bin/mf-train", "/usr/local/bin/mf-train"].first(
            where: FileManager.default.isExecutableFile)
        {
            print("LibMF found at \(libmf); run it on the same files to compare (not automated).")
        } else {
            print(
                "LibMF is not installed here. Reference (from the issue, measured on this kind of machine): ~16M "
                    + "updates/s/thread at k=32, 12–13.5M at k=64 on 25M ratings."
            )
        }
    }
}
