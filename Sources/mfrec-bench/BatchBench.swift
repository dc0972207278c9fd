import ArgumentParser
import Foundation
import MFEngine

/// `recommend --all` (issue 16): the whole `mfrec recommend --all -n 10` process, for the rating model and
/// the ranking model, next to same-run baselines over the same exported matrices (scripts/batch_baselines.py):
/// numpy's blocked sgemm with no selection at all (the arithmetic floor), numpy argpartition, and implicit's
/// C++ topk when it is installed. Medians after a warm-up; the load average is printed with them.
struct BatchBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "batch",
        abstract: "recommend --all against numpy's sgemm floor and implicit's topk, on the same matrices.")

    @Option(help: "Users of the generated data.") var users = 40_000
    @Option(help: "Items of the generated data.") var items = 20_000
    @Option(help: "Ratings of the generated data.") var ratings = 2_000_000
    @Option(help: "Factors of both models.") var factors = 64
    @Option(help: "Timed runs (medians are printed).") var runs = 3
    @Option(
        help:
            "Also time the ranking model's lists blended with the rating model's predictions at this weight (train --rating-blend; 0: skip)."
    )
    var ratingBlend: Float = 0.3
    @Option(
        help:
            "Baselines to run: sgemm (the floor, always), implicit, argpartition (comma-separated; the last takes minutes at 25M)."
    )
    var baselines = "sgemm,implicit,argpartition"
    @OptionGroup var scale: Scale

    func validate() throws {
        guard (1...20).contains(runs) else { throw ValidationError("--runs must be 1…20") }
        guard (0...10).contains(ratingBlend) else { throw ValidationError("--rating-blend must be 0…10") }
        let known: Set<String> = ["sgemm", "implicit", "argpartition"]
        for name in baselines.split(separator: ",") where !known.contains(String(name)) {
            throw ValidationError("--baselines: unknown baseline '\(name)' (sgemm, implicit, argpartition)")
        }
    }

    /// The script's names for the chosen baselines (sgemm always).
    var chosenBaselines: [String] {
        let names = Set(baselines.split(separator: ",").map(String.init)).union(["sgemm"])
        return ["sgemm", "implicit", "argpartition"].filter(names.contains).map {
            $0 == "argpartition" ? "argpart" : $0
        }
    }

    func run() throws {
        let dir = try scale.makeFolder()
        defer { scale.removeFolder(dir) }
        let db = (dir as NSString).appendingPathComponent("batch.db")
        let data = (dir as NSString).appendingPathComponent("batch.data")
        let npy = (dir as NSString).appendingPathComponent("npy")
        let out = (dir as NSString).appendingPathComponent("all.csv")
        for suffix in ["", "-wal", "-shm", ".items", ".items.lock"] { unlink(db + suffix) }
        for step in [
            ["generate", "--users", "\(users)", "--items", "\(items)", "--ratings", "\(ratings)", "--output", data],
            ["ingest", data, "--db", db],
            [
                "train", "--factors", "\(factors)", "--ranking-factors", "\(factors)", "--epochs", "3",
                "--test-fraction", "0", "--tune", "off", "--quiet", "--db", db,
            ],
            ["export", "-o", npy, "--format", "npy", "--db", db],
        ] {
            let run = try runChild(mfrecPath, step)
            guard run.status == 0 else { throw BenchError("mfrec \(step[0]) failed (exit status \(run.status))") }
        }
        section(
            "recommend --all -n 10: \(users) users × \(items) items × k \(factors), \(ratings) ratings; "
                + "load average \(loadAverage())")
        /// The whole process (start, open, read every user's rated items, score, select, write the CSV): the
        /// median of `runs` after a warm-up, and the peak memory.
        /// `environment`: variables set for the child (`MFREC_BLAS=off` for mfrec's own kernels).
        func timeAll(by model: String, environment: [String: String] = [:]) throws -> (seconds: Double, peak: Double) {
            var times: [Double] = []
            var peak = 0.0
            for run in 0...runs {
                let child = try runChild(
                    mfrecPath, ["recommend", "--all", "-n", "10", "--by", model, "--output", out, "--db", db],
                    environment: environment)
                guard child.status == 0 else { throw BenchError("mfrec recommend --all failed (\(child.status))") }
                if run > 0 { times.append(child.seconds) }
                peak = max(peak, child.peakMegabytes)
            }
            return (times.sorted()[times.count / 2], peak)
        }
        // Which path finds the candidates here (the child processes decide the same way: same CPU, same libraries).
        let blas = ItemMatrix.usesBLAS
        print(
            blas
                ? "candidates from OpenBLAS's sgemm (libopenblas.so.0 found), re-scored by mfrec's exact kernel"
                : "candidates from mfrec's block kernel (no BLAS found, or MFREC_BLAS=off, or AVX-512 panels)")
        var rankingSeconds = Double.nan
        for model in ["rating", "ranking"] {
            let (mfrec, peak) = try timeAll(by: model)
            // Same run, the same lists from mfrec's own block kernel.
            let own = blas ? try timeAll(by: model, environment: ["MFREC_BLAS": "off"]).seconds : nil
            if model == "ranking" { rankingSeconds = mfrec }
            let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .deletingLastPathComponent().appendingPathComponent("scripts/batch_baselines.py").path
            let only = chosenBaselines.flatMap { ["--only", $0] }
            let lines = try runPython([script, npy, "--model", model, "--runs", "\(runs)"] + only)
            var baseline: [String: Double] = [:]
            for line in lines.split(separator: "\n") {
                let parts = line.split(separator: " ")
                if parts.count == 2, let seconds = Double(parts[1]) { baseline[String(parts[0])] = seconds }
            }
            let floor = baseline["sgemm"] ?? .nan
            print("\(model) model:")
            print(
                "  mfrec recommend --all, whole process: \(fmt(mfrec)) s (\(rate(Double(users), mfrec)) users/s, "
                    + "peak \(fmt(peak, 0)) MB) = \(fmt(mfrec / floor))× the sgemm floor")
            if let own {
                print(
                    "  the same with MFREC_BLAS=off (mfrec's block kernel): \(fmt(own)) s = \(fmt(own / floor))× the floor"
                )
            }
            print("  numpy blocked sgemm, no selection (floor): \(fmt(floor)) s")
            if let a = baseline["argpart"] {
                print("  numpy sgemm + argpartition: \(fmt(a)) s (\(fmt(a / floor))×)")
            } else if !chosenBaselines.contains("argpart") {
                print("  numpy sgemm + argpartition: not run (--baselines)")
            }
            if let i = baseline["implicit"] {
                print("  implicit topk (2 threads, no exclusion): \(fmt(i)) s (\(fmt(i / floor))×)")
            } else if chosenBaselines.contains("implicit") {
                print("  implicit topk: not installed (pip install implicit)")
            } else {
                print("  implicit topk: not run (--baselines)")
            }
        }
        if ratingBlend > 0 {
            // The same models refitted with the ranking lists blended with the rating model's predictions (a
            // tuned train chooses this when validation says it pays): every score of both models per user.
            let step = [
                "train", "--factors", "\(factors)", "--ranking-factors", "\(factors)", "--epochs", "3",
                "--test-fraction", "0", "--tune", "off", "--rating-blend", "\(ratingBlend)", "--quiet", "--db", db,
            ]
            let run = try runChild(mfrecPath, step)
            guard run.status == 0 else { throw BenchError("mfrec train --rating-blend failed (\(run.status))") }
            let (blended, peak) = try timeAll(by: "ranking")
            print("ranking model blended with the rating model's predictions (train --rating-blend \(ratingBlend)):")
            print(
                "  mfrec recommend --all, whole process: \(fmt(blended)) s (\(rate(Double(users), blended)) users/s, "
                    + "peak \(fmt(peak, 0)) MB) = \(fmt(blended / rankingSeconds))× the unblended ranking run")
        }
        print("load average after: \(loadAverage())")
    }
}

/// The 1-minute load average.
func loadAverage() -> String {
    var loads = [Double](repeating: 0, count: 3)
    return getloadavg(&loads, 3) == 3 ? fmt(loads[0]) : "?"
}
