import Foundation
import TestFixtures
import Testing

/// `mfrec export --ratings` and `mfrec import spark` through the real binary: what a user sees on success and
/// on a bad part file (the full Spark round trip is `scripts/spark-roundtrip.sh`).
@Suite struct SparkCLITests {
    let dir = folder()

    func write(_ name: String, _ text: String) throws {
        let url = dir.appendingPathComponent(name)
        try FileManager.default.createDirectory(
            at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try text.write(to: url, atomically: true, encoding: .utf8)
    }

    @Test func exportRatingsThenImportAModelAndABadOne() throws {
        let db = try trainedDatabase(in: dir, name: "t.db", users: 40, items: 30, ratings: 400, epochs: 2).db
        // The ratings go out as CSV (and JSON Lines by the name), and read back by ingest into a new file.
        let csv = try mfrec(["export", "--ratings", "r.csv", "--db", db], in: dir)
        #expect(csv.status == 0 && csv.stdout.contains("wrote 400 ratings to r.csv"), "\(csv.stderr)")
        let jsonl = try mfrec(["export", "--ratings", "r.jsonl.gz", "--db", db], in: dir)
        #expect(jsonl.status == 0 && jsonl.stdout.contains("(gzip)"), "\(jsonl.stderr)")
        let again = try mfrec(["ingest", "r.csv", "--db", "copy.db"], in: dir)
        #expect(again.stdout.hasPrefix("ingested 400 ratings"), "\(again.stdout) \(again.stderr)")
        let toStdout = try mfrec(["export", "--ratings", "-", "--format", "jsonl", "--db", db], in: dir)
        #expect(toStdout.stdout.split(separator: "\n").count == 400 && toStdout.stderr.contains("wrote 400"))
        #expect(try mfrec(["export", "--ratings", "x", "--format", "npy", "--db", db], in: dir).status == 64)
        #expect(try mfrec(["export", "-o", "x", "--ratings", "y", "--db", db], in: dir).status == 64)

        // A rank-2 model for users 1 and 2 and items 1 and 2 (ids as the generated file names them).
        try write(
            "als/manifest/part-00000",
            "{\"model\": \"rating\", \"rank\": 2, \"parameters\": {\"regParam\": 0.1}}\n")
        try write(
            "als/user_factors/part-00000.json",
            "{\"id\":\"1\",\"features\":[1.0,1.0]}\n{\"id\":\"2\",\"features\":[0.5,2.0]}\n")
        try write("als/item_factors/part-00000.json", "{\"id\":\"1\",\"features\":[1.5,1.0]}\n")
        try write("als/item_factors/part-00001.json", "{\"id\":\"2\",\"features\":[2.0,0.25]}\n")
        let run = try mfrec(["import", "spark", "als", "--db", db], in: dir)
        #expect(run.status == 0, "\(run.stderr)")
        #expect(
            run.stdout.contains("imported a k = 2 rating model from 3 part files: 2 users, 2 items"), "\(run.stdout)")
        #expect(run.stdout.contains("snapshot 2 is live; its ranking model is the live one's"), "\(run.stdout)")
        #expect(try mfrec(["predict", "1", "1", "--db", db], in: dir).stdout == "2.5000\n")
        let show = try mfrec(["snapshot", "show", "2", "--db", db], in: dir).stdout
        #expect(show.contains("imported") && show.contains("no biases: a prediction is p·q clipped"), "\(show)")

        // A NaN on line 2 of a part file: exit 1, file:line:field, and the database as it was.
        try write(
            "bad/manifest/part-00000", "{\"model\": \"rating\", \"rank\": 2, \"parameters\": {\"regParam\": 0.1}}\n")
        try write(
            "bad/user_factors/part-00000.json",
            "{\"id\":\"1\",\"features\":[1.0,1.0]}\n{\"id\":\"2\",\"features\":[\"NaN\",2.0]}\n")
        try write("bad/item_factors/part-00000.json", "{\"id\":\"1\",\"features\":[1.5,1.0]}\n")
        // What the database holds, as the commands show it (the file's bytes move with WAL checkpoints).
        func state() throws -> String {
            try ["snapshot list --format csv", "info", "export --ratings -"].map {
                try mfrec($0.split(separator: " ").map(String.init) + ["--db", db], in: dir).stdout
            }.joined()
        }
        let before = try state()
        let bad = try mfrec(["import", "spark", "bad", "--db", db], in: dir)
        #expect(bad.status == 1, "\(bad.stderr)")
        #expect(
            bad.stderr.contains("user_factors/part-00000.json:2: field features[0]: nan is not a finite number"),
            "\(bad.stderr)")
        #expect(try state() == before)
        #expect(try mfrec(["import", "spark", "als", "--as", "both", "--db", db], in: dir).status == 64)
    }
}
