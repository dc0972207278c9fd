import Foundation
import Testing

@testable import MFRec
@testable import MFStore

@Suite struct IngestFormatTests {
    static let cases: [(name: String, text: String)] = [
        ("u.data", "1\t10\t5\t881250949\n2\t10\t3\t891717742\n1\t20\t4\t878887116\n"),
        ("ratings.dat", "1::10::5::881250949\n2::10::3::891717742\n1::20::4::878887116\n"),
        (
            "ratings.csv",
            "userId,movieId,rating,timestamp\n1,10,5.0,881250949\n2,10,3.0,891717742\n1,20,4.0,878887116\n"
        ),
        ("variant.csv", "user_id,item_id,rating\n1,10,5\n2,10,3\n1,20,4\n"),
        ("reordered.csv", "rating,item_id,user_id\n5,10,1\n3,10,2\n4,20,1\n"),
        ("noheader.csv", "1,10,5\n2,10,3\n1,20,4\n"),
        (
            "quoted.csv",
            "\"userId\",\"movieId\",\"rating\"\n\"1\",\"10\",\"5\"\n\"2\",\"10\",\"3\"\n\"1\",\"20\",\"4\"\n"
        ),
        ("crlf-bom.data", "\u{FEFF}1\t10\t5\t881250949\r\n2\t10\t3\t891717742\r\n1\t20\t4\t878887116\r\n\r\n"),
        ("no-final-newline.dat", "1::10::5::881250949\n2::10::3::891717742\n1::20::4::878887116"),
    ]

    @Test(arguments: cases, [false, true])
    func everyFormatPlainAndGzip(file: (name: String, text: String), gzip: Bool) throws {
        let dir = tempFolder()
        let path = writeFile(dir, file.name + (gzip ? ".gz" : ""), file.text)
        let rec = try Recommender(path: dir.appendingPathComponent("t.db").path)
        let report = try rec.ingest(path: path)
        #expect(report.ratingsRead == 3)
        #expect(try rec.store.userKeys() == ["1", "2"])
        #expect(try rec.store.itemKeys() == ["10", "20"])
        #expect(try rec.store.ratings(ofUser: 0).map(\.rating) == [5, 4])
        #expect(try rec.store.ratings(ofUser: 1).map { [Double($0.item), $0.rating] } == [[0, 3]])
        #expect(try rec.store.ratingScale() == 1...5)  // the smallest standard scale holding 3…5
    }

    @Test func formatIsDetected() throws {
        let dir = tempFolder()
        for (name, text) in Self.cases.prefix(3) {
            let reader = try RatingsReader(path: writeFile(dir, name, text))
            #expect(reader.format == [.udata, .dat, .csv][Self.cases.firstIndex { $0.name == name }!])
        }
    }

    @Test func repeatedPairKeepsTheLaterLine() throws {
        let dir = tempFolder()
        let rec = try Recommender(path: dir.appendingPathComponent("t.db").path)
        let report = try rec.ingest(path: writeFile(dir, "r.data", "1\t10\t5\t1\n1\t10\t2\t2\n"))
        #expect(report.ratingsReplaced == 1)
        #expect(try rec.store.ratingCount() == 1)
        #expect(try rec.store.ratings(ofUser: 0).first?.rating == 2)
        // A second file re-rates and keeps the ids dense and stable.
        try rec.ingest(path: writeFile(dir, "s.data", "7\t10\t4\t3\n1\t10\t1\t4\n"))
        #expect(try rec.store.userKeys() == ["1", "7"])
        #expect(try rec.store.ratings(ofUser: 0).first?.rating == 1)
        #expect(try rec.store.maxSequence() == 4)
    }

    @Test func stringIdsAndLongIdsMap() throws {
        let dir = tempFolder()
        let long = String(repeating: "x", count: 40)
        let rec = try Recommender(path: dir.appendingPathComponent("t.db").path)
        try rec.ingest(
            path: writeFile(dir, "r.csv", "user,item,rating\nalice,\(long),4\nbob,B00X,3\nalice,B00X,2\n01,\(long),1\n")
        )
        #expect(try rec.store.userKeys() == ["alice", "bob", "01"])
        #expect(try rec.store.itemKeys() == [long, "B00X"])
        #expect(try rec.store.ratingCount() == 4)
    }
}

@Suite struct IngestErrorTests {
    /// (file name, contents, the exact message)
    static let malformed: [(String, String, String)] = [
        (
            "a.data", "1\t2\t3\t4\n1\t2\n",
            "a.data:2: expected 3 or 4 tab-separated fields (user, item, rating[, timestamp]), found 2"
        ),
        ("b.data", "1\t2\t3\t4\n\t2\t3\t4\n", "b.data:2: field 1 (user): empty id"),
        ("c.data", "1\t\t3\t4\n", "c.data:1: field 2 (item): empty id"),
        ("d.data", "1\t2\tabc\t4\n", "d.data:1: field 3 (rating): \"abc\" is not a finite number"),
        ("e.data", "1\t2\tnan\t4\n", "e.data:1: field 3 (rating): \"nan\" is not a finite number"),
        ("f.data", "1\t2\tinf\t4\n", "f.data:1: field 3 (rating): \"inf\" is not a finite number"),
        ("g.data", "1\t2\t3\t12.5\n", "g.data:1: field 4 (timestamp): \"12.5\" is not an integer"),
        (
            "h.dat", "1::2::3::4\n1::2::3::4::5\n",
            "h.dat:2: expected 3 or 4 '::'-separated fields (user, item, rating[, timestamp]), found 5"
        ),
        ("i.csv", "userId,movieId,rating\n1,2,3\n1,2\n", "i.csv:3: expected 3 comma-separated fields, found 2"),
        (
            "j.csv", "uid,thing,rating\n1,2,3\n",
            "j.csv:1: CSV header has no item column (expected one of movieId, item_id, item)"
        ),
        ("k.csv", "user,item,stars_given\n1,2,3\n", "k.csv:1: CSV header has no rating column (expected rating)"),
        (
            "l.txt", "1 2 3 4\n",
            "l.txt:1: cannot tell the format: expected tab-separated (u.data), '::'-separated (ratings.dat) or "
                + "comma-separated (CSV) fields; use --format"
        ),
        ("m.data", "1\t2\t3\t4\n1\t2\t9\t4\n", "m.data:2: field 3 (rating): \"9\" is outside the scale 1–5"),
        ("n.data", "1\u{0}2\t3\t4\t5\n", "n.data:1: field 1 (user): id contains a control character (byte 0x00)"),
        ("o.csv", "userId,movieId,rating\n\"1,2,3\n", "o.csv:2: a quoted field is not closed"),
        (
            "p.csv", "userId,movieId,rating\n1,\"x\u{7F}\",3\n",
            "p.csv:2: field 2 (item): id contains a control character (byte 0x7F)"
        ),
    ]

    @Test(arguments: malformed)
    func malformedInputIsRefusedAndChangesNothing(name: String, text: String, message: String) throws {
        let dir = tempFolder()
        let rec = try Recommender(path: dir.appendingPathComponent("t.db").path)
        try rec.ingest(path: writeFile(dir, "good.data", "5\t6\t4\t100\n"))
        let before = try dump(rec.store)
        let error = #expect(throws: MFRecError.self) {
            try rec.ingest(path: writeFile(dir, name, text), options: IngestOptions(scale: 1...5))
        }
        #expect(error?.description == message)
        #expect(try dump(rec.store) == before)
    }

    @Test func invalidUTF8IdIsRefused() throws {
        let dir = tempFolder()
        let rec = try Recommender(path: dir.appendingPathComponent("t.db").path)
        let path = writeFile(dir, "u.data", Array("1\t2\t3\t4\n".utf8) + [0xFF, 0xFE, 0x09] + Array("2\t3\t4\n".utf8))
        let error = #expect(throws: MFRecError.self) { try rec.ingest(path: path) }
        #expect(error?.description == "u.data:2: field 1 (user): id is not valid UTF-8")
        #expect(try rec.store.ratingCount() == 0)
    }

    @Test func truncatedGzipIsRefusedAndChangesNothing() throws {
        let dir = tempFolder()
        var text = ""
        for i in 0..<20_000 { text += "\(i % 97)\t\(i % 1013)\t\(i % 5 + 1)\t\(i)\n" }
        let full = writeFile(dir, "full.data.gz", text)
        let bytes = try Array(Data(contentsOf: URL(fileURLWithPath: full)))
        let cut = writeFile(dir, "cut.data", Array(bytes.prefix(bytes.count / 2)))  // no .gz name: detected by magic
        let rec = try Recommender(path: dir.appendingPathComponent("t.db").path)
        let error = #expect(throws: MFRecError.self) { try rec.ingest(path: cut) }
        #expect(error?.description == "cut.data: truncated gzip stream (unexpected end of file)")
        #expect(try rec.store.ratingCount() == 0)
        #expect(try rec.store.userCount() == 0)
    }

    @Test func corruptGzipIsRefused() throws {
        let dir = tempFolder()
        var text = ""
        for i in 0..<5_000 { text += "\(i % 97)\t\(i % 1013)\t\(i % 5 + 1)\t\(i)\n" }
        let full = writeFile(dir, "full.data.gz", text)
        var bytes = try Array(Data(contentsOf: URL(fileURLWithPath: full)))
        bytes[bytes.count - 6] ^= 0x5A  // the CRC-32 trailer: every line decodes, the check fails at the end
        let bad = writeFile(dir, "bad.data.gz", bytes, raw: true)
        let rec = try Recommender(path: dir.appendingPathComponent("t.db").path)
        let error = #expect(throws: MFRecError.self) { try rec.ingest(path: bad) }
        #expect(error?.description == "bad.data.gz: corrupt gzip stream (incorrect data check)")
        #expect(try rec.store.ratingCount() == 0)
        // Garbage in the middle of the stream is refused too (by zlib or by the parser), storing nothing.
        bytes[bytes.count - 6] ^= 0x5A
        for i in stride(from: 40, to: bytes.count - 20, by: 50) { bytes[i] ^= 0x5A }
        #expect(throws: MFRecError.self) { try rec.ingest(path: writeFile(dir, "worse.data.gz", bytes, raw: true)) }
        #expect(try rec.store.ratingCount() == 0)
    }

    @Test func skipInvalidStoresTheRestAndReports() throws {
        let dir = tempFolder()
        var text = "1\t1\t5\t0\n"
        for i in 0..<12 { text += "\(i)\t\tx\t0\n" }
        text += "2\t2\t3\t0\n"
        let rec = try Recommender(path: dir.appendingPathComponent("t.db").path)
        let report = try rec.ingest(path: writeFile(dir, "s.data", text), options: IngestOptions(skipInvalid: true))
        #expect(report.ratingsRead == 2)
        #expect(report.skippedLines == 12)
        #expect(report.skippedReasons.count == 10)
        #expect(report.skippedReasons.first == "s.data:2: field 2 (item): empty id")
        #expect(try rec.store.ratingCount() == 2)
    }

    @Test func missingFileNamesIt() throws {
        let dir = tempFolder()
        let rec = try Recommender(path: dir.appendingPathComponent("t.db").path)
        let error = #expect(throws: MFRecError.self) {
            try rec.ingest(path: dir.appendingPathComponent("nope.data").path)
        }
        #expect(error?.description.hasPrefix("nope.data: cannot open") == true)
    }
}

@Suite struct ItemFileTests {
    @Test func uItemLatin1TitlesAndGenres() throws {
        let dir = tempFolder()
        let line: [UInt8] =
            Array("1|Mis".utf8) + [0xE9]
            + Array("rables, Les (1995)|01-Jan-1995||url|0|0|0|0|0|0|0|0|1|0|0|0|1|0|0|0|0|0|0\n".utf8)
        let items = writeFile(dir, "u.item", line)
        let rec = try Recommender(path: dir.appendingPathComponent("t.db").path)
        try rec.ingest(path: writeFile(dir, "u.data", "1\t1\t5\t0\n"), options: IngestOptions(itemsPath: items))
        let item = try rec.store.item(id: 0)
        #expect(item?.title == "Misérables, Les (1995)")
        #expect(item?.genres == "Drama|Musical")
    }

    @Test func moviesCSVQuotedTitles() throws {
        let dir = tempFolder()
        let items = writeFile(
            dir, "movies.csv",
            "movieId,title,genres\n1,\"American President, The (1995)\",Comedy|Drama|Romance\n2,\"Quote "
                + "\"\"This\"\" (2000)\",(no genres listed)\n"
        )
        let rec = try Recommender(path: dir.appendingPathComponent("t.db").path)
        try rec.ingest(
            path: writeFile(dir, "r.csv", "userId,movieId,rating\n9,2,4\n"), options: IngestOptions(itemsPath: items))
        #expect(try rec.store.itemKeys() == ["2", "1"])  // rated items first, then the rest of the file
        #expect(try rec.store.item(id: 1)?.title == "American President, The (1995)")
        #expect(try rec.store.item(id: 1)?.genres == "Comedy|Drama|Romance")
        #expect(try rec.store.item(id: 0)?.title == "Quote \"This\" (2000)")
        #expect(try rec.store.item(id: 0)?.genres == nil)
    }

    @Test func moviesDatLatin1() throws {
        let dir = tempFolder()
        let items = writeFile(
            dir, "movies.dat.gz", Array("7::Caf".utf8) + [0xE9] + Array(" au Lait (1993)::Comedy\n".utf8))
        let rec = try Recommender(path: dir.appendingPathComponent("t.db").path)
        try rec.ingest(path: writeFile(dir, "ratings.dat", "1::7::3::0\n"), options: IngestOptions(itemsPath: items))
        #expect(try rec.store.item(id: 0)?.title == "Café au Lait (1993)")
    }
}

@Suite struct MovieLensIngestTests {
    @Test(.enabled(if: FileManager.default.fileExists(atPath: ml100k)))
    func ml100kCountsAndMean() throws {
        let dir = tempFolder()
        let rec = try Recommender(path: dir.appendingPathComponent("t.db").path)
        let report = try rec.ingest(path: ml100k, options: IngestOptions(itemsPath: ml100kItems))
        #expect(report.ratingsRead == 100_000)
        let info = try rec.info()
        #expect(info.users == 943)
        #expect(info.items == 1682)
        #expect(info.ratings == 100_000)
        #expect(info.itemsWithTitles == 1682)
        #expect(abs(info.meanRating! - 3.52986) < 0.000005)
        #expect(info.scale == 1...5)
        // Users and items are indexed from 0 in first-seen order: u.data starts with 196 242.
        #expect(try rec.store.userID(forKey: "196") == 0)
        #expect(try rec.store.itemID(forKey: "242") == 0)
        let titles = try rec.store.itemTitles()
        #expect(titles.contains("Misérables, Les (1995)"))
    }
}

@Suite struct GeneratorTests {
    @Test(arguments: ["g.data", "g.csv", "g.csv.gz"])
    func generatedFileIngestsWithNoRepeatedPairs(name: String) throws {
        let dir = tempFolder()
        let path = dir.appendingPathComponent(name).path
        let report = try SyntheticRatings(users: 300, items: 200, ratings: 6_000, seed: 7).write(to: path)
        #expect(report.ratings == 6_000)
        let rec = try Recommender(path: dir.appendingPathComponent("t.db").path)
        let ingest = try rec.ingest(path: path)
        #expect(ingest.ratingsRead == 6_000)
        #expect(ingest.ratingsReplaced == 0)  // no repeated (user, item) pair
        #expect(try rec.store.userCount() == 300)
        #expect(try rec.store.ratingScale().map { $0.lowerBound >= 1 && $0.upperBound <= 5 } == true)
        // Skewed popularity: the most rated item has far more ratings than the median one.
        let counts = try rec.store.db.prepare("SELECT count(*) c FROM ratings GROUP BY item_id ORDER BY c DESC")
        var values: [Int] = []
        while try counts.step() { values.append(counts.int(0)) }
        #expect(values[0] > 4 * values[values.count / 2])
    }

    @Test func sameSeedSameFile() throws {
        let dir = tempFolder()
        let a = dir.appendingPathComponent("a.data").path, b = dir.appendingPathComponent("b.data").path
        _ = try SyntheticRatings(users: 50, items: 60, ratings: 500, seed: 3).write(to: a)
        _ = try SyntheticRatings(users: 50, items: 60, ratings: 500, seed: 3).write(to: b)
        #expect(FileManager.default.contents(atPath: a) == FileManager.default.contents(atPath: b))
        #expect(!FileManager.default.fileExists(atPath: a + ".tmp-\(getpid())"))
    }
}

/// Issue 12, defect 6: the first ingest fixes the scale (given, else the smallest standard scale holding
/// every rating, else the data's range with a warning); every later writer refuses ratings outside it.
@Suite struct RatingScaleTests {
    func ingest(_ text: String, scale: ClosedRange<Double>? = nil, into rec: Recommender? = nil) throws -> (
        Recommender, IngestReport
    ) {
        let dir = tempFolder()
        let rec = try rec ?? Recommender(path: dir.appendingPathComponent("t.db").path)
        let report = try rec.ingest(path: writeFile(dir, "r.csv", text), options: IngestOptions(scale: scale))
        return (rec, report)
    }

    @Test(arguments: [
        ("1,1,2\n2,1,4\n", 1.0...5.0, ScaleSource.standard), ("1,1,3\n", 1...5, .standard),
        ("1,1,0.5\n2,1,4.5\n", 0.5...5, .standard), ("1,1,0\n2,1,1\n", 0...1, .standard),
        ("1,1,-0\n", 0...1, .standard), ("1,1,7\n2,1,10\n", 1...10, .standard),
        ("1,1,0\n2,1,100\n", 0...100, .data), ("1,1,50\n", 50...50, .data),
    ])
    func firstIngestChoosesTheScale(text: String, expected: ClosedRange<Double>, source: ScaleSource) throws {
        let (rec, report) = try ingest(text)
        #expect(report.scale == expected && report.scaleSource == source)
        #expect(try rec.store.ratingScale() == expected)
    }

    @Test func aGivenScaleWinsAndLaterWritersKeepTheStoredOne() throws {
        let (rec, report) = try ingest("1,1,2\n2,1,4\n", scale: 2...4)
        #expect(report.scale == 2...4 && report.scaleSource == .given)
        // A later ingest (and --update, which runs the same ingest) refuses 5 the same way.
        let dir = tempFolder()
        #expect(
            throws: MFRecError.input(file: "r.csv", line: 1, reason: "field 3 (rating): \"5\" is outside the scale 2–4")
        ) {
            try rec.ingest(path: writeFile(dir, "r.csv", "3,1,5\n"))
        }
        #expect(throws: MFRecError.self) {
            try rec.ingest(path: writeFile(dir, "r.csv", "3,1,3\n"), options: IngestOptions(scale: 1...5))
        }
        let later = try rec.ingest(path: writeFile(dir, "r.csv", "3,1,3\n"))
        #expect(later.scale == 2...4 && later.scaleSource == .stored)
        #expect(try rec.store.ratingScale() == 2...4)
    }

    @Test func rateRefusesOutsideTheScaleInTheSameWords() throws {
        let dir = tempFolder()
        let rec = try Recommender(path: dir.appendingPathComponent("t.db").path)
        var text = ""
        for u in 0..<30 { for i in 0..<20 where (u + i) % 3 != 0 { text += "\(u),\(i),\(2 + (u * i) % 3)\n" } }
        try rec.ingest(path: writeFile(dir, "r.csv", text), options: IngestOptions(scale: 2...4))
        var request = TrainRequest()
        request.options.epochs = 2
        request.options.factors = 4
        request.tune = false
        request.rankingModel = false
        try rec.train(request)
        #expect(throws: MFRecError.input(file: "rate", reason: "rating 5 is outside the scale 2–4")) {
            try rec.rate([NewRating(user: "1", item: "1", rating: 5)])
        }
        #expect(throws: MFRecError.input(file: "rate", reason: "rating 1.5 is outside the scale 2–4")) {
            try rec.rate([NewRating(user: "1", item: "1", rating: 1.5)])
        }
    }
}

/// Issue 12, defect 9 (input): blank lines of spaces are blank, u.data/ratings.dat lines may leave out the
/// timestamp as CSV lines may, and a quoted CSV id holding a comma is one field.
@Suite struct IngestLeniencyTests {
    @Test(arguments: [
        ("ws.csv", "1,1,3\n   \n\t\r\n2,1,4\n"), ("nots.data", "1\t1\t3\n2\t1\t4\n"),
        ("nots.dat", "1::1::3\n2::1::4::99\n"),
    ])
    func accepted(name: String, text: String) throws {
        let dir = tempFolder()
        let rec = try Recommender(path: dir.appendingPathComponent("t.db").path)
        let report = try rec.ingest(path: writeFile(dir, name, text))
        #expect(report.ratingsRead == 2)
        #expect(try rec.store.userKeys() == ["1", "2"])
    }

    @Test func aQuotedIdWithACommaIsOneField() throws {
        let dir = tempFolder()
        let rec = try Recommender(path: dir.appendingPathComponent("t.db").path)
        let text = "userId,movieId,rating\n\"x,y\",1,3\n\"say \"\"hi\"\"\",\"a,b,c\",4\n"
        let report = try rec.ingest(path: writeFile(dir, "q.csv", text))
        #expect(report.ratingsRead == 2)
        #expect(try rec.store.userKeys() == ["x,y", "say \"hi\""])
        #expect(try rec.store.itemKeys() == ["1", "a,b,c"])
    }
}
