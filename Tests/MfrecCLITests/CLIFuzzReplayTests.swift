import Foundation
import TestFixtures
import Testing

/// The CLI fuzz target's kept corpus (`fuzz/corpus/cli`, minimized by `scripts/fuzz.sh cli SECONDS`) and every command
/// line a fuzz run found crashing (`fuzz/regressions/cli`), replayed by the plain `mfrec-fuzz` build. It runs them
/// in-process against a trained database in its own temp folder (here, one made for the test), so it runs as a
/// child process: a trap in any command line fails this test with the child's signal.
@Suite struct CLIFuzzReplayTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("fuzz")

    @Test func corpusAndRegressionsReplay() throws {
        var files: [String] = []
        for kind in ["corpus", "regressions"] {
            let dir = Self.root.appendingPathComponent(kind).appendingPathComponent("cli")
            for name in (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? [] {
                files.append(dir.appendingPathComponent(name).path)
            }
        }
        #expect(files.count > 0, "no corpus for cli: run scripts/fuzz.sh cli SECONDS")
        let temp = folder()
        defer { try? FileManager.default.removeItem(at: temp) }
        let fuzz = URL(fileURLWithPath: mfrecBinary).deletingLastPathComponent().appendingPathComponent("mfrec-fuzz")
        let run = try mfrec(["cli"] + files, environment: ["TMPDIR": temp.path], binary: fuzz.path)
        #expect(run.status == 0, "\(run.stderr.suffix(2000))")
        // (A command line that writes to `-` sends the process's own messages to standard error from then on.)
        #expect(
            (run.stdout + run.stderr).contains("replayed \(files.count) inputs through cli"),
            "\(run.stderr.suffix(500))")
        // The target cleans its folder up after a replay.
        #expect(try FileManager.default.contentsOfDirectory(atPath: temp.path).isEmpty)
        print("fuzz replay (cli): \(files.count) command lines")
    }

    /// The reader targets write their inputs into a folder of the process (`mfrec-fuzz-PID` in the temp folder):
    /// it must be gone when the process exits, as the `swift test` process that replays them in-process exits too
    /// (each run used to leave one behind).
    @Test func aReaderReplayLeavesNoFolderBehind() throws {
        let dir = Self.root.appendingPathComponent("corpus").appendingPathComponent("ratings")
        let files = ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []).sorted().prefix(5)
            .map { dir.appendingPathComponent($0).path }
        #expect(!files.isEmpty, "no corpus for ratings")
        let temp = folder()
        defer { try? FileManager.default.removeItem(at: temp) }
        let fuzz = URL(fileURLWithPath: mfrecBinary).deletingLastPathComponent().appendingPathComponent("mfrec-fuzz")
        let run = try mfrec(["ratings"] + files, environment: ["TMPDIR": temp.path], binary: fuzz.path)
        #expect(run.status == 0, "\(run.stderr.suffix(2000))")
        #expect(try FileManager.default.contentsOfDirectory(atPath: temp.path) == [])
    }
}
