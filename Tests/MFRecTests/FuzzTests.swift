import CZlib
import Foundation
import MFEngine
import MFRecFuzz
import Testing

@testable import MFRec
@testable import MFStore

/// Seeded mutation fuzzing of every parser, run in the suite for a bounded number of inputs.
/// A crash, hang or trap fails the whole test run; anything else must be a result or a clear error.
@Suite struct FuzzTests {
    static let seeds: [(name: String, text: String)] = [
        ("s.data", "196\t242\t3\t881250949\n186\t302\t3\t891717742\n22\t377\t1\t878887116\n"),
        ("s.dat", "1::1193::5::978300760\n1::661::3::978302109\n"),
        ("s.csv", "userId,movieId,rating,timestamp\n1,31,2.5,1260759144\n1,1029,3.0,1260759179\n"),
        ("q.csv", "\"user_id\",\"item_id\",\"rating\"\n\"a\",\"b\",\"4\"\n"),
    ]
    static let itemSeeds: [(name: String, text: String)] = [
        ("u.item", "1|Toy Story (1995)|01-Jan-1995||http://x|0|0|0|1|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0\n"),
        ("movies.csv", "movieId,title,genres\n1,\"American President, The (1995)\",Comedy|Drama\n"),
        ("movies.dat", "1::Toy Story (1995)::Animation|Children's|Comedy\n"),
    ]

    static func mutate(_ input: [UInt8], _ rng: inout SeededGenerator) -> [UInt8] {
        var bytes = input
        let specials: [UInt8] = [0, 9, 10, 13, 34, 44, 58, 124, 0xEF, 0xBB, 0xBF, 0xFF, 0xC3, 0x80, 45, 46, 101, 110]
        for _ in 0..<(1 + rng.next(below: 4)) {
            switch rng.next(below: 6) {
            case 0 where !bytes.isEmpty: bytes[rng.next(below: bytes.count)] ^= UInt8(1 << rng.next(below: 8))
            case 1: bytes.insert(specials[rng.next(below: specials.count)], at: rng.next(below: bytes.count + 1))
            case 2 where bytes.count > 1:
                let a = rng.next(below: bytes.count), b = min(bytes.count, a + 1 + rng.next(below: 8))
                bytes.removeSubrange(a..<b)
            case 3 where !bytes.isEmpty:
                let a = rng.next(below: bytes.count), b = min(bytes.count, a + 1 + rng.next(below: 16))
                bytes.insert(contentsOf: bytes[a..<b], at: rng.next(below: bytes.count + 1))
            case 4: bytes = Array(bytes.prefix(rng.next(below: bytes.count + 1)))
            default: bytes.insert(UInt8(rng.next(below: 256)), at: rng.next(below: bytes.count + 1))
            }
        }
        return bytes
    }

    static func gzip(_ bytes: [UInt8]) -> [UInt8] {
        var bound = compressBound(uLong(bytes.count))
        var out = [UInt8](repeating: 0, count: Int(bound) + 32)
        // A raw gzip member: header, deflate data, trailer (via deflateInit2 with gzip wrapping).
        var stream = z_stream()
        deflateInit2_(
            &stream, 6, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
        var input = bytes
        input.withUnsafeMutableBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                stream.next_in = src.baseAddress
                stream.avail_in = uInt(src.count)
                stream.next_out = dst.baseAddress
                stream.avail_out = uInt(dst.count)
                deflate(&stream, Z_FINISH)
            }
        }
        bound = uLong(stream.total_out)
        deflateEnd(&stream)
        return Array(out.prefix(Int(bound)))
    }

    @Test func ratingsAndItemParsersNeverCrash() throws {
        let dir = tempFolder()
        let rec = try Recommender(path: dir.appendingPathComponent("f.db").path)
        var rng = SeededGenerator(seed: 20_261_129)
        var executions = 0, accepted = 0, refused = 0
        for round in 0..<1_500 {
            let seed = Self.seeds[round % Self.seeds.count]
            var bytes = Self.mutate(Array(seed.text.utf8), &rng)
            var name = seed.name
            if round % 5 == 0 {  // a gzip stream, sometimes mutated after compression
                bytes = Self.gzip(bytes)
                if round % 10 == 0 { bytes = Self.mutate(bytes, &rng) }
                name += ".gz"
            }
            let path = writeFile(dir, "in-\(round % 7)-" + name, bytes, raw: true)
            executions += 1
            do {
                try rec.ingest(path: path, options: IngestOptions(skipInvalid: round % 3 == 0))
                accepted += 1
            } catch is MFRecError {
                refused += 1
            }
        }
        for round in 0..<600 {
            let seed = Self.itemSeeds[round % Self.itemSeeds.count]
            let items = writeFile(dir, "it-" + seed.name, Self.mutate(Array(seed.text.utf8), &rng), raw: true)
            executions += 1
            do {
                try rec.ingest(
                    path: writeFile(dir, "one.data", "1\t1\t3\t0\n"), options: IngestOptions(itemsPath: items))
                accepted += 1
            } catch is MFRecError {
                refused += 1
            }
        }
        #expect(try rec.store.db.integrityCheck() == "ok")
        #expect(accepted > 0 && refused > 0)
        print(
            "fuzz (parsers): \(executions) inputs, \(accepted) accepted, \(refused) refused with a clear "
                + "error, 0 crashes"
        )
    }

    @Test func damagedItemMatrixFilesAreRebuiltNeverTrusted() throws {
        let dir = tempFolder()
        var rng = SeededGenerator(seed: 77)
        let model = randomSmallModel()
        let path = dir.appendingPathComponent("m.items").path
        try ItemMatrix.write(model: model, generation: 2, snapshotID: 1, to: path)
        let good = try Array(Data(contentsOf: URL(fileURLWithPath: path)))
        var executions = 0, detected = 0
        for _ in 0..<400 {
            let bad = Self.mutate(good, &rng)
            try Data(bad).write(to: URL(fileURLWithPath: path))
            executions += 1
            do {
                let matrix = try ItemMatrix.open(
                    path: path, generation: 2, snapshotID: 1, factors: model.factors, itemCount: model.itemCount)
                // Accepted only if nothing that matters changed.
                #expect(bad.count == good.count)
                for i in 0..<model.itemCount { #expect(matrix.item(i).vector == Array(model.itemVector(i))) }
            } catch is EngineError {
                detected += 1
            }
        }
        #expect(detected > executions / 2)
        print(
            "fuzz (item matrix files): \(executions) damaged files, \(detected) detected, the rest byte-identical "
                + "where it matters, 0 crashes"
        )
    }

    @Test func damagedSnapshotBlobsAreErrorsNotCrashes() throws {
        var rng = SeededGenerator(seed: 99)
        let model = randomSmallModel()
        let (blob, _) = ModelBlob.encode(model)
        let plain = model.encoded()
        var executions = 0, refused = 0
        for round in 0..<800 {
            let bad = Self.mutate(round % 2 == 0 ? blob : plain, &rng)
            executions += 1
            do { _ = try ModelBlob.decode(bad) } catch is EngineError { refused += 1 }
        }
        #expect(refused > 0)
        print(
            "fuzz (snapshot blobs): \(executions) damaged blobs, \(refused) refused, 0 crashes (the store's CRC-32 "
                + "catches the rest before decoding)"
        )
    }

    /// What each corpus file must give: stored ratings and scale, or the exact error (nothing stored).
    enum Outcome: Sendable, CustomStringConvertible {
        case accepted(ratings: Int, scale: ClosedRange<Double>?, titles: Int)
        case refused(String)
        var description: String {
            switch self {
            case .accepted(let n, let scale, let titles): return "accepted \(n) \(String(describing: scale)) \(titles)"
            case .refused(let message): return "refused: \(message)"
            }
        }
    }

    static let pinned: [String: Outcome] = [
        "bom-only.data": .accepted(ratings: 0, scale: nil, titles: 0),
        "crlf-only.data": .accepted(ratings: 0, scale: nil, titles: 0),
        "cut-header.data.gz": .refused("cut-header.data.gz: truncated gzip stream (unexpected end of file)"),
        "dat-five-fields.dat": .refused(
            "dat-five-fields.dat:1: expected 3 or 4 '::'-separated fields (user, item, rating[, timestamp]), found 5"),
        "huge-rating.data": .refused("huge-rating.data:1: field 3 (rating): \"1e400\" is not a finite number"),
        // −0 is a rating of 0: the smallest standard scale holding it is 0–1.
        "negative-zero.data": .accepted(ratings: 1, scale: 0...1, titles: 0),
        // A NUL byte inside an id is refused, never stored inside a key.
        "nul-in-id.data": .refused("nul-in-id.data:1: field 1 (user): id contains a control character (byte 0x00)"),
        "pipes-only.item": .refused("pipes-only.item:1: field 1 (item): empty id"),
        "spaces-around-fields.data": .accepted(ratings: 1, scale: 1...5, titles: 0),
        "timestamp-overflow.data": .refused(
            "timestamp-overflow.data:1: field 4 (timestamp): \"99999999999999999999\" is not an integer"),
        "uitem-two-fields.item": .accepted(ratings: 1, scale: 1...5, titles: 1),
        "unbalanced-quote.csv": .refused("unbalanced-quote.csv:2: a quoted field is not closed"),
        "unbalanced-title.csv": .refused("unbalanced-title.csv:2: a quoted field is not closed"),
    ]

    @Test func everyCorpusFileHasAPinnedOutcome() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: corpusFolder.path).sorted()
        #expect(files == Self.pinned.keys.sorted())
    }

    /// Interesting cases found while writing the parsers, kept as regression tests: each gives exactly its
    /// pinned result, and a refusal leaves the database as it was.
    @Test(arguments: FuzzTests.pinned.keys.sorted())
    func corpusCase(name: String) throws {
        let dir = tempFolder()
        let rec = try Recommender(path: dir.appendingPathComponent("c.db").path)
        let path = corpusFolder.appendingPathComponent(name).path
        let before = try dump(rec.store)
        let isItemFile = name.hasSuffix(".item") || name.contains("title")
        let outcome: Outcome
        do {
            let report =
                isItemFile
                ? try rec.ingest(
                    path: writeFile(dir, "one.data", "1\t1\t3\t0\n"), options: IngestOptions(itemsPath: path))
                : try rec.ingest(path: path)
            outcome = .accepted(
                ratings: report.ratingsRead, scale: try rec.store.ratingScale(), titles: report.itemsTitled)
        } catch let error as MFRecError {
            outcome = .refused(error.description)
            #expect(try dump(rec.store) == before)
        }
        #expect(outcome.description == Self.pinned[name]?.description)
    }
}

let corpusFolder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Corpus")

func randomSmallModel() -> FactorModel {
    var rng = SeededGenerator(seed: 5)
    var m = FactorModel(factors: 6, userCount: 10, itemCount: 40, useBias: true, globalMean: 3.5, scale: 1...5)
    for j in 0..<m.userFactors.count where j % m.stride < 6 { m.userFactors[j] = rng.nextFloat() }
    for j in 0..<m.itemFactors.count where j % m.stride < 6 { m.itemFactors[j] = rng.nextFloat() }
    for i in 0..<40 { m.itemBias[i] = rng.nextFloat() }
    return m
}

/// The libFuzzer corpus kept in the repo (`fuzz/corpus/TARGET`, minimized by `scripts/fuzz.sh`) and every
/// input a fuzz run found crashing (`fuzz/regressions/TARGET`), replayed through the same targets: each
/// must return (a crash here fails the whole run).
@Suite struct FuzzCorpusReplayTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("fuzz")

    @Test(arguments: FuzzTarget.allCases)
    func corpusAndRegressionsReplay(target: FuzzTarget) throws {
        var replayed = 0
        for kind in ["corpus", "regressions"] {
            let folder = Self.root.appendingPathComponent(kind).appendingPathComponent(target.rawValue)
            for name in (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? [] {
                target.run(Array(try Data(contentsOf: folder.appendingPathComponent(name))))
                replayed += 1
            }
        }
        #expect(replayed > 0, "no corpus for \(target.rawValue): run scripts/fuzz.sh \(target.rawValue) SECONDS")
        print("fuzz replay (\(target.rawValue)): \(replayed) inputs")
    }
}
