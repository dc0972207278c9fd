import ArgumentParser
import CSQLite
import Foundation
import MFRec
import MFStore

struct IngestBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ingest",
        abstract:
            "Ingest a generated ratings file (plain and gzip) next to a bare prepared-statement insert of "
            + "the same rows."
    )

    @Option(help: "Ratings to generate.") var ratings = 25_000_000
    @Option(help: "Users.") var users = 162_541
    @Option(help: "Items.") var items = 59_047
    @Option(help: "Runs of each ingest and of the baseline (plain, gzip and the baseline take turns; medians printed).")
    var runs = 3
    @OptionGroup var scale: Scale

    func validate() throws {
        guard runs >= 1 else { throw ValidationError("--runs must be at least 1") }
    }

    func run() throws {
        let dir = try scale.makeFolder()
        defer { scale.removeFolder(dir) }
        let plain = (dir as NSString).appendingPathComponent("ratings-\(ratings).data")
        let gz = plain + ".gz"
        section("ingest: \(ratings) ratings, \(users) users, \(items) items")
        for path in [plain, gz] where !FileManager.default.fileExists(atPath: path) {
            let (report, seconds) = try time {
                try SyntheticRatings(users: users, items: items, ratings: ratings).write(to: path)
            }
            print("generated \(path) (\(fmt(Double(report.bytes) / 1e6, 0)) MB of text) in \(fmt(seconds)) s")
        }

        // The mfrec runs of every round go first, while this process is small: a spawned child's peak-memory
        // figure includes the pages of its parent at the time of the spawn (the baseline below loads every row).
        var runsOf: [String: [ChildRun]] = [:]
        for _ in 0..<runs {
            for (label, path) in [("plain", plain), ("gzip", gz)] {
                let db = (dir as NSString).appendingPathComponent("ingest-\(label).db")
                removeDatabase(db)
                let run = try runChild(mfrecPath, ["ingest", path, "--db", db])
                guard run.status == 0 else { throw BenchError("mfrec ingest failed with status \(run.status)") }
                runsOf[label, default: []].append(run)
                removeDatabase(db)
            }
        }

        // Baseline: the same rows, already parsed, through one prepared INSERT in one transaction, `runs` times.
        let rows = try loadRows(plain)
        var baseRuns: [Double] = []
        for _ in 0..<runs { baseRuns.append(try bareInsert(rows, dir: dir)) }
        let baseSeconds = medianOf(baseRuns)
        let n = Double(rows.users.count)
        print(
            "baseline   bare prepared INSERT of parsed rows (same schema, one transaction): \(fmt(baseSeconds)) s "
                + "(median of \(runs), runs \(fmt(baseRuns.min()!))–\(fmt(baseRuns.max()!)) s), "
                + "\(rate(n, baseSeconds)) rows/s"
        )
        for label in ["plain", "gzip"] {
            let seconds = runsOf[label]!.map(\.seconds), peaks = runsOf[label]!.map(\.peakMegabytes)
            let median = medianOf(seconds)
            print(
                "mfrec ingest (\(label), whole process: parse, validate, map ids, insert, commit, training cache): "
                    + "\(fmt(median)) s (median of \(runs), runs \(fmt(seconds.min()!))–\(fmt(seconds.max()!)) s), "
                    + "\(rate(n, median)) rows/s, peak memory \(fmt(medianOf(peaks), 0)) MB "
                    + "(\(fmt(peaks.min()!, 0))–\(fmt(peaks.max()!, 0))), \(fmt(median / baseSeconds))× the "
                    + "baseline's time")
        }
        print("load average after: \(loadAverage())")
    }

    /// The same rows through one prepared INSERT in one transaction into a fresh database of the same schema: its
    /// seconds (the schema's creation not timed).
    func bareInsert(_ rows: Rows, dir: String) throws -> Double {
        let baseDB = (dir as NSString).appendingPathComponent("baseline.db")
        removeDatabase(baseDB)
        defer { removeDatabase(baseDB) }
        _ = try Store(path: baseDB)  // creates the schema; the baseline writes through the C API directly
        var handle: OpaquePointer?
        guard sqlite3_open(baseDB, &handle) == SQLITE_OK, let db = handle else {
            throw BenchError("cannot open \(baseDB)")
        }
        defer { sqlite3_close(db) }
        for pragma in ["PRAGMA journal_mode = WAL", "PRAGMA synchronous = NORMAL", "PRAGMA foreign_keys = ON"] {
            guard sqlite3_exec(db, pragma, nil, nil, nil) == SQLITE_OK else { throw BenchError("\(pragma) failed") }
        }
        return try time {
            var stmt: OpaquePointer?
            let sql = "INSERT INTO ratings (user_id, item_id, rating, ts, seq) VALUES (?, ?, ?, ?, ?)"
            guard sqlite3_exec(db, "BEGIN IMMEDIATE", nil, nil, nil) == SQLITE_OK,
                sqlite3_prepare_v2(db, sql, -1, &stmt, nil) == SQLITE_OK
            else { throw BenchError("prepare failed") }
            defer { sqlite3_finalize(stmt) }
            for j in 0..<rows.users.count {
                sqlite3_bind_int64(stmt, 1, Int64(rows.users[j]))
                sqlite3_bind_int64(stmt, 2, Int64(rows.items[j]))
                sqlite3_bind_double(stmt, 3, rows.ratings[j])
                sqlite3_bind_int64(stmt, 4, rows.timestamps[j])
                sqlite3_bind_int64(stmt, 5, Int64(j + 1))
                guard sqlite3_step(stmt) == SQLITE_DONE else { throw BenchError("insert failed") }
                sqlite3_reset(stmt)
            }
            guard sqlite3_exec(db, "COMMIT", nil, nil, nil) == SQLITE_OK else { throw BenchError("commit failed") }
        }.1
    }

    func removeDatabase(_ path: String) {
        for suffix in ["", "-wal", "-shm", ".ratings", ".items"] {
            try? FileManager.default.removeItem(atPath: path + suffix)
        }
    }

    struct Rows { var users: [Int32] = [], items: [Int32] = [], ratings: [Double] = [], timestamps: [Int64] = [] }

    /// Parses the generated u.data file (ids are 1-based integers) into columns; not timed.
    func loadRows(_ path: String) throws -> Rows {
        var rows = Rows()
        rows.users.reserveCapacity(ratings)
        rows.items.reserveCapacity(ratings)
        rows.ratings.reserveCapacity(ratings)
        rows.timestamps.reserveCapacity(ratings)
        guard let file = fopen(path, "r") else { throw BenchError("cannot open \(path)") }
        defer { fclose(file) }
        var u: Int32 = 0, i: Int32 = 0, r: Int32 = 0, t: Int64 = 0
        while scanRatingLine(file, &u, &i, &r, &t) {
            rows.users.append(u - 1)
            rows.items.append(i - 1)
            rows.ratings.append(Double(r))
            rows.timestamps.append(t)
        }
        return rows
    }
}

/// Reads one `u i r t` line of integers with a small hand parser (fscanf is variadic and slow).
func scanRatingLine(
    _ file: UnsafeMutablePointer<FILE>, _ u: inout Int32, _ i: inout Int32, _ r: inout Int32, _ t: inout Int64
) -> Bool {
    var values = [Int64](repeating: 0, count: 4)
    var field = 0
    var any = false
    while true {
        let c = getc_unlocked(file)
        if c == EOF {
            return any && field == 3
                ? {
                    u = Int32(values[0])
                    i = Int32(values[1])
                    r = Int32(values[2])
                    t = values[3]
                    return true
                }() : false
        }
        if c == 0x0A {
            u = Int32(values[0])
            i = Int32(values[1])
            r = Int32(values[2])
            t = values[3]
            return true
        }
        if c == 0x09 || c == 0x2C {
            field += 1
            continue
        }
        if field < 4 {
            values[field] = values[field] * 10 + Int64(c - 48)
            any = true
        }
    }
}
