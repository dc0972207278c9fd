import ArgumentParser
import Foundation
import MFRecCLI

/// The CLI fuzz target: an input is a command line (arguments separated by NUL or newline bytes), parsed and run
/// in-process by `Mfrec`, the same root command the `mfrec` binary runs, against a fresh copy of a small trained
/// database. A run must end with a result or an error (the binary's exit 0, 1 or 64), never a trap, a crash or an
/// out-of-bounds access.
///
/// Safety: every execution runs in a private temp folder (this process's current folder), and every argument that
/// could name a path elsewhere is rewritten to a plain name inside it: `/` becomes `_`, and `.`/`..` become `_.`/`_..`.
/// So a run can read and write only files in that folder, and each starts from the same files (its crashes reproduce).
/// Left out: `serve` (it runs until a signal), `demo` (a whole end-to-end job, seconds long) and `generate` (its
/// output size is the caller's choice, up to gigabytes); their options are covered by `OptionRangeTests`.
enum CLIFuzz {
    static let skipped: Set<String> = ["serve", "demo", "generate"]
    static let maxArguments = 24

    /// The folder of this process: `template/` holds the trained database and its input files, `work/` is where a run runs.
    static let root: String = {
        let path = (NSTemporaryDirectory() as NSString).appendingPathComponent("mfrec-cli-fuzz-\(getpid())")
        try? FileManager.default.removeItem(atPath: path)
        try? FileManager.default.createDirectory(atPath: path + "/template", withIntermediateDirectories: true)
        try? FileManager.default.createDirectory(atPath: path + "/work", withIntermediateDirectories: true)
        prepareTemplate(in: path + "/template")
        return path
    }()

    /// The command line an input stands for, with path-like arguments made plain names (see the type's doc).
    static func arguments(_ data: [UInt8]) -> [String] {
        let pieces = data.split(separator: 0, omittingEmptySubsequences: false)
            .flatMap { $0.split(separator: 0x0A, omittingEmptySubsequences: false) }
        return pieces.prefix(maxArguments).map { plainName(String(decoding: $0, as: UTF8.self)) }
    }

    static func plainName(_ argument: String) -> String {
        let flat = argument.replacingOccurrences(of: "/", with: "_")
        return flat == "." || flat == ".." ? "_" + flat : flat
    }

    /// Runs one input: a fresh copy of the template in `work/`, then the command as `mfrec` would run it.
    static func run(_ data: [UInt8]) {
        let arguments = arguments(data)
        guard let first = arguments.first, !skipped.contains(first) else { return }
        reset()
        do {
            var command = try Mfrec.parseAsRoot(arguments)
            try command.run()
        } catch {
            // What the binary would print and its exit status; computing them exercises the same code.
            _ = Mfrec.fullMessage(for: error)
            _ = Mfrec.exitCode(for: error)
        }
    }

    /// Removes this process's folder (after a replay; a libFuzzer run leaves it to scripts/fuzz.sh's own temp folder).
    static func removeFolder() {
        _ = FileManager.default.changeCurrentDirectoryPath(NSTemporaryDirectory())
        try? FileManager.default.removeItem(atPath: root)
    }

    /// Empties `work/`, copies the template into it and makes it the current folder.
    static func reset() {
        let fm = FileManager.default
        let work = root + "/work", template = root + "/template"
        _ = fm.changeCurrentDirectoryPath(root)
        try? fm.removeItem(atPath: work)
        try? fm.copyItem(atPath: template, toPath: work)
        guard fm.changeCurrentDirectoryPath(work) else { fatalError("cannot enter \(work)") }
    }

    /// Valid command lines to start from: each command with typical options, against the template's names.
    static let seeds: [[String]] = [
        ["recommend", "u1", "-n", "5"], ["recommend", "u2", "--by", "rating", "--explain", "--format", "json"],
        ["recommend", "u3", "--genre", "Comedy", "--exclude", "i1,i2", "--min-item-ratings", "3"],
        ["recommend", "--all", "-n", "3", "--output", "all.csv", "--threads", "2"],
        ["recommend", "nobody", "--cold", "popular"], ["predict", "u1", "i3"], ["predict", "--file", "ratings.data"],
        ["similar", "i2", "-n", "4", "--by", "ranking"], ["rate", "u1", "i9", "4"], ["rate", "new", "i1", "5"],
        ["ingest", "ratings.data", "--update"], ["ingest", "more.csv", "--update", "--skip-invalid"],
        ["train", "--tune", "off", "--factors", "3", "--epochs", "3"], ["train", "--tune-seconds", "1"],
        ["eval", "--compare", "--top", "5"], ["eval", "--folds", "2", "--json"],
        ["eval", "--test-file", "ratings.data", "--max-users", "5"], ["snapshot", "list", "--format", "csv"],
        ["snapshot", "show", "1"], ["snapshot", "diff", "1", "2", "--users", "5"],
        ["snapshot", "create", "--note", "x"],
        ["snapshot", "delete", "1"], ["snapshot", "prune", "--keep", "1"], ["rollback", "1"], ["info"],
        ["export", "-o", "out", "--format", "csv"], ["export", "--ratings", "r.jsonl.gz"], ["migrate"],
        ["import", "spark", "als", "--as", "ranking"], ["info", "--db", "other.db"],
    ]

    static func seedInputs() -> [[UInt8]] { seeds.map { Array($0.joined(separator: "\n").utf8) } }

    /// ~1,200 ratings of 40 users on 30 items (u.data), an item file with genres (u.item), a CSV to add, and the
    /// trained database with two snapshots and a live incremental update.
    static func prepareTemplate(in folder: String) {
        let fm = FileManager.default
        _ = fm.changeCurrentDirectoryPath(folder)
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next(_ bound: Int) -> Int {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int((state >> 33) % UInt64(bound))
        }
        var lines: [String] = []
        for user in 1...40 {
            for item in 1...30 where next(3) == 0 || item <= 3 || (item + user) % 7 == 0 {
                lines.append(
                    "u\(user)\ti\(item)\t\(1 + (item * 7 + user * 3 + next(2)) % 5)\t\(880_000_000 + user * 1000 + item)"
                )
            }
        }
        _ = fm.createFile(atPath: "ratings.data", contents: Data((lines.joined(separator: "\n") + "\n").utf8))
        let genres = 19
        let items = (1...30).map { item in
            let flags = (0..<genres).map { $0 == item % genres || $0 == 5 && item % 3 == 0 ? "1" : "0" }
            return "i\(item)|Film \(item) (199\(item % 10))|01-Jan-199\(item % 10)||http://x/\(item)|"
                + flags.joined(separator: "|")
        }
        _ = fm.createFile(atPath: "items.item", contents: Data((items.joined(separator: "\n") + "\n").utf8))
        _ = fm.createFile(
            atPath: "more.csv",
            contents: Data("user,item,rating,timestamp\nu41,i2,5,990000000\nu1,i30,1,990000001\n".utf8))
        for command in [
            ["ingest", "ratings.data", "--items", "items.item"], ["train", "--tune", "off", "--factors", "4"],
            ["rate", "u1", "i29", "5"], ["snapshot", "create", "--note", "rated"],
            ["train", "--tune", "off", "--factors", "3", "--epochs", "5"], ["rate", "u2", "i28", "2"],
        ] {
            do {
                var parsed = try Mfrec.parseAsRoot(command)
                try parsed.run()
            } catch {
                fatalError("CLI fuzz set-up failed at \(command): \(Mfrec.fullMessage(for: error))")
            }
        }
    }
}
