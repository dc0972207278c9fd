import Foundation

/// Wall-clock seconds of `body`.
func time<R>(_ body: () throws -> R) rethrows -> (R, Double) {
    let start = DispatchTime.now().uptimeNanoseconds
    let result = try body()
    return (result, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
}

/// Peak resident memory of this process so far, in MB.
func peakRSSMegabytes() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_maxrss) / 1024
}

/// Current resident memory of this process, in MB.
func currentRSSMegabytes() -> Double {
    guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
    let fields = text.split(separator: " ")
    guard fields.count > 1, let pages = Double(fields[1]) else { return 0 }
    return pages * Double(sysconf(Int32(_SC_PAGESIZE))) / 1_048_576
}

struct ChildRun {
    var status: Int32
    var seconds: Double
    var peakMegabytes: Double
}

/// Runs a program to completion and measures its wall time and peak memory (wait4's rusage). With `output`, its
/// stdout and stderr go to that file (created or truncated) instead; `quiet` sends stdout to /dev/null.
func runChild(
    _ path: String, _ arguments: [String], quiet: Bool = true, environment: [String: String] = [:],
    output: String? = nil
) throws -> ChildRun {
    var pid: pid_t = 0
    let argv: [UnsafeMutablePointer<CChar>?] = ([path] + arguments).map { strdup($0) } + [nil]
    defer { for p in argv { free(p) } }
    // This process's environment, with `environment`'s variables set over it.
    var variables = ProcessInfo.processInfo.environment
    for (name, value) in environment { variables[name] = value }
    let envp: [UnsafeMutablePointer<CChar>?] = variables.map { strdup("\($0.key)=\($0.value)") } + [nil]
    defer { for p in envp { free(p) } }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    if let output {
        posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
    } else if quiet {
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
    }
    let start = DispatchTime.now().uptimeNanoseconds
    let rc = posix_spawn(&pid, path, &actions, nil, argv, envp)
    guard rc == 0 else { throw BenchError("cannot start \(path): \(String(cString: strerror(rc)))") }
    var status: Int32 = 0
    var usage = rusage()
    _ = wait4(pid, &status, 0, &usage)
    let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    return ChildRun(status: status, seconds: seconds, peakMegabytes: Double(usage.ru_maxrss) / 1024)
}

/// Runs a program to completion with its stdout and stderr captured: what it printed, its exit status and its wall
/// seconds.
func captureChild(_ path: String, _ arguments: [String]) throws -> (output: String, status: Int32, seconds: Double) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    let start = Date()
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (String(decoding: data, as: UTF8.self), process.terminationStatus, Date().timeIntervalSince(start))
}

struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// The mfrec binary next to this one.
var mfrecPath: String {
    let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    return URL(fileURLWithPath: exe).deletingLastPathComponent().appendingPathComponent("mfrec").path
}

func percentile(_ sorted: [Double], _ p: Double) -> Double {
    guard !sorted.isEmpty else { return 0 }
    return sorted[min(sorted.count - 1, Int(Double(sorted.count - 1) * p + 0.5))]
}

/// The median of values (the mean of the middle two for an even count; 0 for none).
func medianOf(_ values: [Double]) -> Double {
    let v = values.sorted()
    guard !v.isEmpty else { return 0 }
    return v.count % 2 == 1 ? v[v.count / 2] : (v[v.count / 2 - 1] + v[v.count / 2]) / 2
}

func fmt(_ x: Double, _ digits: Int = 2) -> String { String(format: "%.\(digits)f", x) }

func rate(_ count: Double, _ seconds: Double) -> String {
    let r = count / max(seconds, 1e-12)
    if r >= 1e6 { return fmt(r / 1e6) + "M" }
    if r >= 1e3 { return fmt(r / 1e3, 1) + "k" }
    return fmt(r, 1)
}

func section(_ title: String) { print("\n== \(title)") }

let sharedML100K: String = {
    let candidates = [
        "../shared/data/ml-100k/u.data",
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent(
                "shared/data/ml-100k/u.data"
            ).path,
    ]
    return candidates.first { FileManager.default.fileExists(atPath: $0) } ?? candidates[0]
}()
