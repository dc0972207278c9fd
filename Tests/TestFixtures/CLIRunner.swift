import Foundation

// Running the real `mfrec` binary from tests: every test target that drives the CLI or the server uses these.

/// The `mfrec` executable built next to this test bundle.
public let mfrecBinary: String = {
    // argv[0], resolved against the working folder (tests never read system paths such as /proc).
    let exe = URL(
        fileURLWithPath: CommandLine.arguments[0],
        relativeTo: URL(fileURLWithPath: FileManager.default.currentDirectoryPath))
    var dir = exe.standardizedFileURL.deletingLastPathComponent()
    // The test binary lives in <build>/mfrecPackageTests.xctest (a file on Linux, a bundle elsewhere).
    while !FileManager.default.isExecutableFile(atPath: dir.appendingPathComponent("mfrec").path) && dir.path != "/" {
        dir = dir.deletingLastPathComponent()
    }
    return dir.appendingPathComponent("mfrec").path
}()

/// What a finished run of the binary left: its exit status and output.
public struct Run: Sendable {
    /// The exit status (or 128 + signal where a caller computes it so).
    public var status: Int32
    /// Standard output.
    public var stdout: String
    /// Standard error.
    public var stderr: String

    /// A run with this status and output.
    public init(status: Int32, stdout: String, stderr: String) {
        self.status = status
        self.stdout = stdout
        self.stderr = stderr
    }
}

/// Runs the real binary and waits for it.
@discardableResult
public func mfrec(
    _ arguments: [String], environment: [String: String] = [:], binary: String = mfrecBinary,
    in directory: URL? = nil
) throws -> Run {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: binary)
    if let directory { process.currentDirectoryURL = directory }
    process.arguments = arguments
    var env = ProcessInfo.processInfo.environment
    env.removeValue(forKey: "MFREC_DB")
    for (k, v) in environment { env[k] = v }
    process.environment = env
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    // Read both pipes concurrently so a full pipe never blocks the child.
    let errData = ThreadBox<Data>()
    let reader = Thread { errData.value = err.fileHandleForReading.readDataToEndOfFile() }
    reader.start()
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    while errData.value == nil { usleep(1000) }
    return Run(
        status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
        stderr: String(decoding: errData.value!, as: UTF8.self))
}

/// Generates a ratings file with the real binary, ingests it and trains a first model.
public func trainedDatabase(in dir: URL, name: String, users: Int, items: Int, ratings: Int, epochs: Int) throws -> (
    db: String, data: String
) {
    let db = dir.appendingPathComponent(name).path, data = dir.appendingPathComponent("r.data").path
    let steps = [
        ["generate", "--users", "\(users)", "--items", "\(items)", "--ratings", "\(ratings)", "-o", data],
        ["ingest", data, "--db", db], ["train", "--db", db, "--epochs", "\(epochs)", "--quiet", "--tune", "off"],
    ]
    for step in steps {
        let run = try mfrec(step)
        guard run.status == 0 else { throw SetUpFailed(step: step, run: run) }
    }
    return (db, data)
}

/// A set-up command of a test failed (its arguments and output say which and why).
public struct SetUpFailed: Error, CustomStringConvertible {
    /// The arguments of the command that failed.
    public let step: [String]
    /// What it printed.
    public let run: Run
    /// The command and its error output.
    public var description: String { "mfrec \(step.joined(separator: " ")) exited \(run.status): \(run.stderr)" }
}

/// Starts the real binary without waiting for it (output discarded), for kill tests.
public func startMfrec(_ arguments: [String]) throws -> Process {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: mfrecBinary)
    process.arguments = arguments
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    try process.run()
    return process
}

/// A value shared between threads, guarded by a lock.
public final class ThreadBox<T>: @unchecked Sendable {
    /// An empty box.
    public init() {}
    private let lock = NSLock()
    private var stored: T?
    /// Changes the value under the lock (a get-then-set from two threads would lose updates).
    public func mutate(_ change: (inout T?) -> Void) {
        lock.lock()
        change(&stored)
        lock.unlock()
    }
    /// The value (nil until set).
    public var value: T? {
        get {
            lock.lock()
            defer { lock.unlock() }
            return stored
        }
        set {
            lock.lock()
            stored = newValue
            lock.unlock()
        }
    }
}

/// A new empty folder under the temp directory.
public func folder() -> URL {
    scratchFolder("mfrec-cli")
}
