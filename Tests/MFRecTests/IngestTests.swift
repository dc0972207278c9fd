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
        #expect(try rec.store.ratingScale() == 3...5)
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
            "a.data", "1\t2\t3\t4\n1\t2\t3\n",
            "a.data:2: expected 4 tab-separated fields (user, item, rating, timestamp), found 3"
        ),
        ("b.data", "1\t2\t3\t4\n\t2\t3\t4\n", "b.data:2: field 1 (user): empty id"),
        ("c.data", "1\t\t3\t4\n", "c.data:1: field 2 (item): empty id"),
        ("d.data", "1\t2\tabc\t4\n", "d.data:1: field 3 (rating): \"abc\" is not a finite number"),
        ("e.data", "1\t2\tnan\t4\n", "e.data:1: field 3 (rating): \"nan\" is not a finite number"),
        ("f.data", "1\t2\tinf\t4\n", "f.data:1: field 3 (rating): \"inf\" is not a finite number"),
        ("g.data", "1\t2\t3\t12.5\n", "g.data:1: field 4 (timestamp): \"12.5\" is not an integer"),
        (
            "h.dat", "1::2::3::4\n1::2::3\n",
            "h.dat:2: expected 4 '::'-separated fields (user, item, rating, timestamp), found 3"
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
    ]

    @Test(arguments: malformed)
    func malformedInputIsRefusedAndChangesNothing(name: String, text: String, message: String) throws {
        let dir = tempFolder()
        let rec = try Recommender(path: dir.appendingPathComponent("t.db").path)
        try rec.ingest(path: writeFile(dir, "good.data", "5\t6\t4\t100\n"))
        let before = try dump(rec.store)
        let error = #expect(throws: InputError.self) {
            try rec.ingest(path: writeFile(dir, name, text), options: IngestOptions(scale: 1...5))
        }
        #expect(error?.description == message)
        #expect(try dump(rec.store) == before)
    }

    @Test func invalidUTF8IdIsRefused() throws {
        let dir = tempFolder()
        let rec = try Recommender(path: dir.appendingPathComponent("t.db").path)
        let path = writeFile(dir, "u.data", Array("1\t2\t3\t4\n".utf8) + [0xFF, 0xFE, 0x09] + Array("2\t3\t4\n".utf8))
        let error = #expect(throws: InputError.self) { try rec.ingest(path: path) }
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
        let error = #expect(throws: InputError.self) { try rec.ingest(path: cut) }
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
        let error = #expect(throws: InputError.self) { try rec.ingest(path: bad) }
        #expect(error?.description == "bad.data.gz: corrupt gzip stream (incorrect data check)")
        #expect(try rec.store.ratingCount() == 0)
        // Garbage in the middle of the stream is refused too (by zlib or by the parser), storing nothing.
        bytes[bytes.count - 6] ^= 0x5A
        for i in stride(from: 40, to: bytes.count - 20, by: 50) { bytes[i] ^= 0x5A }
        #expect(throws: InputError.self) { try rec.ingest(path: writeFile(dir, "worse.data.gz", bytes, raw: true)) }
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
        let error = #expect(throws: InputError.self) {
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
