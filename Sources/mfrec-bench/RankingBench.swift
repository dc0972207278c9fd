import ArgumentParser
import Foundation
import MFEngine
import MFRec

struct RankingBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ranking",
        abstract:
            "Top-n quality on the fixed ML-100K split: mfrec's rankers next to popularity and open-tool "
            + "peers, one run.",
        discussion: """
            mfrec: ingest train.tsv, `train --test-fraction 0` (the ranking model chosen on validation), `eval \
            --test-file test.tsv --compare`. Peers (scripts/peers.py: item-kNN, EASE, PureSVD with numpy/scipy; \
            implicit's ALS and BPR when `pip install implicit` is done) are tuned on the same validation carve-out \
            that mfrec's tuning used (written out as fit/val files), refitted on train.tsv and scored the same way \
            (K = 10, relevant = rating ≥ 4). With --large N, also the ranking model's fit time on N generated \
            ratings next to implicit's ALS at the same k in the same run.
            """)

    @Option(help: "Folder with train.tsv and test.tsv.") var split = sharedSplit
    @Option(help: "Item titles (u.item).") var items = (sharedML100K as NSString).deletingLastPathComponent + "/u.item"
    @Flag(help: "Skip the peers.") var noPeers = false
    @Option(
        help: "Also time the ranking-model fit on this many generated ratings (e.g. 25000000) against implicit ALS.")
    var large: Int?
    @Option(help: "Runs of the --large fits (each fit and implicit's take turns; medians and ranges printed).")
    var largeRuns = 1
    @OptionGroup var scale: Scale

    func validate() throws {
        guard largeRuns >= 1 else { throw ValidationError("--large-runs must be at least 1") }
        if let large, large < 1_000 { throw ValidationError("--large must be at least 1000") }
    }

    func run() throws {
        let dir = try scale.makeFolder()
        defer { scale.removeFolder(dir) }
        let trainPath = (split as NSString).appendingPathComponent("train.tsv"),
            testPath = (split as NSString).appendingPathComponent("test.tsv")
        guard FileManager.default.fileExists(atPath: trainPath) else { throw BenchError("needs \(trainPath)") }
        let rec = try Recommender(path: (dir as NSString).appendingPathComponent("rank.db"))
        try rec.ingest(
            path: trainPath,
            options: IngestOptions(itemsPath: FileManager.default.fileExists(atPath: items) ? items : nil))
        var request = TrainRequest()
        request.testFraction = 0
        let (outcome, seconds) = try time { try rec.train(request) }
        let report = try rec.evaluate(testFile: testPath, compareRankings: true)
        section(
            "mfrec on \(split) (train \(seconds > 0 ? fmt(seconds) : "-") s, of which ranking model "
                + "\(fmt(outcome.rankingSeconds)) s)"
        )
        if let choice = outcome.ranking {
            print(
                "ranking model: \(choice.parameters)"
                    + (choice.popularityWeight > 0 ? ", popularity blend \(choice.popularityWeight)" : "")
                    + (choice.ratingBlend > 0 ? ", rating-model blend \(choice.ratingBlend)" : "")
                    + "; \(choice.grid.count) settings scored on validation"
                    + (choice.lightBelow > 0
                        ? "; users with < \(choice.lightBelow) ratings by \(choice.lightRanker.rawValue)"
                            + (choice.lightPopularityWeight > 0 ? " + popularity \(choice.lightPopularityWeight)" : "")
                            + (choice.lightDecay < 1 ? ", recency decay \(choice.lightDecay)" : "") : ""))
            if let v = choice.validation { print("validation NDCG@10 \(fmt(v.ndcg, 4)) over \(v.users) users") }
        }
        print("ranker                          P@10    NDCG@10  coverage  fit s")
        func line(_ name: String, _ m: RankingMetrics?, _ fit: String = "") {
            guard let m else { return }
            print(
                name.padding(toLength: 30, withPad: " ", startingAt: 0) + "  " + fmt(m.precision, 4) + "  "
                    + fmt(m.ndcg, 4)
                    + "   " + fmt(m.coverage, 4) + "    " + fit)
        }
        line("mfrec default", report.defaultRanking, fmt(outcome.rankingSeconds))
        line("mfrec ranking model", report.rankingModelRanking)
        line("mfrec rating model", report.ranking, fmt(outcome.runs[outcome.best].seconds))
        line("mfrec co-occurrence", report.cooccurrenceRanking, fmt(outcome.cooccurrenceSeconds))
        line("mfrec popular", report.popularRanking)
        print("test RMSE of the rating model \(fmt(report.error.rmse, 4))")

        if !noPeers {
            // The carve-out mfrec's tuning used, with the original ids, for the peers.
            let (train, _) = try rec.loadSplit(.none, maxSeq: Int64.max)
            let (fit, held) = RankingTuner().carve(train)
            let store = try Store(path: rec.path, readOnly: true)
            let users = try store.userKeys(), itemKeys = try store.itemKeys()
            func write(_ t: RatingTriples, _ name: String) throws -> String {
                let path = (dir as NSString).appendingPathComponent(name)
                var text = ""
                for j in 0..<t.count {
                    text += "\(users[Int(t.users[j])])\t\(itemKeys[Int(t.items[j])])\t\(t.ratings[j])\n"
                }
                try text.write(toFile: path, atomically: true, encoding: .utf8)
                return path
            }
            let fitPath = try write(fit, "fit.tsv"), valPath = try write(held, "val.tsv")
            section(
                "peers, tuned on the same validation carve-out (scripts/peers.py; grid: setting:validation NDCG@10)")
            let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .deletingLastPathComponent().appendingPathComponent("scripts/peers.py").path
            let output = try runPython([script, fitPath, valPath, trainPath, testPath])
            for row in output.split(separator: "\n") {
                let f = row.split(separator: "\t").map(String.init)
                if f.count < 8 {
                    print(row)
                    continue
                }
                print(
                    f[0].padding(toLength: 30, withPad: " ", startingAt: 0)
                        + "  \(f[3])  \(f[4])   \(f[5])    \(f[6])   chosen \(f[1]) (validation \(f[2]))")
                print("    grid: \(f[7])")
            }
        }
        if let large { try timeLarge(large, dir: dir) }
    }

    /// The ranking model's fit on generated ratings next to implicit's ALS at the same k: `largeRuns` runs, in each
    /// the spectral fit, the implicit-ALS part at 6 and 15 iterations and implicit's ALS at 6 and 15 take turns;
    /// each run's figures, then the medians (and of the per-run ratios to implicit).
    func timeLarge(_ count: Int, dir: String) throws {
        let users = max(1000, count / 154), itemCount = max(500, count / 423)
        section(
            "fit time on \(count) generated ratings (\(users) users × \(itemCount) items), k = 64; "
                + "\(largeRuns) run\(largeRuns > 1 ? "s" : ""), load average \(loadAverage())")
        let data = (dir as NSString).appendingPathComponent("large.csv")
        _ = try SyntheticRatings(users: users, items: itemCount, ratings: count, seed: 1).write(to: data)
        let rec = try Recommender(path: (dir as NSString).appendingPathComponent("large.db"))
        try rec.ingest(path: data)
        let (train, _) = try rec.loadSplit(.none, maxSeq: Int64.max)
        let path = (dir as NSString).appendingPathComponent("large.npz")
        try writeCOO(train, to: path)
        let code = """
            import sys, time, numpy as np, scipy.sparse as sp
            from implicit.als import AlternatingLeastSquares
            d = np.load(sys.argv[1]); R = sp.csr_matrix((np.ones(len(d['u']), np.float32), (d['u'], d['i'])))
            for it in (6, 15):
                m = AlternatingLeastSquares(factors=64, iterations=it, random_state=1)
                t = time.perf_counter(); m.fit(R, show_progress=False); print(f"{time.perf_counter() - t:.4f}")
            """
        let parameters = RankingModel.Parameters(factors: 64, exponent: 0.3, spectrumPower: 0.5, weighting: .rating)
        // Per run: spectral, ALS 6, ALS 15, implicit 6, implicit 15 (seconds).
        var runs: [[Double]] = []
        for run in 1...largeRuns {
            let (_, spectral) = time {
                RankingModel.fit(
                    users: train.users, items: train.items, ratings: train.ratings, userCount: users,
                    itemCount: itemCount, parameters: parameters, threads: 2)
            }
            // The ranking model's implicit-ALS part (`ImplicitALSFit`, what `train` blends in when validation
            // keeps it) at the tuner's first setting, for the iterations implicit is timed at.
            let als = [6, 15].map { iterations in
                time {
                    ImplicitALSFit.fit(
                        users: train.users, items: train.items, ratings: train.ratings, userCount: users,
                        itemCount: itemCount, ratingOffset: 1, factors: 64, regularization: 30, alpha: 1,
                        iterations: iterations, threads: 2)
                }.1
            }
            let implicit = try runPython(["-c", code, path]).split(separator: "\n").compactMap { Double($0) }
            guard implicit.count == 2 else { throw BenchError("implicit's ALS printed no times") }
            runs.append([spectral] + als + implicit)
            print(
                "run \(run): mfrec ranking model (6 subspace iterations, 2 threads) \(fmt(spectral)) s; mfrec "
                    + "implicit-ALS part (3 CG steps, 2 threads) \(fmt(als[0])) s for 6 iterations, "
                    + "\(fmt(als[1])) s for 15; implicit ALS (its own threads) \(fmt(implicit[0])) s / "
                    + "\(fmt(implicit[1])) s (mfrec's \(fmt(als[0] / implicit[0]))× / \(fmt(als[1] / implicit[1]))×); "
                    + "peak RSS so far \(fmt(peakRSSMegabytes(), 0)) MB")
        }
        func median(_ values: [Double]) -> String {
            values.count == 1
                ? fmt(values[0]) : "\(fmt(medianOf(values))) (\(fmt(values.min()!))–\(fmt(values.max()!)))"
        }
        let column = { (c: Int) in runs.map { $0[c] } }
        print(
            "median of \(runs.count): spectral \(median(column(0))) s; implicit-ALS part \(median(column(1))) s / "
                + "\(median(column(2))) s; implicit ALS \(median(column(3))) s / \(median(column(4))) s; ratios "
                + "\(median(runs.map { $0[1] / $0[3] }))× / \(median(runs.map { $0[2] / $0[4] }))×; load average "
                + "\(loadAverage())")
    }

    /// Users and items of the ratings as a NumPy .npz (two int32 arrays), for the ALS baseline.
    func writeCOO(_ t: RatingTriples, to path: String) throws {
        let code =
            "import sys, numpy as np; u = np.fromfile(sys.argv[1], np.int32); i = np.fromfile(sys.argv[2], "
            + "np.int32); np.savez(sys.argv[3], u=u, i=i)"
        let u = path + ".u", i = path + ".i"
        try t.users.withUnsafeBytes { try Data($0).write(to: URL(fileURLWithPath: u)) }
        try t.items.withUnsafeBytes { try Data($0).write(to: URL(fileURLWithPath: i)) }
        _ = try runPython(["-c", code, u, i, path])
    }
}

let sharedSplit: String =
    ((sharedML100K as NSString).deletingLastPathComponent as NSString).deletingLastPathComponent + "/ml-100k-split"

/// Runs python3 with arguments and returns its standard output; a failure is an error with its stderr.
func runPython(_ arguments: [String]) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["python3"] + arguments
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    let errors = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else {
        throw BenchError(
            "python3 failed (\(process.terminationStatus)): \(String(decoding: errors, as: UTF8.self).suffix(2000))")
    }
    return String(decoding: data, as: UTF8.self)
}
