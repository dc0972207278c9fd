import ArgumentParser
import Foundation
import MFEngine
import MFRec
import MFStore

struct IncrementalBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "incremental",
        abstract: "Quality and speed of incremental updates on ML-100K, against a full retrain.",
        discussion: """
            Quality: ratings sorted by time; train on the first 90%; a fixed random half of the last 10% is \
            the probe set (RMSE₀); the other half is streamed through `ingest --update` (RMSEᵢ); a model is \
            retrained from scratch on the first 90% plus the streamed half (RMSEᵣ). Cold users: users that \
            appear only in the last 10% rate 10 items incrementally; their top-10 is compared with the \
            popular list on their other held-out ratings. Speed: batched ingest --update throughput, \
            single-rating latency in process including the durable commit, and the whole `mfrec rate` process.
            """)

    @Option(help: "SGD steps per rating.") var steps = UpdateOptions().steps
    @Option(help: "Learning rate of the updates (default: the model's).") var learningRate: Float?
    @Option(help: "Fold-in prior of the updates (default: the model's).") var foldInPrior: Double?
    @Flag(help: "Skip the speed measurements.") var qualityOnly = false
    @Flag(help: "Shuffle the ratings (seeded) instead of sorting them by time: streaming on a random split.")
    var randomOrder = false
    @Flag(
        help: ArgumentHelp(
            "Use the validation window instead: train on the first 80% by time, probe and stream the next 10% (the "
                + "last 10% is never read).")
    )
    var validation = false
    @Option(help: "Exponent α of the co-occurrence normalization (d_i d_j)^α.") var exponent = CooccurrenceEmbedding
        .defaultExponent
    @Option(
        help: ArgumentHelp(
            "Measure only single-rating latency on a generated model with this many ratings (25000000 for 25M), "
                + "trained with --tune off, next to the same model trained with --ranking off (0: ML-100K)."))
    var largeRatings = 0
    @Option(help: "Users of the generated model.") var largeUsers = 162_541
    @Option(help: "Items of the generated model.") var largeItems = 59_047
    @OptionGroup var scale: Scale

    func validate() throws {
        guard largeRatings >= 0, largeUsers > 0, largeItems > 0 else {
            throw ValidationError("--large-ratings must be ≥ 0 and --large-users, --large-items > 0")
        }
    }

    func run() throws {
        let dir = try scale.makeFolder()
        defer { scale.removeFolder(dir) }
        if largeRatings > 0 { return try largeLatency(dir: dir) }
        guard FileManager.default.fileExists(atPath: sharedML100K) else { throw BenchError("needs \(sharedML100K)") }
        let text = try String(contentsOfFile: sharedML100K, encoding: .utf8)
        var lines = text.split(separator: "\n").map { $0.split(separator: "\t").map(String.init) }
        lines.sort { (Int($0[3])!, $0[0], $0[1]) < (Int($1[3])!, $1[0], $1[1]) }
        if randomOrder {
            // A random split instead of a time split: the same windows over a seeded shuffle.
            var shuffle = SeededGenerator(seed: 77)
            lines.shuffle(using: &shuffle)
        }
        // The test window is the last 10% by time; --validation moves everything back by 10% (the window
        // used to choose the co-occurrence exponent).
        let end = validation ? lines.count * 9 / 10 : lines.count, cut = end - lines.count / 10
        let head = Array(lines[..<cut]), tail = Array(lines[cut..<end])
        var rng = SeededGenerator(seed: 2024)
        var probe: [[String]] = [], stream: [[String]] = []
        for line in tail { if rng.nextDouble() < 0.5 { probe.append(line) } else { stream.append(line) } }
        func write(_ rows: [[String]], _ name: String) throws -> String {
            let path = (dir as NSString).appendingPathComponent(name)
            try (rows.map { $0.joined(separator: "\t") }.joined(separator: "\n") + "\n").write(
                toFile: path, atomically: true, encoding: .utf8)
            return path
        }
        let headPath = try write(head, "head.data"), probePath = try write(probe, "probe.data"),
            streamPath = try write(stream, "stream.data")
        let headAndStream = try write(head + stream, "head-stream.data")
        var request = TrainRequest()
        request.testFraction = 0
        request.cooccurrenceExponent = exponent

        section(
            "quality on ML-100K "
                + "\(randomOrder ? "in random order" : "sorted by time")\(validation ? ", validation window" : ""), co-occurrence exponent \(exponent): train \(head.count), stream \(stream.count), probe \(probe.count)"
        )
        let db = (dir as NSString).appendingPathComponent("inc.db")
        let rec = try Recommender(path: db)
        try rec.ingest(path: headPath)
        try rec.train(request)
        // All three RMSEs through the same path (`predict` on the live model), so they compare.
        let rmse0 = try evaluateLive(rec, probePath)
        let headUserKeys = Set(head.map { $0[0] })
        let rankingBefore = try probeRanking(rec, probe, users: headUserKeys)
        let (_, update) = try rec.ingestUpdating(
            path: streamPath, update: UpdateOptions(steps: steps, learningRate: learningRate, foldInPrior: foldInPrior))
        let rmseI = try evaluateLive(rec, probePath)
        let retrain = try Recommender(path: (dir as NSString).appendingPathComponent("retrain.db"))
        try retrain.ingest(path: headAndStream)
        try retrain.train(request)
        let rmseR = try evaluateLive(retrain, probePath)
        print(
            "RMSE₀ (before the stream) \(fmt(rmse0, 4)); RMSEᵢ (after ingest --update, \(update.ratings) ratings, "
                + "\(update.foldedUsers) users and \(update.foldedItems) items folded in, \(fmt(update.seconds * 1e3, 0)) ms) \(fmt(rmseI, 4)); RMSEᵣ (full retrain) \(fmt(rmseR, 4))"
        )
        let recovered = (rmse0 - rmseI) / max(rmse0 - rmseR, 1e-12)
        print("recovered \(fmt(recovered * 100, 1))% of the retrain's gain (target ≥ 50%)")
        // The ranking model on the same probe: NDCG@10 (relevant: probe ratings ≥ 4) before the stream, after
        // it (the users' vectors include the streamed ratings), and after the retrain.
        print(
            "ranking model, NDCG@10 / P@10 on the probe (relevant ≥ 4; users known before the stream): no update "
                + "\(rankingBefore.text); "
                + "after ingest --update \(try probeRanking(rec, probe, users: headUserKeys).text); full retrain "
                + "\(try probeRanking(retrain, probe, users: headUserKeys).text)"
        )

        // Cold users: users first seen in the last 10%. Each rates their first `known` items (in time order)
        // incrementally; their top-10 is scored against their later ratings in the last 10%. The first pass gives
        // 10 ratings (the issue's target), the second 3 (the newest arrivals, answered by the same rule).
        let headUsers = Set(head.map { $0[0] })
        for (pass, known) in [10, 3].enumerated() {
            var tailByUser: [String: [[String]]] = [:]
            for line in tail where !headUsers.contains(line[0]) { tailByUser[line[0], default: []].append(line) }
            let coldDB = (dir as NSString).appendingPathComponent("cold\(known).db")
            let cold = try Recommender(path: coldDB)
            try cold.ingest(path: headPath)
            let coldOutcome = try cold.train(request)
            if pass == 0, let choice = coldOutcome.ranking {
                print(
                    "light-user rule: below \(choice.lightBelow) ratings \(choice.lightRanker.rawValue), popularity "
                        + "weight \(choice.lightPopularityWeight)"
                        + (choice.lightDecay < 1 ? ", recency decay \(choice.lightDecay)" : "")
                        + (choice.newcomers.map {
                            String(
                                format: " (newcomer simulation: %d users, ranking %.4f, light %.4f, popular %.4f)",
                                $0.users, $0.mainNDCG, $0.lightNDCG, $0.popularNDCG)
                        } ?? ""))
                print("ranking model: \(choice.parameters)")
            }
            let queries = try cold.queries()
            // Relevant = any later rating (the issue's "held-out ratings"), and the stricter: rated ≥ 4.
            var hits = [String: (any: Double, liked: Double)](), users = (any: 0, liked: 0), differ = 0,
                rankings: [Ranking: Int] = [:]
            func score(_ name: String, _ list: [String], any: Set<String>, liked: Set<String>) {
                var h = hits[name] ?? (0, 0)
                h.any += Double(list.prefix(10).filter { any.contains($0) }.count) / 10
                if !liked.isEmpty { h.liked += Double(list.prefix(10).filter { liked.contains($0) }.count) / 10 }
                hits[name] = h
            }
            for (user, rows) in tailByUser.sorted(by: { $0.key < $1.key }) where rows.count > 10 {
                let given = rows.prefix(known), held = rows.dropFirst(known)
                let any = Set(held.map { $0[1] }), liked = Set(held.filter { Double($0[2])! >= 4 }.map { $0[1] })
                let before = try queries.recommend(user: user, n: 10)  // unknown user: the popular list
                try cold.rate(
                    given.map { NewRating(user: $0[0], item: $0[1], rating: Double($0[2])!) },
                    options: UpdateOptions(steps: steps, learningRate: learningRate, foldInPrior: foldInPrior))
                let product = try queries.recommend(user: user, n: 10)  // what `mfrec recommend USER` answers
                let model = try queries.recommend(user: user, n: 10, by: .rating)  // the rating model alone
                let ranking = try queries.recommend(user: user, n: 10, by: .ranking)
                let cooccurrence = try queries.recommend(user: user, n: 10, by: .cooccurrence)
                let exclude = Set(given.map { $0[1] })
                let popular = try queries.recommend(user: "no-such-user-\(user)", n: 20).items.map(\.item).filter {
                    !exclude.contains($0)
                }
                rankings[product.ranking, default: 0] += 1
                if Set(product.items.map(\.item)) != Set(before.items.map(\.item)) { differ += 1 }
                score("mfrec recommend (default)", product.items.map(\.item), any: any, liked: liked)
                score("rating model alone (--by rating)", model.items.map(\.item), any: any, liked: liked)
                score("ranking model alone (--by ranking)", ranking.items.map(\.item), any: any, liked: liked)
                score("co-occurrence alone (--by cooccurrence)", cooccurrence.items.map(\.item), any: any, liked: liked)
                score("popular list (minus the rated)", popular, any: any, liked: liked)
                users.any += 1
                if !liked.isEmpty { users.liked += 1 }
            }
            print(
                "cold users (first seen in the window, > 10 ratings) after \(known) ratings: \(users.any); answered by "
                    + "\(rankings.map { "\($0.key.rawValue) \($0.value)" }.sorted().joined(separator: ", ")); "
                    + "top-10 differs from the popular list for \(differ) of \(users.any)")
            print(
                "precision@10 on their later ratings (any rating / rated ≥ 4, over the \(users.liked) users with one):")
            for (name, h) in hits.sorted(by: { $0.value.any > $1.value.any }) {
                print(
                    "  \(name.padding(toLength: 46, withPad: " ", startingAt: 0)) "
                        + "\(fmt(h.any / Double(max(users.any, 1)), 4)) / \(fmt(h.liked / Double(max(users.liked, 1)), 4))"
                )
            }
        }

        guard !qualityOnly else { return }
        section("speed")
        // Batched: the whole stream through ingest --update, five times, each into a fresh copy of the same
        // trained database (closed first, which checkpoints its WAL, so no run pays for the training's checkpoint).
        let trainedDB = (dir as NSString).appendingPathComponent("trained.db")
        do {
            let trained = try Recommender(path: trainedDB)
            try trained.ingest(path: headPath)
            try trained.train(request)
        }
        var batches: [UpdateReport] = []
        var speedDB = ""
        var speed: Recommender?
        for run in 0..<5 {
            speedDB = (dir as NSString).appendingPathComponent("speed\(run).db")
            try FileManager.default.copyItem(atPath: trainedDB, toPath: speedDB)
            try FileManager.default.copyItem(atPath: trainedDB + ".items", toPath: speedDB + ".items")
            speed = try Recommender(path: speedDB)
            batches.append(try speed!.ingestUpdating(path: streamPath).1)
        }
        let seconds = batches.map(\.seconds).sorted()
        let (_, plain) = try time {
            try Recommender(path: (dir as NSString).appendingPathComponent("plain.db")).ingest(path: streamPath)
        }
        print(
            "ingest --update: \(batches[0].ratings) ratings, median of 5 runs \(fmt(seconds[2] * 1e3, 1)) ms = "
                + "\(rate(Double(batches[0].ratings), seconds[2])) ratings/s "
                + "(fastest \(fmt(seconds[0] * 1e3, 1)) ms, slowest \(fmt(seconds[4] * 1e3, 1)) ms); plain ingest "
                + "of the same file into an empty database: \(fmt(plain * 1e3, 1)) ms"
        )
        var latencies: [Double] = []
        for j in 0..<1000 {
            let line = probe[j % probe.count]
            latencies.append(try time { try speed!.rate(user: line[0], item: line[1], rating: Double(line[2])!) }.1)
        }
        latencies.sort()
        print(
            "single rating in process (store + update + durable commit + item matrix row): p50 "
                + "\(fmt(percentile(latencies, 0.5) * 1e3, 3)) ms, p99 \(fmt(percentile(latencies, 0.99) * 1e3, 3)) ms"
        )
        var process: [Double] = []
        for j in 0..<20 {
            let line = probe[j]
            process.append(try runChild(mfrecPath, ["rate", line[0], line[1], line[2], "--db", speedDB]).seconds)
        }
        process.sort()
        print(
            "whole process `mfrec rate`: p50 \(fmt(percentile(process, 0.5) * 1e3, 1)) ms, max "
                + "\(fmt(process.last! * 1e3, 1)) ms"
        )
    }

    /// NDCG@10 and P@10 of the default lists of the probe's users (known to the database) on their probe
    /// ratings ≥ 4, as `recommend` answers now.
    func probeRanking(_ rec: Recommender, _ probe: [[String]], users known: Set<String>) throws -> (
        ndcg: Double, precision: Double, text: String
    ) {
        let engine = try rec.queries()
        var relevant: [String: Set<String>] = [:]
        for line in probe where Double(line[2])! >= 4 { relevant[line[0], default: []].insert(line[1]) }
        var ndcg = 0.0, precision = 0.0, users = 0
        for (user, items) in relevant.sorted(by: { $0.key < $1.key }) {
            guard known.contains(user) else { continue }
            let list = try engine.recommend(user: user, n: 10, by: .ranking).items.map(\.item)
            var dcg = 0.0, hits = 0
            for (rank, item) in list.enumerated() where items.contains(item) {
                dcg += 1 / log2(Double(rank) + 2)
                hits += 1
            }
            let ideal = (0..<min(items.count, 10)).reduce(0.0) { $0 + 1 / log2(Double($1) + 2) }
            ndcg += dcg / ideal
            precision += Double(hits) / 10
            users += 1
        }
        let n = Double(max(users, 1))
        return (ndcg / n, precision / n, "\(fmt(ndcg / n, 4)) / \(fmt(precision / n, 4)) (\(users) users)")
    }

    /// RMSE of the live model (snapshot + incremental updates) on a ratings file.
    func evaluateLive(_ rec: Recommender, _ path: String) throws -> Double {
        let engine = try rec.queries()
        var sq = 0.0, n = 0
        let text = try String(contentsOfFile: path, encoding: .utf8)
        for line in text.split(separator: "\n") {
            let f = line.split(separator: "\t").map(String.init)
            let predicted = (try? engine.predict(user: f[0], item: f[1]).rating) ?? 3.5
            let e = Double(f[2])! - predicted
            sq += e * e
            n += 1
        }
        return (sq / Double(n)).squareRoot()
    }

    /// `rate` in process on a large generated model: the ranking model's item-side update and the rating
    /// model's step, against the same data trained without a ranking model (the rating model's step and the
    /// durable commit alone), same run, same random pairs.
    func largeLatency(dir: String) throws {
        section("single-rating latency on \(largeRatings) generated ratings (\(largeUsers) × \(largeItems))")
        let data = (dir as NSString).appendingPathComponent("large.data")
        let generated = try runChild(
            mfrecPath,
            [
                "generate", "--users", "\(largeUsers)", "--items", "\(largeItems)", "--ratings", "\(largeRatings)",
                "-o", data,
            ])
        guard generated.status == 0 else { throw BenchError("mfrec generate failed") }
        var rng = SeededGenerator(seed: 31)
        let pairs = (0..<4400).map { _ in
            (
                "\(1 + Int(rng.next() % UInt64(largeUsers)))", "\(1 + Int(rng.next() % UInt64(largeItems)))",
                Double(1 + rng.next() % 5)
            )
        }
        var medians: [String: Double] = [:]
        func measure(_ rec: Recommender, _ name: String, _ pairs: ArraySlice<(String, String, Double)>) throws {
            var latencies: [Double] = []
            for (n, (user, item, rating)) in pairs.enumerated() {
                let seconds = try time { try rec.rate(user: user, item: item, rating: rating) }.1
                if n >= 200 { latencies.append(seconds) }  // the first 200 warm up (the model is loaded by the first)
            }
            latencies.sort()
            medians[name] = percentile(latencies, 0.5)
            let slow = latencies.filter { $0 > 0.005 }.count
            print(
                "\(name): rate in process p50 \(fmt(percentile(latencies, 0.5) * 1e3, 3)) ms, p90 "
                    + "\(fmt(percentile(latencies, 0.9) * 1e3, 3)) ms, p99 \(fmt(percentile(latencies, 0.99) * 1e3, 3)) ms, "
                    + "p99.9 \(fmt(percentile(latencies, 0.999) * 1e3, 3)) ms, max \(fmt(latencies.last! * 1e3, 3)) ms; "
                    + "\(slow) of \(latencies.count) over 5 ms (after 200 warm-up)")
        }
        for (name, extra) in [
            ("with the ranking model", [String]()), ("--ranking off (baseline)", ["--ranking", "off"]),
        ] {
            let db = (dir as NSString).appendingPathComponent("large-\(medians.count).db")
            for step in [["ingest", data, "--db", db], ["train", "--db", db, "--quiet", "--tune", "off"] + extra] {
                let run = try runChild(mfrecPath, step)
                guard run.status == 0 else { throw BenchError("mfrec \(step.joined(separator: " ")) failed") }
            }
            // SQLite's automatic checkpoint (the write that takes the log past 1,000 pages runs it), then the
            // library's default: a background thread of the recommender checkpoints from a connection of its own.
            do {
                let rec = try Recommender(path: db, mode: .write, checkpointing: .inWrites)
                try measure(rec, name + ", checkpoint in the write", pairs[0..<2200])
            }
            do {
                let rec = try Recommender(path: db, mode: .write)
                try measure(rec, name + ", background checkpoint (default)", pairs[2200...])
            }
            try? FileManager.default.removeItem(atPath: db)
        }
        if let a = medians["with the ranking model, background checkpoint (default)"],
            let b = medians["--ranking off (baseline), background checkpoint (default)"]
        {
            print("p50 ratio with / without the ranking model: \(fmt(a / b, 2))×")
        }
    }
}
