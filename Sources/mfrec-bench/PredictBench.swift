import ArgumentParser
import Foundation
import MFRec

/// Batch prediction (`mfrec predict --file`, issue 17): pairs per second next to only reading and parsing
/// the same file in the same run, and the whole process's peak memory at two file sizes (flat: the pairs
/// stream through).
struct PredictBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "predict",
        abstract: "Batch prediction of a file of pairs next to reading and parsing the same file.")

    @Option(help: "Pairs in the larger file (the smaller has a fifth).") var pairs = 10_000_000
    @Option(help: "Ratings the model is trained on.") var ratings = 1_000_000
    @Option(help: "Timed runs (medians are printed).") var runs = 3
    @OptionGroup var scale: Scale

    func run() throws {
        let dir = try scale.makeFolder()
        defer { scale.removeFolder(dir) }
        let users = 60_000, items = 20_000
        let db = (dir as NSString).appendingPathComponent("predict.db")
        let train = (dir as NSString).appendingPathComponent("train.data")
        for suffix in ["", "-wal", "-shm", ".items", ".items.lock"] { unlink(db + suffix) }
        _ = try SyntheticRatings(users: users, items: items, ratings: ratings, seed: 1).write(to: train)
        for step in [
            ["ingest", train, "--db", db], ["train", "--tune", "off", "--factors", "32", "--quiet", "--db", db],
        ] {
            let run = try runChild(mfrecPath, step)
            guard run.status == 0 else { throw BenchError("mfrec \(step[0]) failed (\(run.status))") }
        }
        // Pairs over the same ids, with ratings (so RMSE is computed too), in u.data layout.
        let small = (dir as NSString).appendingPathComponent("pairs-small.data")
        let large = (dir as NSString).appendingPathComponent("pairs.data")
        _ = try SyntheticRatings(users: users, items: items, ratings: pairs / 5, seed: 2).write(to: small)
        _ = try SyntheticRatings(users: users, items: items, ratings: pairs, seed: 3).write(to: large)
        section("batch prediction: \(pairs) pairs (u.data with ratings), k = 32, \(users) × \(items)")

        // Peak memory of the whole process at two sizes, first (this process is still small).
        let out = (dir as NSString).appendingPathComponent("predictions.csv")
        let peakSmall = try runChild(mfrecPath, ["predict", "--file", small, "--output", out, "--db", db])
        let peakLarge = try runChild(mfrecPath, ["predict", "--file", large, "--output", out, "--db", db])
        guard peakSmall.status == 0, peakLarge.status == 0 else { throw BenchError("mfrec predict --file failed") }

        let engine = try Recommender(path: db, mode: .read).queries()
        var predictTimes: [Double] = [], readTimes: [Double] = []
        var report: BatchPredictReport?
        for run in 0...runs {  // run 0 warms the page cache and the engine
            let (r, predictSeconds) = try time { try engine.predictFile(large, to: out) }
            let (_, readSeconds) = try time { try readOnly(large) }
            if run > 0 {
                predictTimes.append(predictSeconds)
                readTimes.append(readSeconds)
            }
            report = r
        }
        let predict = predictTimes.sorted()[predictTimes.count / 2], read = readTimes.sorted()[readTimes.count / 2]
        print(
            "predict --file (parse, look up, predict, write CSV): \(rate(Double(pairs), predict)) pairs/s (\(fmt(predict)) s)"
        )
        print(
            "same run, only reading and parsing the file:          \(rate(Double(pairs), read)) lines/s (\(fmt(read)) s)"
        )
        print("ratio: predict runs at \(fmt(read / predict))× the speed of reading the file")
        print(
            "whole `mfrec predict --file` process: peak \(fmt(peakSmall.peakMegabytes, 0)) MB for \(pairs / 5) pairs, "
                + "\(fmt(peakLarge.peakMegabytes, 0)) MB for \(pairs)")
        if let report {
            print(
                "RMSE \(fmt(report.rmse ?? .nan, 4)) over \(report.rated) rated pairs; \(report.fallback) by the fallback"
            )
        }
    }

    /// The baseline: the same reader, every line parsed, nothing else done.
    func readOnly(_ path: String) throws {
        var count = 0
        try RatingsReader(path: path, ratingOptional: true).read({ _ in count += 1 }, onError: { throw $0 })
        guard count == pairs else { throw BenchError("read \(count) lines, expected \(pairs)") }
    }
}
