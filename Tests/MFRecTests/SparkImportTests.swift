import Foundation
import Testing

@testable import MFEngine
@testable import MFRec
@testable import MFStore

/// `importSpark` on small hand-written Spark output folders (the layout `spark/train_als.py` writes), and
/// `exportRatings`. The real Spark round trip is `scripts/spark-roundtrip.sh` (CI runs it).
@Suite struct SparkImportTests {
    /// Users a, b, c and items x, y, z (string keys), ratings 1–5.
    func database() throws -> (Recommender, URL) {
        let dir = tempFolder()
        let data = writeFile(
            dir, "r.data", "a\tx\t5\t10\na\ty\t3\t11\nb\tx\t4\t12\nb\tz\t2\t13\nc\ty\t5\t14\nc\tz\t1\t15\n")
        let rec = try Recommender(path: dir.appendingPathComponent("t.db").path)
        try rec.ingest(path: data)
        return (rec, dir)
    }

    /// A Spark output folder: manifest, and part files per side (a name ending in .gz is gzip-compressed).
    func sparkFolder(
        _ dir: URL, _ name: String, model: String = "rating", rank: Int = 2,
        users: [String: String], items: [String: String]
    ) -> String {
        let folder = dir.appendingPathComponent(name)
        for side in ["manifest", "user_factors", "item_factors"] {
            try! FileManager.default.createDirectory(
                at: folder.appendingPathComponent(side), withIntermediateDirectories: true)
        }
        let implicit = model == "implicit"
        writeFile(
            folder, "manifest/part-00000",
            """
            {"format": "mfrec-spark-als/1", "model": "\(model)", "rank": \(rank), "parameters": {"maxIter": 5, \
            "regParam": 0.1, "alpha": 2.0, "implicitPrefs": \(implicit), "nonnegative": false, "seed": 1}, \
            "metrics": {"rmse": 0.9, "note": "text is ignored"}, "sparkVersion": "3.5.3", "rows": {"ratings": 6}}

            """)
        writeFile(folder, "user_factors/_SUCCESS", "")
        for (file, text) in users { writeFile(folder, "user_factors/\(file)", text) }
        for (file, text) in items { writeFile(folder, "item_factors/\(file)", text) }
        return folder.path
    }

    static let goodUsers = [
        "part-00000-x.json": "{\"id\":\"a\",\"features\":[1.0,0.5]}\n{\"id\":\"b\",\"features\":[0.25,-1.0]}\n",
        "part-00001-x.json.gz": "{\"id\":\"c\",\"features\":[2.0,1.0]}\n{\"id\":\"newbie\",\"features\":[0.5,0.5]}\n",
        "part-00002-x.json": "",
    ]
    static let goodItems = [
        "part-00000-y.json": "{\"id\":\"x\",\"features\":[2.0,1.0]}\n{\"id\":\"y\",\"features\":[1.5,-0.5]}\n",
        "part-00001-y.json": "{\"id\":\"w\",\"features\":[0.1,0.2]}\n",
    ]

    @Test func aRatingModelIsImportedWithItsIdsMappedAndPredictsTheDotProduct() throws {
        let (rec, dir) = try database()
        let folder = sparkFolder(dir, "als", users: Self.goodUsers, items: Self.goodItems)
        let report = try rec.importSpark(folder: folder, as: .rating)
        #expect(report.users == 4 && report.newUsers == 1 && report.items == 3 && report.newItems == 1)
        #expect(report.usersWithoutVector == 0 && report.itemsWithoutVector == 1)  // z has no vector
        #expect(report.files == 5 && report.activated && !report.keptOtherModel)
        let q = try rec.queries()
        // a·x = 1·2 + 0.5·1 = 2.5; b·x = 0.5 − 1 = −0.5, clipped to the scale's 1; c·x = 5, at the top.
        #expect(try abs(q.predict(user: "a", item: "x").rating - 2.5) < 1e-6)
        #expect(try q.predict(user: "b", item: "x").rating == 1)
        #expect(try q.predict(user: "c", item: "x").rating == 5)
        #expect(try abs(q.predict(user: "newbie", item: "w").rating - 1) < 1e-6)  // 0.15, clipped
        let info = try rec.snapshot(report.snapshotID)
        #expect(info.kind == "imported" && info.metrics?.imported?.rank == 2)
        #expect(info.metrics?.imported?.metrics == ["rmse": 0.9])
        // A rating moves it like a trained model (SGD on p_a, q_y).
        let before = try q.predict(user: "a", item: "y").rating
        try rec.rate(user: "a", item: "y", rating: 5)
        #expect(try rec.queries().predict(user: "a", item: "y").rating > before)
    }

    @Test func badFilesNameFileLineAndFieldAndChangeNothing() throws {
        let (rec, dir) = try database()
        let before = try dump(rec.store)
        let cases: [(name: String, users: [String: String], expected: MFRecError)] = [
            (
                "nan",
                [
                    "part-00000.json":
                        "{\"id\":\"a\",\"features\":[1.0,0.5]}\n{\"id\":\"b\",\"features\":[0.5,\"NaN\"]}\n"
                ],
                MFRecError.input(
                    file: "user_factors/part-00000.json", line: 2,
                    reason: "field features[1]: nan is not a finite number")
            ),
            (
                "rank", ["part-00000.json": "{\"id\":\"a\",\"features\":[1.0,0.5,2.0]}\n"],
                MFRecError.input(
                    file: "user_factors/part-00000.json", line: 1,
                    reason: "field features: 3 values, but the manifest's rank is 2")
            ),
            (
                "duplicate",
                [
                    "part-00000.json": "{\"id\":\"a\",\"features\":[1.0,0.5]}\n",
                    "part-00001.json": "{\"id\":\"b\",\"features\":[1.0,0.5]}\n{\"id\":\"a\",\"features\":[1.0,0.5]}\n",
                ],
                MFRecError.input(
                    file: "user_factors/part-00001.json", line: 2,
                    reason: "field id: \"a\" again (first at user_factors/part-00000.json:1)")
            ),
            (
                "noid", ["part-00000.json": "{\"features\":[1.0,0.5]}\n"],
                MFRecError.input(file: "user_factors/part-00000.json", line: 1, reason: "field id: missing")
            ),
        ]
        for c in cases {
            let folder = sparkFolder(dir, c.name, users: c.users, items: Self.goodItems)
            #expect(throws: c.expected, "\(c.name)") { try rec.importSpark(folder: folder, as: .rating) }
            #expect(try dump(rec.store) == before, "\(c.name)")
        }
        let notJSON = sparkFolder(dir, "text", users: ["part-0.json": "a,1.0,0.5\n"], items: Self.goodItems)
        #expect {
            try rec.importSpark(folder: notJSON, as: .rating)
        } throws: { error in
            guard case .input(let file, let line, let reason)? = error as? MFRecError else { return false }
            return file == "user_factors/part-0.json" && line == 1 && reason.hasPrefix("not a JSON object")
        }
        // The wrong kind of model for the slot, and a folder that is not Spark output.
        let implicit = sparkFolder(dir, "implicit", model: "implicit", users: Self.goodUsers, items: Self.goodItems)
        #expect(throws: MFRecError.self) { try rec.importSpark(folder: implicit, as: .rating) }
        #expect(throws: MFRecError.self) { try rec.importSpark(folder: implicit, as: .ranking) }  // no rating model yet
        #expect(throws: MFRecError.self) { try rec.importSpark(folder: dir.path, as: .rating) }
        #expect(try dump(rec.store) == before)
        #expect(!FileManager.default.fileExists(atPath: rec.itemMatrixPath))
    }

    @Test func anImplicitModelRanksByStoredVectorsUntilTheUserRatesThenByTheALSUserStep() throws {
        let (rec, dir) = try database()
        let rating = sparkFolder(dir, "rating", users: Self.goodUsers, items: Self.goodItems)
        let first = try rec.importSpark(folder: rating, as: .rating)
        let folder = sparkFolder(dir, "implicit", model: "implicit", users: Self.goodUsers, items: Self.goodItems)
        let report = try rec.importSpark(folder: folder, as: .ranking, note: "implicit")
        #expect(report.keptOtherModel && report.newUsers == 0 && report.newItems == 0)  // added by the first import
        // The rating model is the first import's.
        #expect(try abs(rec.queries().predict(user: "a", item: "x").rating - 2.5) < 1e-6)
        // Stored vector of c = (2, 1): x = 5, y = 2.5, w = 0.4; z has no vector (0).
        let list = try rec.queries().recommend(user: "c", n: 4, includeRated: true, by: .ranking)
        #expect(list.items.map(\.item) == ["x", "y", "w", "z"])
        // After a new rating, c's vector is the ALS user step over c's ratings now: y 5, z 1 (no vector), w 4.
        try rec.rate(user: "c", item: "w", rating: 4)
        let (_, _, _, stored) = try rec.store.read { try rec.reader.modelOrLive(snapshot: nil) }
        let model = try #require(stored?.0)
        let y: [Double] = [1.5, -0.5], w: [Double] = [0.1, 0.2], x: [Double] = [2.0, 1.0]
        // YᵀY over the items with vectors (x, y, w) + Σ α r y yᵀ + λ n I, b = Σ (1 + α r) y; α 2, λ 0.1, n 2.
        var a: [[Double]] = [[0.0, 0.0], [0.0, 0.0]]
        for v in [x, y, w] { for i in 0..<2 { for j in 0..<2 { a[i][j] += v[i] * v[j] } } }
        for (v, r) in [(y, 5.0), (w, 4.0)] {
            for i in 0..<2 {
                for j in 0..<2 {
                    let term: Double = 2 * r * v[i] * v[j]
                    a[i][j] += term
                }
            }
        }
        for i in 0..<2 { a[i][i] += 0.1 * 2 }
        var b: [Double] = [0, 0]
        for i in 0..<2 {
            let fromY: Double = (1 + 2 * 5.0) * y[i]
            let fromW: Double = (1 + 2 * 4.0) * w[i]
            b[i] = fromY + fromW
        }
        let det: Double = a[0][0] * a[1][1] - a[0][1] * a[1][0]
        let e0: Double = (a[1][1] * b[0] - a[0][1] * b[1]) / det
        let e1: Double = (a[0][0] * b[1] - a[1][0] * b[0]) / det
        let expected = [e0, e1]
        let ratings = try rec.store.ratings(ofUser: 2).map { (item: Int32($0.item), rating: Float($0.rating)) }
        let step = model.userVector(user: 2, ratings: ratings)
        #expect(
            abs(Double(step[0]) - expected[0]) < 1e-4 && abs(Double(step[1]) - expected[1]) < 1e-4,
            "\(step) \(expected)")
        let after = try rec.queries().recommend(user: "c", n: 4, includeRated: true, by: .ranking)
        let p0 = Double(step[0]), p1 = Double(step[1])
        let scores: [String: Double] = ["x": x, "y": y, "w": w].mapValues { (v: [Double]) -> Double in
            p0 * v[0] + p1 * v[1]
        }
        #expect(after.items.prefix(3).map(\.item) == scores.sorted { $0.value > $1.value }.map(\.key))
        // The snapshot keeps both models through freeze and rollback.
        let frozen = try rec.createSnapshot()
        try rec.rollback(to: first.snapshotID)
        #expect(throws: MFRecError.noRankingModel) {
            try rec.queries().recommend(user: "c", n: 4, includeRated: true, by: .ranking)
        }
        try rec.rollback(to: frozen)
        #expect(try rec.queries().recommend(user: "c", n: 4, includeRated: true, by: .ranking) == after)
    }

    @Test func storedUserVectorsSurviveEncoding() throws {
        let model = RankingModel.importedALS(
            ImplicitALS(alpha: 1, regularization: 0.1), factors: 2, itemVectors: [1, 0, 0, 1, 0, 0],
            hasItemVector: [true, true, false], userVectors: [0.5, 0.25, 0, 0], userHashes: [42, 0], ratingOffset: 1)
        let decoded = try #require(RankingModel(parameters: model.parameters, encoded: model.encoded()))
        #expect(decoded == model)
        #expect(decoded.storedUserCount == 2 && !decoded.hasFittedVector(2))
        // A fitted model without stored users keeps the version 2 encoding.
        let plain = RankingModel(
            parameters: .init(factors: 1), itemCount: 1, eigenvalues: [1], itemVectors: [1], itemWeights: [1])
        #expect(plain.encoded()[4] == 2)
    }

    @Test func ratingsExportStreamsEveryRatingWithOriginalIds() throws {
        let (rec, dir) = try database()
        try rec.ingest(path: writeFile(dir, "more.data", "d, \"quoted\"\tx\t3\n"))
        let csv = dir.appendingPathComponent("r.csv").path
        let report = try rec.exportRatings(to: csv, format: .csv)
        #expect(report.ratings == 7 && !report.gzip)
        let lines = try String(contentsOfFile: csv, encoding: .utf8).split(separator: "\n")
        #expect(lines.first == "user,item,rating,timestamp" && lines.count == 8)
        #expect(lines.contains("a,x,5.0,10") && lines.contains("\"d, \"\"quoted\"\"\",x,3.0,"))
        let jsonl = dir.appendingPathComponent("r.jsonl.gz").path
        #expect(try rec.exportRatings(to: jsonl, format: .jsonl).gzip)
        // Read back through the ingest path's gzip reader: every line a JSON object with the four fields.
        var rows: [[String: Any]] = []
        try LineReader(source: try openByteSource(path: jsonl)).forEachLine { bytes, _ in
            rows.append(try JSONSerialization.jsonObject(with: Data(bytes)) as! [String: Any])
            return true
        }
        #expect(rows.count == 7)
        #expect(rows.contains { $0["user"] as? String == "d, \"quoted\"" && $0["timestamp"] is NSNull })
        #expect(
            rows.contains {
                $0["user"] as? String == "c" && $0["item"] as? String == "z" && $0["rating"] as? Double == 1
            })
    }
}
