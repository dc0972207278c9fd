import Foundation
import TestFixtures
import Testing

/// Issue 12, defect 9 (the command line): each smaller defect, shown with the real binary.
@Suite struct SmallDefectTests {
    let dir = folder()

    func trained() throws -> String {
        try trainedDatabase(in: dir, name: "t.db", users: 150, items: 90, ratings: 4000, epochs: 2).db
    }

    func write(_ name: String, _ text: String) throws -> String {
        let path = dir.appendingPathComponent(name).path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func countsAreSingularOrPluralAndAnEmptyFileWarns() throws {
        let one = try mfrec(["ingest", try write("one.csv", "1,1,3\n"), "--db", "one.db"], in: dir)
        #expect(one.stdout.hasPrefix("ingested 1 rating: 1 user, 1 item, scale 1–5"), "\(one.stdout)")
        let empty = try mfrec(["ingest", try write("empty.csv", ""), "--db", "one.db"], in: dir)
        #expect(
            empty.status == 0 && empty.stderr.contains("empty.csv holds no ratings; nothing was stored"),
            "\(empty.stderr)")
    }

    @Test func snapshotCreateWithoutChangesMakesNoDuplicate() throws {
        let db = try trained()
        let run = try mfrec(["snapshot", "create", "--db", db], in: dir)
        #expect(run.stdout.contains("nothing changed since snapshot 1 (live): no snapshot made"), "\(run.stdout)")
        #expect(try mfrec(["rate", "1", "2", "4", "--db", db], in: dir).status == 0)
        #expect(try mfrec(["snapshot", "create", "--db", db], in: dir).stdout.contains("saved snapshot 2 (live)"))
        let csv = try mfrec(["snapshot", "list", "--format", "csv", "--db", db], in: dir)
        let lines = csv.stdout.split(separator: "\n")
        #expect(lines.first == "id,live,created,kind,k,test_rmse,test_mae,ratings_seen,note", "\(csv.stdout)")
        #expect(lines.count == 3 && lines[2].hasPrefix("2,1,"), "\(csv.stdout)")
    }

    @Test func evalJSONHasRMSEAndSimilarRefusesAnItemWithoutAVector() throws {
        let db = try trained()
        let json = try mfrec(["eval", "--json", "--db", db], in: dir)
        let object = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
        let error = object?["error"] as? [String: Any]
        let rmse = error?["rmse"] as? Double, mse = error?["mse"] as? Double
        #expect(rmse != nil && mse != nil && abs(rmse! - mse!.squareRoot()) < 1e-9, "\(json.stdout.prefix(300))")
        // An item stored after training (no --update) has no vector: a clear error, not an empty table.
        #expect(try mfrec(["ingest", try write("more.csv", "1,brand-new,4\n"), "--db", db], in: dir).status == 0)
        let similar = try mfrec(["similar", "brand-new", "--db", db], in: dir)
        #expect(similar.status == 1 && similar.stderr.contains("item brand-new has no vector"), "\(similar.stderr)")
    }

    @Test func infoShowsTheLiveShapeAndUpdateCountsAgree() throws {
        let db = try trained()
        let update = try mfrec(
            [
                "ingest", "--update", try write("new.csv", "user,item,rating\nnewcomer,1,5\nnewcomer,new-item,4\n"),
                "--db", db,
            ], in: dir)
        #expect(update.status == 0, "\(update.stderr)")
        #expect(update.stdout.contains("folded in 1 user and 1 item without a vector"), "\(update.stdout)")
        #expect(update.stdout.contains("1 new user, 1 new item"), "\(update.stdout)")
        let info = try mfrec(["info", "--db", db], in: dir)
        #expect(info.stdout.contains("user_embedding  (151, "), "\(info.stdout)")
        #expect(info.stdout.contains("item_embedding  (91, "), "\(info.stdout)")
    }
}

/// Issue 12, defect 8: the portable kernels (MFREC_PORTABLE_KERNELS=1) give the same lists as the
/// AVX2+FMA ones, so both paths are tested on a machine that has AVX2.
@Suite struct PortableKernelTests {
    @Test func portableAndVectorizedKernelsAgree() throws {
        let dir = folder()
        let db = try trainedDatabase(in: dir, name: "k.db", users: 200, items: 150, ratings: 8000, epochs: 3).db
        var lists: [[Substring]] = []
        for portable in ["0", "1"] {
            let out = dir.appendingPathComponent("all-\(portable).csv").path
            let run = try mfrec(
                ["recommend", "--all", "--by", "rating", "-n", "5", "--output", out, "--db", db],
                environment: ["MFREC_PORTABLE_KERNELS": portable])
            #expect(run.status == 0, "\(run.stderr)")
            lists.append(try String(contentsOfFile: out, encoding: .utf8).split(separator: "\n"))
        }
        #expect(lists[0].count == 1 + 5 * 200 && lists[0].count == lists[1].count)
        // Same items in the same order, except where two scores tie within rounding.
        let same = zip(lists[0], lists[1]).filter { $0.split(separator: ",")[2] == $1.split(separator: ",")[2] }.count
        #expect(Double(same) >= 0.99 * Double(lists[0].count), "\(same) of \(lists[0].count) rows agree")
        // Training runs on the portable kernels too (same seed: nearly the same model).
        let train = try mfrec(
            ["train", "--db", db, "--epochs", "3", "--tune", "off", "--quiet"],
            environment: ["MFREC_PORTABLE_KERNELS": "1"])
        #expect(train.status == 0, "\(train.stderr)")
    }
}
