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
            + "generated sets (medians of --runs); with --phases-db or --whole-db, whole `mfrec train` processes "
            + "instead."
    )

    @Option(help: "Epochs per measurement.") var epochs = 20
    @Option(help: "Largest generated set (0 skips generated sets).") var largest = 25_000_000
    @Option(
        help: ArgumentHelp(
            "A LibMF mf-train binary (built outside the repo) to time on the largest set's training ratings, taking "
                + "turns with mfrec's SGD (a warm-up round, then --runs rounds).",
            valueName: "path"))
    var libmf: String?
    @Option(
        help: ArgumentHelp(
            "Instead of the SGD table: time issue 16's command (`mfrec train --factors 32 --epochs 20 --threads 2 "
                + "--test-fraction 0.1 --tune off`) on a copy of this database, a first run and then --runs more, "
                + "with the phases it prints, next to the same ratings' in-process SGD alone and a plain scan of "
                + "the ratings table.", valueName: "path"))
    var phasesDb: String?
    @Option(
        help: ArgumentHelp(
            "Instead of the SGD table: time whole `mfrec train` processes on fresh copies of this database, one per "
                + "--train-args, taking turns: a first run, then --runs more with their medians (wall time, peak "
                + "memory, the phases the command prints).", valueName: "path"))
    var wholeDb: String?
    @Option(
        parsing: .unconditionalSingleValue,
        help: ArgumentHelp(
            "With --whole-db: the arguments of one `mfrec train` variant (split at spaces; --db is "
                + "added). Repeat for variants that take turns in the same run.", valueName: "args"))
    var trainArgs: [String] = []
    @Option(
        help: ArgumentHelp(
            "Timed runs of each SGD setting, of --phases-db or --whole-db after the first, or rounds with --libmf "
                + "after a warm-up."))
    var runs = 3
    @OptionGroup var scale: Scale

    func validate() throws {
        guard runs >= 1 else { throw ValidationError("--runs must be at least 1") }
        if let phasesDb, !FileManager.default.fileExists(atPath: phasesDb) {
            throw ValidationError("--phases-db: no such file: \(phasesDb)")
        }
        if let wholeDb {
            guard FileManager.default.fileExists(atPath: wholeDb) else {
                throw ValidationError("--whole-db: no such file: \(wholeDb)")
            }
            guard phasesDb == nil else { throw ValidationError("--whole-db and --phases-db are separate runs") }
            guard !trainArgs.isEmpty else { throw ValidationError("--whole-db needs at least one --train-args") }
            for args in trainArgs where args.split(separator: " ").contains(where: { $0 == "--db" }) {
                throw ValidationError("--train-args: --db is the copy's, not given: \(args)")
            }
        } else if !trainArgs.isEmpty {
            throw ValidationError("--train-args goes with --whole-db")
        }
    }

    func run() throws {
        let dir = try scale.makeFolder()
        defer { scale.removeFolder(dir) }
        if let phasesDb { return try phases(of: phasesDb, dir: dir) }
        if let wholeDb { return try wholeProcesses(of: wholeDb, dir: dir) }
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
            let rec = try Recommender(path: db)
            // Loading: mfrec's path (two connections, split into train and test) against one connection stepping
            // through the same rows with nothing done per row, warm page cache, medians of 3 after a warm-up.
            var loads: [Double] = [], scans: [Double] = []
            var loaded: RatingTriples?
            let reader = try Store(path: db, readOnly: true)
            for run in 0...3 {
                let (split, seconds) = try time {
                    try rec.loadSplit(.random(fraction: 0.1, seed: 42), maxSeq: Int64.max)
                }
                var rows = 0
                let (_, scan) = try time { try reader.forEachRating(maxSeq: Int64.max) { _, _, _ in rows += 1 } }
                if run > 0 {
                    loads.append(seconds)
                    scans.append(scan)
                }
                loaded = split.train
            }
            let train = loaded!
            let (load, scan) = (loads.sorted()[1], scans.sorted()[1])
            print(
                "loading the ratings for training (mfrec: 2 connections, split 90/10): \(fmt(load)) s; same run, one "
                    + "connection stepping through the rows: \(fmt(scan)) s (mfrec takes \(fmt(load / scan))× its time)"
            )
            let (userCount, itemCount, _) = try rec.catalog()
            section(
                "\(name): \(train.count) training ratings (90%), \(userCount) users, \(itemCount) items, \(epochs) "
                    + "epochs; memory now \(fmt(currentRSSMegabytes(), 0)) MB"
            )
            print("   k  threads  seconds (median of \(runs), range)  updates/s/thread  2-thread speed-up")
            for k in [20, 32, 64] {
                var single = 0.0
                for threads in [1, 2] {
                    var options = TrainingOptions()
                    options.factors = k
                    options.epochs = epochs
                    options.threads = threads
                    // The loading runs above warm the process up; each setting is then timed `runs` times.
                    var samples: [Double] = []
                    for _ in 0..<runs {
                        samples.append(
                            try time {
                                try Trainer.train(
                                    train: train, test: nil, userCount: userCount, itemCount: itemCount, scale: 1...5,
                                    options: options)
                            }.1)
                    }
                    let seconds = medianOf(samples)
                    if threads == 1 { single = seconds }
                    let perThread = Double(train.count * epochs) / seconds / Double(threads)
                    print(
                        String(
                            format: "%4d  %7d  %7.2f (%.2f–%.2f)  %16@  %@", k, threads, seconds, samples.min()!,
                            samples.max()!, rate(perThread * 1, 1) as NSString,
                            threads == 2 ? fmt(single / seconds) + "×" : ""))
                }
            }
            if let libmf, count >= 1_000_000, count == sets.map(\.4).max() {  // the largest set only
                try compareLibMF(libmf, train: train, dir: dir, userCount: userCount, itemCount: itemCount)
            }
        }
        print("\npeak memory of this benchmark process: \(fmt(peakRSSMegabytes(), 0)) MB")
    }

    /// Issue 16's `mfrec train` command on a copy of `source`: the first run, then `runs` more with the median of
    /// each phase; then, same run, the in-process SGD alone on the same split (the floor of the training phase) and
    /// one connection stepping through the ratings (the floor of the loading phase).
    func phases(of source: String, dir: String) throws {
        let db = (dir as NSString).appendingPathComponent("phases.db")
        try freshCopy(of: source, to: db)
        let command = [
            "train", "--db", db, "--factors", "32", "--epochs", "20", "--threads", "2", "--test-fraction", "0.1",
            "--tune", "off", "--quiet",
        ]
        section("`mfrec \(command.joined(separator: " "))` (a copy of \(source)); load average \(loadAverage())")
        let names = [
            "loading the ratings", "training", "co-occurrence embedding", "ranking model", "saving the snapshot",
        ]
        var timed: [[Double]] = []
        for run in 0...runs {
            let (output, status, wall) = try captureChild(mfrecPath, command)
            guard status == 0 else { throw BenchError("mfrec train exited with \(status): \(output)") }
            guard let line = output.split(separator: "\n").first(where: { $0.hasPrefix("times: ") }) else {
                throw BenchError("mfrec train printed no times line: \(output)")
            }
            let cacheNote = " (from the training cache)"
            let parts = line.dropFirst(7).replacingOccurrences(of: cacheNote, with: "").components(separatedBy: ", ")
            func phase(_ name: String) -> Double? {
                parts.first(where: { $0.hasPrefix(name + " ") }).flatMap {
                    Self.seconds(String($0.dropFirst(name.count + 1)))
                }
            }
            let phases = try names.map { name -> Double in
                guard let seconds = phase(name) else { throw BenchError("no \(name) in: \(line)") }
                return seconds
            }
            let own = phases[0] + phases[1] + phases[4]
            let source = line.contains(cacheNote) ? "the training cache" : "the ratings table"
            let written = phase("writing the training cache").map { ", writing the training cache \(fmt($0))" } ?? ""
            print(
                (run == 0 ? "first run: " : "run \(run):     ") + "ratings from \(source); "
                    + zip(names, phases).map { "\($0) \(fmt($1))" }.joined(separator: ", ") + written
                    + "; the rating model's phases (loading + training + snapshot) \(fmt(own)) s; whole process "
                    + "\(fmt(wall)) s")
            if run > 0 { timed.append(phases + [own, wall]) }
        }
        let medians = (0..<names.count + 2).map { c in timed.map { $0[c] }.sorted()[timed.count / 2] }
        print(
            "median of \(timed.count): " + zip(names, medians).map { "\($0) \(fmt($1))" }.joined(separator: ", ")
                + "; the rating model's phases \(fmt(medians[names.count])) s (issue 16's target: under 14 s); "
                + "whole process \(fmt(medians[names.count + 1])) s")
        // Same run, the floors: the SGD alone on the same split, and one connection stepping through the rows.
        let rec = try Recommender(path: db, mode: .read)
        let split = try rec.loadSplit(.random(fraction: 0.1, seed: 42), maxSeq: Int64.max)
        let (userCount, itemCount, _) = try rec.catalog()
        var options = TrainingOptions()
        options.factors = 32
        options.epochs = 20
        options.threads = 2
        let (_, sgd) = try time {
            try Trainer.train(
                train: split.train, test: nil, userCount: userCount, itemCount: itemCount, scale: 1...5,
                options: options)
        }
        let reader = try Store(path: db, readOnly: true)
        var rows = 0
        let (_, scan) = try time { try reader.forEachRating(maxSeq: Int64.max) { _, _, _ in rows += 1 } }
        print(
            "same run, in process: the SGD alone (20 epochs, k 32, 2 threads, no per-epoch test) \(fmt(sgd)) s — the "
                + "training phase is \(fmt(medians[1] / sgd))× it; one connection stepping through the \(rows) "
                + "ratings \(fmt(scan)) s — loading is \(fmt(medians[0] / scan))× it")
    }

    /// Copies `source` (with its -wal and training cache, when there: the cache goes with the copy, as a first
    /// ingest leaves it) to `db`, written back to disk, as an ingest leaves its database (SQLite syncs it): otherwise
    /// the kernel writes the copy's gigabyte back during the first timed run and slows it.
    func freshCopy(of source: String, to db: String) throws {
        for suffix in ["", "-wal", "-shm", ".ratings", ".items"] {
            try? FileManager.default.removeItem(atPath: db + suffix)
        }
        for suffix in ["", "-wal", ".ratings"] where FileManager.default.fileExists(atPath: source + suffix) {
            try FileManager.default.copyItem(atPath: source + suffix, toPath: db + suffix)
            if let handle = FileHandle(forUpdatingAtPath: db + suffix) {
                try handle.synchronize()
                try handle.close()
            }
        }
    }

    /// Whole `mfrec train` processes, one variant per --train-args, each run on a fresh copy of `source`; the
    /// variants take turns (so they share the machine's mood); a first run, then `runs` more with their medians.
    /// Each child's exit status is checked; its peak memory is wait4's.
    func wholeProcesses(of source: String, dir: String) throws {
        let db = (dir as NSString).appendingPathComponent("whole.db")
        let log = (dir as NSString).appendingPathComponent("whole.log")
        let variants = trainArgs.map { $0.split(separator: " ").map(String.init) }
        section("whole `mfrec train` processes on fresh copies of \(source); load average \(loadAverage())")
        var timed = [[(seconds: Double, megabytes: Double)]](repeating: [], count: variants.count)
        for run in 0...runs {
            for (v, args) in variants.enumerated() {
                try freshCopy(of: source, to: db)
                let child = try runChild(mfrecPath, ["train", "--db", db] + args, output: log)
                let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
                guard child.status == 0 else {
                    throw BenchError(
                        "mfrec train \(args.joined(separator: " ")) exited with \(child.status): "
                            + String(output.suffix(2000)))
                }
                let times = output.split(separator: "\n").last(where: { $0.hasPrefix("times: ") }).map(String.init)
                print(
                    (run == 0 ? "first run" : "run \(run)") + ", `mfrec train \(args.joined(separator: " "))`: "
                        + "\(fmt(child.seconds)) s, peak \(fmt(child.peakMegabytes, 0)) MB"
                        + (times.map { "; \($0)" } ?? ""))
                if run > 0 { timed[v].append((child.seconds, child.peakMegabytes)) }
            }
        }
        for (v, args) in variants.enumerated() {
            let seconds = timed[v].map(\.seconds).sorted(), megabytes = timed[v].map(\.megabytes).sorted()
            print(
                "median of \(seconds.count), `mfrec train \(args.joined(separator: " "))`: "
                    + "\(fmt(medianOf(seconds))) s (runs \(fmt(seconds.first!))–\(fmt(seconds.last!))), peak "
                    + "\(fmt(medianOf(megabytes), 0)) MB (\(fmt(megabytes.first!, 0))–\(fmt(megabytes.last!, 0)))"
            )
        }
        print("load average after: \(loadAverage())")
    }

    /// Seconds from the train command's "12.34 s" or "1 min 5 s"; nil for anything else.
    static func seconds(_ text: String) -> Double? {
        let words = text.split(separator: " ")
        if words.count == 2, words[1] == "s" { return Double(words[0]) }
        if words.count == 4, words[1] == "min", words[3] == "s", let m = Double(words[0]), let s = Double(words[2]) {
            return m * 60 + s
        }
        return nil
    }

    /// LibMF's `mf-train` on the same training ratings (its text format: 0-based "user item rating" lines),
    /// 2 threads, the same k and epochs, taking turns with mfrec's in-process 2-thread SGD on the same ratings: a
    /// warm-up round, then `runs` rounds with each one's ratio and the medians. LibMF's time is its whole process
    /// (reading its text file included); its exit status is checked.
    func compareLibMF(_ libmf: String, train: RatingTriples, dir: String, userCount: Int, itemCount: Int) throws {
        let path = (dir as NSString).appendingPathComponent("libmf-\(train.count).txt")
        let model = (dir as NSString).appendingPathComponent("libmf-\(train.count).model")
        var text = ""
        text.reserveCapacity(train.count * 16)
        for j in 0..<train.count { text += "\(train.users[j]) \(train.items[j]) \(train.ratings[j])\n" }
        try text.write(toFile: path, atomically: false, encoding: .utf8)
        print(
            "LibMF \(libmf) against mfrec's SGD, taking turns (a warm-up round, then \(runs)); load average \(loadAverage())"
        )
        var ratios: [Int: [Double]] = [:], own: [Int: [Double]] = [:], theirs: [Int: [Double]] = [:]
        for round in 0...runs {
            for k in [32, 64] {
                var options = TrainingOptions()
                options.factors = k
                options.epochs = epochs
                options.threads = 2
                let (_, mfrec) = try time {
                    try Trainer.train(
                        train: train, test: nil, userCount: userCount, itemCount: itemCount, scale: 1...5,
                        options: options)
                }
                let run = try runChild(
                    libmf,
                    ["-f", "0", "-k", "\(k)", "-t", "\(epochs)", "-s", "2", "-l2", "0.1", "-r", "0.02", path, model])
                guard run.status == 0 else { throw BenchError("\(libmf) failed (exit status \(run.status))") }
                print(
                    (round == 0 ? "  warm-up" : "  round \(round)") + ", k \(k): mfrec SGD (2 threads, in process) "
                        + "\(fmt(mfrec)) s; LibMF mf-train (2 threads, whole process) \(fmt(run.seconds)) s = "
                        + "\(fmt(run.seconds / mfrec))× mfrec's time")
                if round > 0 {
                    ratios[k, default: []].append(run.seconds / mfrec)
                    own[k, default: []].append(mfrec)
                    theirs[k, default: []].append(run.seconds)
                }
            }
        }
        for k in [32, 64] {
            let r = ratios[k]!
            print(
                "LibMF, k \(k), median of \(r.count): \(fmt(medianOf(theirs[k]!))) s against mfrec's "
                    + "\(fmt(medianOf(own[k]!))) s: \(fmt(medianOf(r)))× mfrec's time (rounds \(fmt(r.min()!))–"
                    + "\(fmt(r.max()!))×); load average \(loadAverage())")
        }
    }
}
