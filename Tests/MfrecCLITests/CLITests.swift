import Foundation
import MFEngine
import TestFixtures
import Testing

@testable import MFRec
@testable import MFStore

let uData = Fixtures.uData
let uItem = Fixtures.uItem
let haveData = Fixtures.haveMovieLens

@Suite struct CLIBasicsTests {
    /// Option values that trapped or spun (issue 12: `similar -n -1`, `eval --max-users -1`, `snapshot diff
    /// --users -1`, `eval --top 0` printing -nan, `recommend --all --threads 0` spinning) are usage errors
    /// naming the option, and create no database.
    @Test func outOfRangeOptionsAreUsageErrors() throws {
        let dir = folder()
        let db = dir.appendingPathComponent("none.db").path
        let cases: [([String], String)] = [
            (["similar", "1", "-n=-1"], "-n"), (["similar", "1", "-n", "0"], "-n"),
            (["eval", "--max-users=-1"], "--max-users"), (["eval", "--top", "0"], "--top"),
            (["snapshot", "diff", "1", "1", "--users=-1"], "--users"),
            (["recommend", "--all", "--threads", "0", "-n", "3", "--output", "x.csv"], "--threads"),
            (["recommend", "1", "-n=-1"], "-n"), (["recommend", "1", "-n", "\(Int.max)"], "-n"),
        ]
        for (arguments, option) in cases {
            let run = try mfrec(arguments + ["--db", db], in: dir)
            #expect(run.status == 64, "\(arguments): status \(run.status), \(run.stderr)")
            #expect(run.stderr.contains(option), "\(arguments): \(run.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: db))
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("x.csv").path))
    }

    @Test func itemPrecisionIsAStoredTrainingOptionAndListsStayTheF32Ones() throws {
        let dir = folder()
        let (db, _) = try trainedDatabase(in: dir, name: "p.db", users: 150, items: 120, ratings: 4_000, epochs: 5)
        let train = ["train", "--db", db, "--epochs", "5", "--quiet", "--tune", "off"]
        func lists() throws -> String {
            try (1...20).map { try mfrec(["recommend", "\($0)", "-n", "5", "--format", "csv", "--db", db]).stdout }
                .joined()
        }
        let exact = try lists()
        let before = try Data(contentsOf: URL(fileURLWithPath: db))
        let bad = try mfrec(train + ["--item-precision", "f8"])
        #expect(bad.status == 64 && bad.stderr.contains("item-precision"), "\(bad.stderr)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: db)) == before)
        #expect(try mfrec(train + ["--item-precision", "i8"]).status == 0)
        #expect(try mfrec(["info", "--db", db]).stdout.contains("item matrix scan copy: i8"))
        #expect(try mfrec(["snapshot", "show", "2", "--db", db]).stdout.contains("i8 scan copy in the item matrix"))
        #expect(try lists() == exact)
        #expect(try mfrec(train).status == 0)
        #expect(!(try mfrec(["info", "--db", db]).stdout.contains("scan copy")))
    }

    @Test func binaryExists() {
        #expect(FileManager.default.isExecutableFile(atPath: mfrecBinary), "no mfrec at \(mfrecBinary)")
    }

    @Test func badLineExitsWithStatus1AndChangesNothing() throws {
        let dir = folder()
        let db = dir.appendingPathComponent("t.db").path
        let good = dir.appendingPathComponent("good.data").path
        try "1\t2\t5\t0\n".write(toFile: good, atomically: true, encoding: .utf8)
        #expect(try mfrec(["ingest", good, "--db", db]).status == 0)
        let bad = dir.appendingPathComponent("bad.data").path
        try "3\t4\t5\t0\n3\t5\tfive\t0\n".write(toFile: bad, atomically: true, encoding: .utf8)
        let run = try mfrec(["ingest", bad, "--db", db])
        #expect(run.status == 1)
        #expect(run.stderr.contains("Error: bad.data:2: field 3 (rating): \"five\" is not a finite number"))
        let info = try mfrec(["info", "--db", db])
        #expect(info.stdout.contains("ratings      1\n"))
        #expect(info.stdout.contains("users        1\n"))
    }

    @Test func infoSaysWhenTheLiveSnapshotIsDamaged() throws {
        let dir = folder()
        let db = dir.appendingPathComponent("t.db").path
        let data = dir.appendingPathComponent("r.data").path
        _ = try SyntheticRatings(users: 60, items: 40, ratings: 600, seed: 2).write(to: data)
        #expect(try mfrec(["ingest", data, "--db", db]).status == 0)
        #expect(try mfrec(["train", "--db", db, "--tune", "off", "--epochs", "3", "--quiet"]).status == 0)
        do {
            let store = try Store(path: db)
            try store.db.execute(
                "UPDATE snapshots SET model = substr(model, 1, 100) || x'00' || substr(model, 102) WHERE id = 1")
        }
        let info = try mfrec(["info", "--db", db])
        #expect(!info.stdout.contains("none yet"))
        #expect(info.stdout.contains("model        cannot be read: snapshot 1 is corrupt"))
    }

    @Test func usageErrorsExitWith64() throws {
        let run = try mfrec(["ingest", "x", "--scale", "5:1"])
        #expect(run.status == 64)
        #expect(run.stderr.contains("--scale must be MIN:MAX"))
    }

    @Test func dbComesFromTheEnvironment() throws {
        let dir = folder()
        let db = dir.appendingPathComponent("env.db").path
        let file = dir.appendingPathComponent("r.csv").path
        try "user,item,rating\na,b,4\n".write(toFile: file, atomically: true, encoding: .utf8)
        #expect(try mfrec(["ingest", file], environment: ["MFREC_DB": db]).status == 0)
        #expect(FileManager.default.fileExists(atPath: db))
    }

    @Test func copiedBinaryCarriesItsMigrations() throws {
        let dir = folder()
        let copy = dir.appendingPathComponent("mfrec-copy").path
        try FileManager.default.copyItem(atPath: mfrecBinary, toPath: copy)
        let db = dir.appendingPathComponent("fresh.db").path
        #expect(try mfrec(["migrate", "--db", db], binary: copy).status == 1, "only ingest creates a database")
        try "1,1,3\n".write(toFile: dir.appendingPathComponent("r.csv").path, atomically: true, encoding: .utf8)
        #expect(try mfrec(["ingest", dir.appendingPathComponent("r.csv").path, "--db", db], binary: copy).status == 0)
        let run = try mfrec(["info", "--db", db], binary: copy)
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout.split(separator: "\n").contains { $0.hasPrefix("ratings ") && $0.hasSuffix(" 1") })
    }

    @Test func demoRunsEndToEnd() throws {
        let dir = folder()
        let run = try mfrec(["demo", "--folder", dir.path])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout.contains("ingested 100,000 ratings"))
        #expect(run.stdout.contains("$ mfrec recommend"))
        #expect(run.stdout.contains("rank"))
    }
}

@Suite(.enabled(if: haveData)) struct CLIMovieLensTests {
    @Test func walkthrough() throws {
        let dir = folder()
        let db = dir.appendingPathComponent("ml.db").path
        let ingest = try mfrec(["ingest", uData, "--items", uItem, "--db", db])
        #expect(ingest.status == 0, "\(ingest.stderr)")
        #expect(ingest.stdout.hasPrefix("ingested 100,000 ratings: 943 users, 1,682 items, scale 1–5"))
        let info = try mfrec(["info", "--db", db])
        #expect(info.stdout.contains("mean rating  3.52986"))
        #expect(info.stdout.contains("items        1,682 (1,682 with titles)"))

        let history = dir.appendingPathComponent("h.csv").path, plot = dir.appendingPathComponent("loss.svg").path
        let train = try mfrec(["train", "--db", db, "--epochs", "15", "--history", history, "--plot", plot])
        #expect(train.status == 0, "\(train.stderr)")
        #expect(
            train.stdout.contains("epoch  train loss  train MAE  train MSE  test MAE  test MSE  test RMSE  seconds"))
        #expect(train.stdout.contains("saved snapshot 1 (live)"))
        #expect(try String(contentsOfFile: history, encoding: .utf8).split(separator: "\n").count == 16)
        let svg = try String(contentsOfFile: plot, encoding: .utf8)
        #expect(svg.hasPrefix("<svg") && svg.contains("train MSE") && svg.contains("test MSE") && svg.contains("epoch"))

        let table = try mfrec(["recommend", "1", "-n", "5", "--db", db])
        #expect(table.status == 0)
        #expect(table.stdout.split(separator: "\n").count == 7)  // header, rule, 5 rows

        let json = try mfrec(["recommend", "1", "-n", "5", "--format", "json", "--db", db])
        let list = try JSONDecoder().decode(RecommendationList.self, from: Data(json.stdout.utf8))
        #expect(list.items.count == 5 && list.user == "1" && !list.coldStart)

        let csv = try mfrec(["recommend", "1", "-n", "5", "--format", "csv", "--db", db])
        let rows = csv.stdout.split(separator: "\n")
        #expect(rows.first == "rank,item,title,predicted_rating")
        #expect(rows.count == 6)
        // Titles with commas are quoted: the item id is the second field either way.
        #expect(rows.dropFirst().map { String($0.split(separator: ",")[1]) } == list.items.map(\.item))

        let cold = try mfrec(["recommend", "ghost", "--cold", "error", "--db", db])
        #expect(cold.status == 1)
        #expect(cold.stderr.contains("user ghost is not in the database"))
        let popular = try mfrec(["recommend", "ghost", "-n", "3", "--db", db])
        #expect(popular.status == 0 && popular.stderr.contains("most popular"))

        let predict = try mfrec(["predict", "1", "50", "--db", db])
        #expect(
            Double(predict.stdout.trimmingCharacters(in: .whitespacesAndNewlines)).map { (1...5).contains($0) } == true)
        let similar = try mfrec(["similar", "50", "-n", "3", "--db", db])
        #expect(similar.status == 0 && similar.stdout.contains("Empire Strikes Back"))
        let eval = try mfrec(["eval", "--db", db])
        #expect(eval.status == 0 && eval.stdout.contains("RMSE") && eval.stdout.contains("NDCG@10"))
        let export = try mfrec(["export", "--format", "npy", "-o", dir.appendingPathComponent("npy").path, "--db", db])
        #expect(export.status == 0 && export.stdout.contains("item_factors.npy"))
        let summary = try mfrec(["info", "--db", db])
        #expect(summary.stdout.contains("user_embedding  (943, 64)"))
        #expect(summary.stdout.contains("item_embedding  (1,682, 64)"))

        // A new user rates two items and is at once ranked by co-occurrence with them.
        for (item, rating) in [("50", "5"), ("172", "4")] {
            let rate = try mfrec(["rate", "newcomer", item, rating, "--db", db])
            #expect(rate.status == 0, "\(rate.stderr)")
        }
        let newcomer = try mfrec(["recommend", "newcomer", "-n", "5", "--explain", "--by", "cooccurrence", "--db", db])
        #expect(newcomer.status == 0, "\(newcomer.stderr)")
        #expect(newcomer.stdout.contains("Return of the Jedi") && newcomer.stdout.contains("often rated with your"))
        let newcomerJSON = try mfrec(["recommend", "newcomer", "-n", "5", "--format", "json", "--db", db])
        let newcomerList = try JSONDecoder().decode(RecommendationList.self, from: Data(newcomerJSON.stdout.utf8))
        #expect(
            newcomerList.ranking != .rating && !newcomerList.coldStart
                && !newcomerList.items.contains { ["50", "172"].contains($0.item) })
        let modelRanked = try mfrec([
            "recommend", "newcomer", "-n", "5", "--by", "rating", "--format", "json", "--db", db,
        ])
        #expect(
            try JSONDecoder().decode(RecommendationList.self, from: Data(modelRanked.stdout.utf8)).ranking == .rating)
    }
}

@Suite struct CrashSafetyTests {
    /// Kills `mfrec ingest` of a large file at random moments; the earlier data must survive intact.
    @Test func killedIngestLeavesThePreviousDataIntact() throws {
        let dir = folder()
        let db = dir.appendingPathComponent("k.db").path
        let small = dir.appendingPathComponent("small.data").path
        try "1\t1\t5\t0\n2\t2\t3\t0\n".write(toFile: small, atomically: true, encoding: .utf8)
        #expect(try mfrec(["ingest", small, "--db", db]).status == 0)
        let big = dir.appendingPathComponent("big.data").path
        #expect(
            try mfrec(["generate", "--users", "20000", "--items", "3000", "--ratings", "1500000", "-o", big]).status
                == 0)
        var rng = SystemRandomNumberGenerator()
        var killedMidway = 0
        for _ in 0..<5 {
            let process = try startMfrec(["ingest", big, "--db", db])
            usleep(UInt32.random(in: 50_000...900_000, using: &rng))
            if process.isRunning { killedMidway += 1 }
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            let store = try Store(path: db)
            #expect(try store.db.integrityCheck() == "ok")
            let count = try store.ratingCount()
            // Either the kill came first (old data only) or the ingest had committed completely.
            #expect(count == 2 || count == 1_500_002, "found \(count) ratings")
            if count != 2 { break }
        }
        #expect(killedMidway > 0, "the ingest always finished before the kill: make the file larger")
    }
}

@Suite struct SnapshotCrashTests {
    /// Kills `snapshot create`, `rollback` and `rate` with SIGKILL at random moments, many times. After
    /// each kill the database must open, pass integrity_check, be in the old or the new state, answer
    /// recommendations from the live snapshot, and no temp file may remain after the next command.
    @Test func killedSnapshotOperationsLeaveAConsistentDatabase() throws {
        let dir = folder()
        let (db, _) = try trainedDatabase(in: dir, name: "s.db", users: 3000, items: 2000, ratings: 150000, epochs: 2)
        #expect(
            try mfrec(["train", "--db", db, "--epochs", "3", "--quiet", "--factors", "32", "--tune", "off"]).status == 0
        )
        var rng = SystemRandomNumberGenerator()
        var killedRunning = 0, trials = 0
        for trial in 0..<24 {
            let before = try Recommender(path: db)
            let snapshotsBefore = try before.snapshots().map(\.id)
            let liveBefore = try before.store.liveModel()
            let ratingsBefore = try before.store.ratingCount()
            let arguments: [String]
            switch trial % 3 {
            case 0: arguments = ["snapshot", "create", "--note", "trial \(trial)"]
            case 1: arguments = ["rollback", String(snapshotsBefore[trial % snapshotsBefore.count])]
            default: arguments = ["rate", "u\(trial)", "17", "4"]
            }
            let process = try startMfrec(arguments + ["--db", db])
            usleep(UInt32.random(in: 0...60_000, using: &rng))
            if process.isRunning { killedRunning += 1 }
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            trials += 1

            let after = try Recommender(path: db)
            #expect(try after.store.db.integrityCheck() == "ok")
            let liveAfter = try after.store.liveModel()
            let snapshotsAfter = try after.snapshots().map(\.id)
            switch trial % 3 {
            case 0:  // old state, or exactly one new snapshot that is live
                #expect(
                    snapshotsAfter == snapshotsBefore
                        || (snapshotsAfter.count == snapshotsBefore.count + 1
                            && liveAfter.snapshotID == snapshotsAfter.last)
                )
            case 1:  // live is the old one or the target; a dirty model's updates were saved if it switched
                let target = snapshotsBefore[trial % snapshotsBefore.count]
                #expect(liveAfter.snapshotID == liveBefore.snapshotID || liveAfter.snapshotID == target)
                if liveBefore.dirty && liveAfter.snapshotID != liveBefore.snapshotID {
                    #expect(snapshotsAfter.count == snapshotsBefore.count + 1)
                }
            default:  // the rating is stored together with the model update, or neither
                let count = try after.store.ratingCount()
                #expect(count == ratingsBefore || (count == ratingsBefore + 1 && liveAfter.dirty))
            }
            // Queries answer from the live model whatever state the item matrix file was left in.
            let engine = try after.queries()
            let live = try after.liveState().model
            let user = try #require(try after.store.userID(forKey: "1"))
            let excluded = try after.store.ratings(ofUser: user).map { Int32($0.item) }
            let expected = ModelRanker(model: live).topN(user: user, n: 5, excluded: excluded).map(\.item)
            let got = try engine.recommend(user: "1", n: 5, by: .rating).items.map {
                try after.store.itemID(forKey: $0.item).map(Int32.init)
            }
            #expect(got == expected.map { Optional($0) })
            let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter {
                $0.contains(".tmp-")
            }
            #expect(leftovers.isEmpty, "temp files left: \(leftovers)")
        }
        #expect(killedRunning > 0, "every command finished before its kill; nothing was tested")
        print("snapshot crash test: \(trials) kills, \(killedRunning) while running, 0 inconsistent")
    }
}

/// Runs a shell command; true when it exits 0.
@discardableResult
func sh(_ command: String) -> Bool {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/bin/sh")
    p.arguments = ["-c", command]
    p.standardOutput = FileHandle.nullDevice
    p.standardError = FileHandle.nullDevice
    guard (try? p.run()) != nil else { return false }
    p.waitUntilExit()
    return p.terminationStatus == 0
}

/// Whether this process may mount file systems (root with CAP_SYS_ADMIN, as on CI here).
let canMount: Bool = {
    let dir = folder()
    let target = dir.appendingPathComponent("probe").path
    try? FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
    guard sh("mount -t tmpfs -o size=64k tmpfs '\(target)'") else { return false }
    sh("umount '\(target)'")
    return true
}()

@Suite(.serialized, .enabled(if: canMount)) struct ResourceLimitTests {
    @Test func fullDiskDuringIngestAndSnapshotLeavesThePreviousState() throws {
        let dir = folder()
        let mountPoint = dir.appendingPathComponent("small").path
        try FileManager.default.createDirectory(atPath: mountPoint, withIntermediateDirectories: true)
        #expect(sh("mount -t tmpfs -o size=3m tmpfs '\(mountPoint)'"))
        defer { sh("umount '\(mountPoint)'") }
        let db = mountPoint + "/full.db"
        let small = dir.appendingPathComponent("small.data").path, big = dir.appendingPathComponent("big.data").path
        #expect(
            try mfrec(["generate", "--users", "300", "--items", "200", "--ratings", "5000", "-o", small]).status == 0)
        #expect(
            try mfrec(["generate", "--users", "20000", "--items", "3000", "--ratings", "400000", "-o", big]).status == 0
        )
        #expect(try mfrec(["ingest", small, "--db", db]).status == 0)
        #expect(try mfrec(["train", "--db", db, "--epochs", "2", "--quiet", "--tune", "off"]).status == 0)
        let full = try mfrec(["ingest", big, "--db", db])
        #expect(full.status == 1)
        #expect(full.stderr.contains("disk is full") || full.stderr.contains("No space left"), "\(full.stderr)")
        let store = try Store(path: db)
        #expect(try store.db.integrityCheck() == "ok")
        #expect(try store.ratingCount() == 5000)
        #expect(try mfrec(["recommend", "1", "-n", "3", "--db", db]).status == 0)
        // A change to freeze, then fill what is left: the snapshot cannot fit and must fail cleanly.
        #expect(try mfrec(["rate", "1", "2", "4", "--db", db]).status == 0)
        let filler =
            FileHandle(forWritingAtPath: mountPoint + "/filler")
            ?? {
                _ = FileManager.default.createFile(atPath: mountPoint + "/filler", contents: nil)
                return FileHandle(forWritingAtPath: mountPoint + "/filler")!
            }()
        let zeros = Data(count: 64 << 10)
        while (try? filler.write(contentsOf: zeros)) != nil {}
        try? filler.close()
        let snapshots = try Recommender(path: db).snapshots().count
        let create = try mfrec(["snapshot", "create", "--db", db])
        #expect(create.status == 1, "a snapshot fitted on a full disk: \(create.stdout)")
        #expect(create.stderr.contains("Error:"))
        #expect(try Recommender(path: db, readOnly: true).snapshots().count == snapshots)
        #expect(try Store(path: db).db.integrityCheck() == "ok")
    }

    @Test func readOnlyDatabaseServesReadsAndRefusesWrites() throws {
        let dir = folder()
        let source = dir.appendingPathComponent("src").path, readOnly = dir.appendingPathComponent("ro").path
        try FileManager.default.createDirectory(atPath: source, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: readOnly, withIntermediateDirectories: true)
        let data = dir.appendingPathComponent("r.data").path
        #expect(
            try mfrec(["generate", "--users", "300", "--items", "200", "--ratings", "5000", "-o", data]).status == 0)
        #expect(try mfrec(["ingest", data, "--db", source + "/r.db"]).status == 0)
        #expect(
            try mfrec(["train", "--db", source + "/r.db", "--epochs", "2", "--quiet", "--tune", "off"]).status == 0)
        try FileManager.default.removeItem(atPath: source + "/r.db.items")  // it must be rebuilt elsewhere
        #expect(sh("mount --bind '\(source)' '\(readOnly)' && mount -o remount,ro,bind '\(readOnly)'"))
        defer { sh("umount '\(readOnly)'") }
        let db = readOnly + "/r.db"
        let recommend = try mfrec(["recommend", "1", "-n", "3", "--db", db])
        #expect(recommend.status == 0, "\(recommend.stderr)")
        #expect(recommend.stdout.split(separator: "\n").count == 5)
        #expect(try mfrec(["info", "--db", db]).status == 0)
        let rate = try mfrec(["rate", "1", "2", "3", "--db", db])
        #expect(rate.status == 1)
        #expect(rate.stderr.contains("is read-only"))
        #expect(try mfrec(["ingest", data, "--db", db]).stderr.contains("is read-only"))
    }
}

@Suite struct MoreCrashAndConcurrencyTests {
    /// Kills `mfrec train` mid-run; the database keeps its old snapshots and live model.
    @Test func killedTrainingSavesNothing() throws {
        let dir = folder()
        let (db, _) = try trainedDatabase(in: dir, name: "t.db", users: 5000, items: 2000, ratings: 300000, epochs: 1)
        let train = ["train", "--db", db, "--epochs", "30", "--quiet", "--tune", "off"]
        // One whole run first, timed: the kills land at fractions of it, so they fall mid-run on a fast host as on a
        // slow one (fixed delays let a fast host finish the later runs before their kill).
        let start = Date()
        #expect(try mfrec(train).status == 0)
        let whole = Date().timeIntervalSince(start)
        var killedRunning = 0, unchanged = 0
        let before = try Recommender(path: db)
        let firstLive = try before.store.liveModel().snapshotID!
        let firstRanking = try #require(try before.loadRankingModel(snapshot: firstLive)).0
        for trial in 0..<6 {
            let snapshotsBefore = try Recommender(path: db, readOnly: true).snapshots().map(\.id)
            let process = try startMfrec(train)
            usleep(UInt32(whole * (0.1 + 0.13 * Double(trial)) * 1e6))
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            // Only a run the kill ended tests anything; one that finished first proves nothing.
            let killed = process.terminationReason == .uncaughtSignal
            if killed { killedRunning += 1 }
            let rec = try Recommender(path: db)
            let snapshotsAfter = try rec.snapshots().map(\.id)
            if killed && snapshotsAfter == snapshotsBefore { unchanged += 1 }
            #expect(try rec.store.db.integrityCheck() == "ok")
            let live = try rec.store.liveModel().snapshotID
            let newest = try rec.snapshots().last?.id
            #expect(live == newest)
            // Both models are the previous ones, or both the new ones: never a snapshot without its ranking model.
            let ranking = try #require(try rec.loadRankingModel(snapshot: live!)).0
            if live == firstLive { #expect(ranking == firstRanking) }
            let list = try rec.queries().recommend(user: "1", n: 3)
            #expect(list.items.count == 3 && list.ranking == .ranking)
        }
        // Most kills land mid-training (loading, epochs, tuning): those must have saved nothing.
        #expect(killedRunning >= 4, "only \(killedRunning) of 6 runs were killed before they finished")
        #expect(unchanged >= 3, "only \(unchanged) killed runs left the snapshots as they were")
    }

    /// `mfrec recommend` processes run while another process rates, snapshots and rolls back:
    /// every reader answers (no "database is locked" reaches the user).
    @Test func readerProcessesDuringWrites() throws {
        let dir = folder()
        let (db, _) = try trainedDatabase(in: dir, name: "c.db", users: 500, items: 300, ratings: 20000, epochs: 3)
        let writes = ThreadBox<[(arguments: [String], status: Int32, stderr: String)]>()
        writes.value = []
        let writing = DispatchGroup()
        writing.enter()
        let writer = Thread {
            defer { writing.leave() }
            func write(_ arguments: [String]) {
                let run = try? mfrec(arguments + ["--db", db])
                writes.mutate { $0!.append((arguments, run?.status ?? -1, run?.stderr ?? "did not start")) }
            }
            for round in 0..<30 {
                write(["rate", String(1 + round), String(1 + round * 3), "4"])
                if round % 10 == 9 { write(["snapshot", "create"]) }
                if round % 15 == 14 { write(["rollback", "1"]) }
            }
        }
        writer.start()
        var failures = 0, runs = 0
        while writing.wait(timeout: .now()) == .timedOut || runs < 10 {
            let run = try mfrec(["recommend", String(1 + runs % 50), "-n", "5", "--format", "csv", "--db", db])
            runs += 1
            if run.status != 0 || run.stdout.split(separator: "\n").count != 6 { failures += 1 }
        }
        #expect(failures == 0)
        let done = writes.value!
        #expect(done.count == 35)
        for w in done { #expect(w.status == 0, "\(w.arguments) failed: \(w.stderr)") }
        print(
            "concurrency (processes): \(runs) recommend processes during \(done.count) writes "
                + "(\(done.filter { $0.status == 0 }.count) succeeded), \(failures) reader failures")
    }

    /// Issue 12, defect 7: two `mfrec rate` processes hammer one item matrix file; afterwards the file is the
    /// live model's, row for row (as a rebuild from SQLite would write it).
    @Test func twoRatingProcessesLeaveTheItemMatrixOfTheLiveModel() throws {
        let dir = folder()
        let (db, _) = try trainedDatabase(in: dir, name: "r.db", users: 300, items: 200, ratings: 9000, epochs: 2)
        let results = ThreadBox<[Int32]>()
        results.value = []
        let group = DispatchGroup()
        for p in 0..<2 {
            DispatchQueue.global().async(group: group) {
                for round in 0..<25 {
                    // Both processes rate the same few items, so their row writes would collide.
                    let item = String(1 + (round % 5))
                    let run = try? mfrec(["rate", String(1 + p * 100 + round), item, String(1 + round % 5), "--db", db])
                    results.mutate { $0!.append(run?.status ?? -1) }
                }
            }
        }
        group.wait()
        #expect(results.value!.count == 50 && results.value!.allSatisfy { $0 == 0 }, "\(results.value!)")
        let rec = try Recommender(path: db, readOnly: true)
        let state = try rec.liveState()
        #expect(state.live.updates == 50)
        let ranking = try #require(state.ranking?.model)
        let matrix = try ItemMatrix.open(
            path: rec.itemMatrixPath, generation: UInt64(state.live.generation), snapshotID: UInt64(state.snapshot.id),
            factors: state.model.factors, itemCount: state.model.itemCount,
            ranking: ItemMatrix.Shape(itemCount: ranking.itemCount, factors: ranking.factors))
        for i in 0..<state.model.itemCount {
            let row = matrix.item(i)
            #expect(row.vector == Array(state.model.itemVector(i)) && row.bias == state.model.itemBias[i], "item \(i)")
        }
        // The ranking section too: every row the raters moved, as SQLite has it.
        for i in 0..<ranking.itemCount {
            let row = matrix.rankingItem(i), want = ranking.itemRow(i)
            #expect(row.vector == want.vector && row.popularity == want.popularity, "ranking item \(i)")
        }
    }

    /// Seeded random command lines against a trained database (so model paths run, not just "no model"),
    /// each under a 20 s timeout: every one ends with status 0, 1 or 64.
    @Test func randomArgumentsNeverCrashTheBinary() throws {
        let dir = folder()
        let db = try trainedDatabase(in: dir, name: "a.db", users: 60, items: 60, ratings: 900, epochs: 2).db
        let words = [
            "ingest", "train", "recommend", "predict", "similar", "snapshot", "rollback", "rate", "eval", "export",
            "info",
            "generate", "list", "show", "create", "diff", "delete", "prune", "--db", db, "-n", "--factors", "0", "-1",
            "1e9",
            "abc", "--format", "json", "--all", "--output", "", "--keep", "--scale", "5:1", "nan", "--epochs", "3,5",
            "🙂",
            "--test-fraction", "1.5", "--cold", "error", "--threads", "--help", "--update", "missing/deeper", "\u{0}",
        ]
        var rng = SeededGenerator(seed: 20_261_130)
        var statuses: [Int32: Int] = [:]
        for _ in 0..<120 {
            var args = (0..<(1 + rng.next(below: 5))).map { _ in
                words[rng.next(below: words.count)].replacingOccurrences(of: "\u{0}", with: "")
            }
            // Half the lines name the trained database; relative paths (`--db similar`, the default mfrec.db)
            // land in the temp folder.
            if rng.next(below: 2) == 0 { args += ["--db", db] }
            let run = try mfrecWithTimeout(args, in: dir, seconds: 20)
            #expect(run != nil, "\(args) did not finish in 20 s")
            guard let run else { continue }
            statuses[run.status, default: 0] += 1
            #expect([0, 1, 64].contains(run.status), "\(args) exited \(run.status): \(run.stderr.prefix(300))")
        }
        print("fuzz (CLI arguments): 120 random command lines, exit statuses \(statuses.sorted { $0.key < $1.key })")
    }
}
