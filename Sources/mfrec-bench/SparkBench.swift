import ArgumentParser
import Foundation

struct SparkBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "spark",
        abstract:
            "The Spark round trip (scripts/spark-roundtrip.sh: generate, ingest, export, two local[2] ALS jobs, "
            + "imports, checks, rate, rollback) with this build's mfrec: each run's wall time and exit status, and "
            + "their median. Run from the repository's folder.")

    @Option(help: "Runs (each after the first is timed; the first installs what is missing and warms up).")
    var runs = 3
    @Option(help: "The round-trip script.") var script = "scripts/spark-roundtrip.sh"

    func validate() throws {
        guard runs >= 1 else { throw ValidationError("--runs must be at least 1") }
        guard FileManager.default.isExecutableFile(atPath: script) else {
            throw ValidationError("--script: not an executable file: \(script) (run from the repository's folder)")
        }
    }

    func run() throws {
        let log = (NSTemporaryDirectory() as NSString).appendingPathComponent("mfrec-bench-spark-\(getpid()).log")
        defer { try? FileManager.default.removeItem(atPath: log) }
        section("Spark round trip (\(script), MFREC=\(mfrecPath)); load average \(loadAverage())")
        var seconds: [Double] = []
        for run in 0...runs {
            let child = try runChild(
                "/usr/bin/env", ["bash", script], environment: ["MFREC": mfrecPath], output: log)
            guard child.status == 0 else {
                let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
                throw BenchError("\(script) exited with \(child.status): \(output.suffix(3000))")
            }
            print(
                (run == 0 ? "warm-up run" : "run \(run)") + ": \(fmt(child.seconds, 1)) s, peak "
                    + "\(fmt(child.peakMegabytes, 0)) MB (the largest of the script's processes)")
            if run > 0 { seconds.append(child.seconds) }
        }
        seconds.sort()
        print(
            "median of \(seconds.count): \(fmt(medianOf(seconds), 1)) s (runs \(fmt(seconds.first!, 1))–"
                + "\(fmt(seconds.last!, 1)) s); load average after \(loadAverage())")
    }
}
