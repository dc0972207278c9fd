import Foundation
import TestFixtures
import Testing

/// Issue 12, defect 2: every numeric option states its range in `--help` and refuses values outside it
/// (exit 64, naming the option); no value traps or hangs. The options come from the binary itself
/// (`--experimental-dump-help`), so a new option is covered the day it is added.
@Suite struct OptionRangeTests {
    /// Options whose values are not numbers.
    static let textOptions: Set<String> = [
        "db", "folder", "items", "format", "items-format", "scale", "test-file", "history", "plot", "note", "output",
        "by", "cold", "tune", "ranking", "factors", "host", "token-file", "as", "exclude", "only", "genre", "file",
        "item-precision",
        // By command, where the same name is a number elsewhere (`generate --ratings N`).
        "export ratings", "recommend ratings",
    ]
    /// Arguments each command needs besides the option under test.
    static let baseArguments: [String: [String]] = [
        "ingest": ["r.csv"],
        "train": ["--tune", "off", "--ranking", "off", "--epochs", "2", "--cooccurrence-factors", "0"],
        "recommend": ["1"], "similar": ["1"], "predict": ["1", "1"], "rate": ["1", "1", "3"],
        "snapshot show": ["1"], "snapshot diff": ["1", "1"], "snapshot delete": ["1"], "rollback": ["1"],
        "export": ["-o", "out"], "generate": ["--users", "20", "--items", "20", "--ratings", "50", "-o", "g.data"],
        // A server with valid options would run until stopped: an address it refuses without a token file
        // makes it exit 64 right after the option ranges are checked (those come first in `validate`).
        "serve": ["--host", "192.0.2.1"],
    ]

    struct NumericOption: CustomStringConvertible {
        var command: [String]
        var name: String
        var range: ClosedRange<Double>
        var description: String { (command + ["--" + name]).joined(separator: " ") }
    }

    /// Every option of every command, read from `--experimental-dump-help`.
    static func options() throws -> [(command: [String], name: String, help: String)] {
        let run = try mfrec(["--experimental-dump-help"])
        let root = try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as! [String: Any]
        var out: [(command: [String], name: String, help: String)] = []
        func walk(_ command: [String: Any], _ path: [String]) {
            for argument in command["arguments"] as? [[String: Any]] ?? [] where argument["kind"] as? String == "option"
            {
                let names = (argument["names"] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String }
                let name = names.max { $0.count < $1.count } ?? ""
                if name == "help" || name == "version" { continue }
                out.append((path, name, argument["abstract"] as? String ?? ""))
            }
            for sub in command["subcommands"] as? [[String: Any]] ?? [] {
                walk(sub, path + [sub["commandName"] as! String])
            }
        }
        walk(root["command"] as! [String: Any], [])
        return out
    }

    @Test func everyNumericOptionStatesItsRangeAndRefusesValuesOutsideIt() throws {
        let all = try Self.options()
        #expect(all.count > 40, "dump-help listed only \(all.count) options")
        var numeric: [NumericOption] = []
        for option in all
        where !Self.textOptions.contains(option.name)
            && !Self.textOptions.contains((option.command + [option.name]).joined(separator: " "))
        {
            // "(1…256)", "(0…1024; …)", "(0.01…1)".
            let pattern = /\((-?[0-9.]+)…(-?[0-9.]+)[;)]/
            guard let match = option.help.firstMatch(of: pattern), let lo = Double(match.1), let hi = Double(match.2)
            else {
                Issue.record(
                    "\((option.command + ["--" + option.name]).joined(separator: " ")): help states no range: \(option.help)"
                )
                continue
            }
            numeric.append(NumericOption(command: option.command, name: option.name, range: lo...hi))
        }
        #expect(numeric.count >= 30)

        let dir = folder()
        let db = try trainedDatabase(in: dir, name: "base.db", users: 60, items: 60, ratings: 900, epochs: 2).db
        try "1,1,3\n".write(to: dir.appendingPathComponent("r.csv"), atomically: true, encoding: .utf8)
        var runs = 0
        for option in numeric {
            var values: [Double] = [0, -1, Double(Int.max), option.range.lowerBound - 1, option.range.upperBound + 1]
            if option.range.lowerBound < 1 && option.range.upperBound <= 1 {
                values.append(option.range.lowerBound - 0.001)
            }
            for value in Set(values) {
                let text =
                    value == value.rounded() && abs(value) < 1e18
                    ? String(Int(value)) : value == Double(Int.max) ? String(Int.max) : String(value)
                let flag = option.name.count == 1 ? "-" + option.name : "--" + option.name
                // A fresh copy of the trained database for every run (write commands change it).
                let copy = dir.appendingPathComponent("run.db").path
                for suffix in ["", "-wal", "-shm"] { unlink(copy + suffix) }
                try FileManager.default.copyItem(atPath: db, toPath: copy)
                let key = option.command.joined(separator: " ")
                var base = Self.baseArguments[key] ?? []
                if let i = base.firstIndex(of: flag) { base.removeSubrange(i...i + 1) }
                let arguments = option.command + base + [flag + "=" + text] + (key == "generate" ? [] : ["--db", copy])
                let started = Date()
                let run = try mfrecWithTimeout(arguments, in: dir, seconds: 10)
                runs += 1
                let inRange =
                    option.range.contains(value) && !(text == String(Int.max) && option.range.upperBound < 9e18)
                #expect(run != nil, "\(arguments) did not finish in 10 s")
                guard let run else { continue }
                #expect(
                    [0, 1, 64].contains(run.status),
                    "\(arguments): status \(run.status) after \(Date().timeIntervalSince(started)) s\n\(run.stderr.prefix(400))"
                )
                if !inRange {
                    #expect(
                        run.status == 64 && run.stderr.contains(flag),
                        "\(arguments) is out of range: \(run.status) \(run.stderr.prefix(300))")
                }
            }
        }
        print("option ranges: \(numeric.count) numeric options, \(runs) runs under a 10 s timeout each")
    }
}

/// Runs the binary; nil when it did not finish within `seconds` (it is then killed).
func mfrecWithTimeout(_ arguments: [String], in directory: URL, seconds: Double) throws -> Run? {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: mfrecBinary)
    process.currentDirectoryURL = directory
    process.arguments = arguments
    let out = directory.appendingPathComponent("stdout.txt"), err = directory.appendingPathComponent("stderr.txt")
    _ = FileManager.default.createFile(atPath: out.path, contents: nil)
    _ = FileManager.default.createFile(atPath: err.path, contents: nil)
    process.standardOutput = try FileHandle(forWritingTo: out)
    process.standardError = try FileHandle(forWritingTo: err)
    try process.run()
    let deadline = Date().addingTimeInterval(seconds)
    while process.isRunning && Date() < deadline { usleep(5_000) }
    if process.isRunning {
        process.terminate()
        process.waitUntilExit()
        return nil
    }
    let status =
        process.terminationReason == .uncaughtSignal ? 128 + process.terminationStatus : process.terminationStatus
    return Run(
        status: status, stdout: (try? String(contentsOf: out, encoding: .utf8)) ?? "",
        stderr: (try? String(contentsOf: err, encoding: .utf8)) ?? "")
}
