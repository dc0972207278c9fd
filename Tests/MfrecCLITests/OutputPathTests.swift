import Foundation
import TestFixtures
import Testing

/// Issue 12, defects 1 and 3: how output paths are written. `-` is standard output, links are followed,
/// FIFOs are written through, regular files are replaced whole (a signal or a kill leaves the old content),
/// and temp files never outlive their process for long. Every path is made in a temp folder.
@Suite struct OutputPathTests {
    let dir = folder()

    func trained() throws -> String {
        try trainedDatabase(in: dir, name: "t.db", users: 200, items: 120, ratings: 6000, epochs: 2).db
    }

    func path(_ name: String) -> String { dir.appendingPathComponent(name).path }

    func isLink(_ name: String) -> Bool {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: path(name))) != nil
    }

    func tempFiles() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.contains(".tmp-") }
    }

    @Test func aSymlinkIsFollowedNotReplaced() throws {
        let db = try trained()
        try "old\n".write(toFile: path("target.csv"), atomically: false, encoding: .utf8)
        try FileManager.default.createSymbolicLink(atPath: path("link.csv"), withDestinationPath: "target.csv")
        try FileManager.default.createSymbolicLink(atPath: path("dangling.csv"), withDestinationPath: "new.csv")
        try FileManager.default.createSymbolicLink(atPath: path("link.data"), withDestinationPath: "target.data")
        for (link, target) in [("link.csv", "target.csv"), ("dangling.csv", "new.csv")] {
            let run = try mfrec(["recommend", "--all", "-n", "2", "--output", link, "--db", db], in: dir)
            #expect(run.status == 0, "\(run.stderr)")
            #expect(isLink(link), "\(link) was replaced by a regular file")
            let text = try String(contentsOfFile: path(target), encoding: .utf8)
            #expect(text.hasPrefix("user,rank,item,predicted_rating\n") && text.split(separator: "\n").count > 100)
        }
        // The same for the other writers: generate, train --history and --plot.
        #expect(
            try mfrec(["generate", "--users", "20", "--items", "20", "--ratings", "50", "-o", "link.data"], in: dir)
                .status == 0)
        #expect(isLink("link.data"))
        #expect(try String(contentsOfFile: path("target.data"), encoding: .utf8).split(separator: "\n").count == 50)
        let train = try mfrec(
            [
                "train", "--db", db, "--epochs", "2", "--tune", "off", "--quiet", "--history", "link.csv", "--plot",
                "dangling.csv",
            ], in: dir)
        #expect(train.status == 0, "\(train.stderr)")
        #expect(isLink("link.csv") && isLink("dangling.csv"))
        #expect(try String(contentsOfFile: path("target.csv"), encoding: .utf8).hasPrefix("epoch,train_loss"))
        #expect(try String(contentsOfFile: path("new.csv"), encoding: .utf8).contains("<svg"))
        #expect(try tempFiles().isEmpty)
    }

    @Test func dashIsStandardOutputAndOnlyTheDataGoesThere() throws {
        let db = try trained()
        let all = try mfrec(["recommend", "--all", "-n", "2", "--output", "-", "--db", db], in: dir)
        #expect(all.status == 0, "\(all.stderr)")
        let lines = all.stdout.split(separator: "\n")
        #expect(lines.first == "user,rank,item,predicted_rating" && lines.count == 1 + 2 * 200, "\(lines.prefix(3))")
        #expect(all.stderr.contains("wrote the top 2 of 200 users to -"))
        let generate = try mfrec(["generate", "--users", "20", "--items", "20", "--ratings", "50", "-o", "-"], in: dir)
        #expect(generate.status == 0 && generate.stdout.split(separator: "\n").count == 50, "\(generate.stdout)")
        let history = try mfrec(["train", "--db", db, "--epochs", "3", "--tune", "off", "--history", "-"], in: dir)
        #expect(history.status == 0, "\(history.stderr)")
        #expect(
            history.stdout.split(separator: "\n").first
                == "epoch,train_loss,train_mae,train_mse,test_mae,test_mse,test_rmse,seconds,learning_rate")
        #expect(history.stdout.split(separator: "\n").count == 4, "\(history.stdout)")
        #expect(!FileManager.default.fileExists(atPath: path("-")))
        // export writes a folder: `-` is a usage error.
        let export = try mfrec(["export", "-o", "-", "--db", db], in: dir)
        #expect(export.status == 64 && export.stderr.contains("--output"), "\(export.stderr)")
    }

    @Test func aFIFOIsWrittenThrough() throws {
        let db = try trained()
        #expect(mkfifo(path("pipe"), 0o644) == 0)
        let received = ThreadBox<Data>()
        let reader = Thread { received.value = FileHandle(forReadingAtPath: path("pipe"))?.readDataToEndOfFile() }
        reader.start()
        let run = try mfrec(["recommend", "--all", "-n", "3", "--output", "pipe", "--db", db], in: dir)
        #expect(run.status == 0, "\(run.stderr)")
        let deadline = Date().addingTimeInterval(10)
        while received.value == nil && Date() < deadline { usleep(10_000) }
        let text = String(decoding: received.value ?? Data(), as: UTF8.self)
        #expect(text.split(separator: "\n").count == 1 + 3 * 200)
        var info = stat()
        #expect(stat(path("pipe"), &info) == 0 && (info.st_mode & S_IFMT) == S_IFIFO, "the FIFO was replaced")
        #expect(try tempFiles().isEmpty)
    }

    @Test func exportNamesTheReasonAFolderCannotBeMade() throws {
        let db = try trained()
        try "x".write(toFile: path("file"), atomically: false, encoding: .utf8)
        let run = try mfrec(["export", "-o", "file/sub", "--db", db], in: dir)
        #expect(run.status == 1)
        #expect(
            run.stderr.contains("cannot write file/sub") && run.stderr.contains("file is not a folder"), "\(run.stderr)"
        )
        #expect(!run.stderr.contains("NSCocoaErrorDomain"))
    }

    /// A regular file is replaced whole: SIGINT and SIGTERM leave the old content and no temp file; SIGKILL
    /// leaves a temp file that the next write of the same path removes.
    @Test func anInterruptedWriteLeavesTheOldContent() throws {
        let big = ["generate", "--users", "200000", "--items", "20000", "--ratings", "30000000", "-o", "out.data"]
        for sig in [SIGINT, SIGTERM, SIGKILL] {
            try "old\n".write(toFile: path("out.data"), atomically: false, encoding: .utf8)
            let process = Process()
            process.executableURL = URL(fileURLWithPath: mfrecBinary)
            process.arguments = big
            process.currentDirectoryURL = dir
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            let temp = path("out.data.tmp-\(process.processIdentifier)")
            let deadline = Date().addingTimeInterval(60)  // sanitizer builds start slowly
            while !FileManager.default.fileExists(atPath: temp) && Date() < deadline { usleep(2_000) }
            #expect(FileManager.default.fileExists(atPath: temp), "no temp file seen")
            kill(process.processIdentifier, sig)
            process.waitUntilExit()
            // Ended by the signal, or (when the re-raised signal is not delivered in time, as under
            // AddressSanitizer) by the shell's convention for it, 128 + the signal.
            let bySignal = process.terminationReason == .uncaughtSignal && process.terminationStatus == sig
            let byStatus =
                process.terminationReason == .exit && process.terminationStatus == 128 + sig && sig != SIGKILL
            #expect(
                bySignal || byStatus,
                "signal \(sig): \(process.terminationReason.rawValue) \(process.terminationStatus)")
            #expect(try String(contentsOfFile: path("out.data"), encoding: .utf8) == "old\n")
            #expect(FileManager.default.fileExists(atPath: temp) == (sig == SIGKILL), "signal \(sig)")
        }
        #expect(try tempFiles().count == 1)
        let small = try mfrec(
            ["generate", "--users", "20", "--items", "20", "--ratings", "50", "-o", "out.data"], in: dir)
        #expect(small.status == 0)
        #expect(try tempFiles().isEmpty, "the dead process's temp file stayed")
        #expect(try String(contentsOfFile: path("out.data"), encoding: .utf8).split(separator: "\n").count == 50)
    }
}
