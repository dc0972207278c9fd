import Foundation
import Testing

@testable import MFEngine
@testable import MFRec
@testable import MFStore

/// Issue 17: `predictFile` predicts as `predict` does, pair by pair, in every layout `ingest` reads, with or
/// without a rating column; unknown ids get the fallback and are counted; a bad line is an error naming it.
@Suite struct BatchPredictTests {
    func trained() throws -> (Recommender, URL) {
        let dir = tempFolder()
        let data = dir.appendingPathComponent("r.data").path
        _ = try SyntheticRatings(users: 200, items: 150, ratings: 6_000, seed: 5).write(to: data)
        let rec = try Recommender(path: dir.appendingPathComponent("t.db").path)
        try rec.ingest(path: data)
        var request = TrainRequest()
        request.tune = false
        request.options.epochs = 5
        request.testFraction = 0
        try rec.train(request)
        return (rec, dir)
    }

    func predictions(_ path: String) throws -> [(user: String, item: String, value: Double)] {
        try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").dropFirst().map { line in
            let f = line.split(separator: ",")
            return (String(f[0]), String(f[1]), Double(f[2])!)
        }
    }

    @Test func everyLayoutPredictsAsPredictDoesPairByPair() throws {
        let (rec, dir) = try trained()
        let engine = try rec.queries()
        var pairs: [(String, String, Double)] = []
        for u in stride(from: 1, through: 200, by: 7) {
            for i in stride(from: 1, through: 150, by: 11) {
                pairs.append((String(u), String(i), Double(1 + (u + i) % 5)))
            }
        }
        pairs += [("nobody", "3", 4), ("5", "no-such-item", 2), ("nobody", "nothing", 3)]
        let files: [(String, String)] = [
            ("pairs.data", pairs.map { "\($0.0)\t\($0.1)\n" }.joined()),
            ("rated.data.gz", pairs.map { "\($0.0)\t\($0.1)\t\(Int($0.2))\t100\n" }.joined()),
            ("pairs.csv", "user_id,item_id\n" + pairs.map { "\($0.0),\($0.1)\n" }.joined()),
            ("rated.csv", "user,item,rating\n" + pairs.map { "\($0.0),\($0.1),\($0.2)\n" }.joined()),
            ("pairs.dat", pairs.map { "\($0.0)::\($0.1)\n" }.joined()),
        ]
        for (name, text) in files {
            let input = writeFile(dir, name, text)
            let output = dir.appendingPathComponent(name + ".out.csv").path
            let report = try engine.predictFile(input, to: output)
            #expect(report.pairs == pairs.count, "\(name)")
            #expect(report.unknownUsers == 2 && report.unknownItems == 2 && report.fallback >= 3, "\(name)")
            let got = try predictions(output)
            #expect(got.count == pairs.count, "\(name)")
            var squared = 0.0
            for (row, pair) in zip(got, pairs) {
                #expect(row.user == pair.0 && row.item == pair.1, "\(name)")
                if pair.0 == "nobody" || pair.1.hasPrefix("no") {
                    continue  // `predict` refuses an unknown item; the file gets the fallback
                }
                let one = try engine.predict(user: pair.0, item: pair.1).rating
                #expect(abs(row.value - one) <= 0.00005 + 1e-9, "\(name) \(pair): \(row.value) vs \(one)")
            }
            for (row, pair) in zip(got, pairs) { squared += (row.value - pair.2) * (row.value - pair.2) }
            if name.hasPrefix("rated") {
                #expect(report.rated == pairs.count)
                // The report's RMSE is over the unrounded predictions: within the written rounding of the file's.
                #expect(abs(report.rmse! - (squared / Double(pairs.count)).squareRoot()) < 1e-4, "\(name)")
            } else {
                #expect(report.rated == 0 && report.rmse == nil, "\(name)")
            }
        }
        // A bad line: its file, line and field, and no output file left behind.
        let bad = writeFile(dir, "bad.data", "1\t2\n3\t4\tfive\n")
        let target = dir.appendingPathComponent("bad.out.csv").path
        #expect(
            throws: MFRecError.input(
                file: "bad.data", line: 2, reason: "field 3 (rating): \"five\" is not a finite number")
        ) { try engine.predictFile(bad, to: target) }
        #expect(!FileManager.default.fileExists(atPath: target))
        // The same after batches were handed to the predicting thread (8,192 pairs a batch).
        let late = writeFile(dir, "late.data", String(repeating: "1\t2\n", count: 20_000) + "3\t4\tfive\n")
        #expect(
            throws: MFRecError.input(
                file: "late.data", line: 20_001, reason: "field 3 (rating): \"five\" is not a finite number")
        ) { try engine.predictFile(late, to: target) }
        #expect(!FileManager.default.fileExists(atPath: target))
        // And a long file predicts every pair, in order.
        let long = writeFile(dir, "long.data", (0..<30_000).map { "\($0 % 7 + 1)\t\($0 % 11 + 1)\n" }.joined())
        let report = try engine.predictFile(long, to: target)
        let rows = try predictions(target)
        #expect(report.pairs == 30_000 && rows.count == 30_000)
        #expect(rows.enumerated().allSatisfy { j, row in row.user == "\(j % 7 + 1)" && row.item == "\(j % 11 + 1)" })
    }

    @Test func csvFieldsAreQuotedByOneRule() {
        #expect(csvField("plain") == "plain")
        #expect(csvField("x,y") == "\"x,y\"")
        #expect(csvField("say \"hi\"") == "\"say \"\"hi\"\"\"")
        #expect(csvField("a\rb") == "\"a\rb\"")
        #expect(csvField("a\r\nb") == "\"a\r\nb\"")
        #expect(csvField("a\nb") == "\"a\nb\"")
    }

    /// The fast 4-decimal writer prints what `String(format: "%.4f")` prints, exact ties (x.xxxx5 exactly in
    /// binary) included: those round half to even, as printf does (it printed 3.2813 for 3.28125 before).
    @Test func fixedFourDecimalsMatchPrintf() {
        var rng = SeededGenerator(seed: 3)
        var values: [Float] = [3.28125, 3.03125, 3.90625, 0.00005, -2.71875, 0, -0.0, -0.00001, 1.5, 4.99995, 12.34565]
        for _ in 0..<20_000 { values.append(Float(Double(rng.next() % 100_000_000) / 1e7 - 2)) }
        for _ in 0..<2_000 { values.append(Float(rng.next() % 160_000) / 32_768) }  // exact binary ties among them
        for value in values {
            var out: [UInt8] = []
            LineWriter.appendFixed4(value, to: &out)
            #expect(String(decoding: out, as: UTF8.self) == String(format: "%.4f", value), "\(value)")
        }
    }

    /// The integer writer (timestamps in `export`, ids and ranks) prints what `String(value)` prints: a
    /// negative timestamp (a date before 1970, which `ingest` accepts) came out as 0 before.
    @Test func integersMatchStringConversion() {
        var rng = SeededGenerator(seed: 4)
        var values = [0, 1, 9, 10, 99, 100, -1, -9, -10, -86_400, -881_250_949, Int.max, Int.min, Int.min + 1]
        for _ in 0..<5_000 { values.append(Int(truncatingIfNeeded: rng.next()) >> Int(rng.next() % 64)) }
        for value in values {
            var out: [UInt8] = []
            LineWriter.appendDecimal(value, to: &out)
            #expect(String(decoding: out, as: UTF8.self) == String(value), "\(value)")
        }
    }
}
