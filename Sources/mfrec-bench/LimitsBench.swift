import ArgumentParser
import CZlib
import Foundation
import MFRec

/// Where one machine ends (issue 15): the whole `mfrec` processes a user runs — ingest, train at k = 64,
/// export for Spark — at growing sizes, with wall time, database size and peak memory of each process,
/// next to the same run's baseline of only reading the generated file (gzip decompression, no parsing).
struct LimitsBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "limits",
        abstract:
            "Ingest, train (k = 64, --tune off) and export --ratings at growing sizes: time, database size, peak memory."
    )

    @Option(help: "Comma-separated rating counts (users and items grow with them, in ML-25M's shape).")
    var sizes = "25000000,100000000"
    @Option(help: "k.") var factors = 64
    @OptionGroup var scale: Scale

    func validate() throws {
        guard !sizes.split(separator: ",").isEmpty,
            sizes.split(separator: ",").allSatisfy({ Int($0).map { $0 >= 10_000 && $0 <= 2_000_000_000 } ?? false })
        else { throw ValidationError("--sizes must be rating counts of 10000…2000000000, separated by commas") }
        try require(factors, 1...1024, "--factors")
    }

    func require(_ value: Int, _ range: ClosedRange<Int>, _ name: String) throws {
        guard range.contains(value) else { throw ValidationError("\(name) must be in \(range)") }
    }

    struct Row {
        var ratings: Int, users: Int, items: Int
        var read: Double, ingest: ChildRun, databaseBytes: Int64, train: ChildRun, export: ChildRun, exportBytes: Int64
    }

    func run() throws {
        let dir = try scale.makeFolder()
        defer { scale.removeFolder(dir) }
        var rows: [Row] = []
        for n in sizes.split(separator: ",").compactMap({ Int($0) }) {
            let ratio = Double(n) / 25_000_095
            let users = max(100, Int(162_541 * ratio)), items = max(100, Int(59_047 * ratio.squareRoot()))
            section("\(n) ratings, \(users) users, \(items) items, k = \(factors)")
            let file = (dir as NSString).appendingPathComponent("ratings-\(n).data.gz")
            if !FileManager.default.fileExists(atPath: file) {
                let (_, seconds) = try time {
                    try SyntheticRatings(users: users, items: items, ratings: n).write(to: file)
                }
                print("generated \(file) in \(fmt(seconds, 1)) s")
            }
            // Baseline: read every byte of the file through zlib (what any reader of it pays at least).
            let (_, read) = time {
                let gz = gzopen(file, "rb")
                defer { gzclose(gz) }
                var buffer = [UInt8](repeating: 0, count: 1 << 20)
                while buffer.withUnsafeMutableBytes({ gzread(gz, $0.baseAddress, UInt32($0.count)) }) > 0 {}
            }
            let db = (dir as NSString).appendingPathComponent("limits-\(n).db")
            for suffix in ["", "-wal", "-shm", ".items", ".items.lock"] { unlink(db + suffix) }
            let ingest = try runChild(mfrecPath, ["ingest", file, "--db", db])
            guard ingest.status == 0 else { throw BenchError("mfrec ingest failed (\(ingest.status))") }
            print("ingest \(fmt(ingest.seconds, 1)) s, peak \(fmt(ingest.peakMegabytes, 0)) MB")
            let train = try runChild(
                mfrecPath, ["train", "--factors", String(factors), "--tune", "off", "--test-fraction", "0", "--db", db])
            guard train.status == 0 else { throw BenchError("mfrec train failed (\(train.status))") }
            print("train \(fmt(train.seconds, 1)) s, peak \(fmt(train.peakMegabytes, 0)) MB")
            let exported = (dir as NSString).appendingPathComponent("export-\(n).csv.gz")
            let export = try runChild(mfrecPath, ["export", "--ratings", exported, "--db", db])
            guard export.status == 0 else { throw BenchError("mfrec export failed (\(export.status))") }
            print("export --ratings \(fmt(export.seconds, 1)) s, peak \(fmt(export.peakMegabytes, 0)) MB")
            let size = { (path: String) -> Int64 in
                ((try? FileManager.default.attributesOfItem(atPath: path)[.size]) as? NSNumber)?.int64Value ?? 0
            }
            rows.append(
                Row(
                    ratings: n, users: users, items: items, read: read, ingest: ingest,
                    databaseBytes: size(db) + size(db + "-wal"), train: train, export: export,
                    exportBytes: size(exported)))
            unlink(exported)
        }
        section("one machine (2 cores here): each figure a whole mfrec process")
        print(
            "| ratings | users × items | read the .gz (baseline) | ingest | database | train k = \(factors) (--tune off) | "
                + "train peak memory | export --ratings (.csv.gz) |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- |")
        for r in rows {
            print(
                "| \(r.ratings) | \(r.users) × \(r.items) | \(fmt(r.read, 1)) s | \(fmt(r.ingest.seconds, 1)) s "
                    + "(\(fmt(r.ingest.seconds / r.read, 1))× the read; peak \(fmt(r.ingest.peakMegabytes, 0)) MB) | "
                    + "\(fmt(Double(r.databaseBytes) / 1e9, 2)) GB | \(fmt(r.train.seconds, 1)) s | "
                    + "\(fmt(r.train.peakMegabytes, 0)) MB (\(fmt(r.train.peakMegabytes * 1e6 / Double(r.ratings), 1)) bytes/rating) | "
                    + "\(fmt(r.export.seconds, 1)) s, \(fmt(Double(r.exportBytes) / 1e6, 0)) MB |")
        }
    }
}
