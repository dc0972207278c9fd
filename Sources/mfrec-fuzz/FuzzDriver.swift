import Foundation
import MFRecFuzz

// Built two ways. With `-D FUZZING -sanitize=fuzzer,address` (only `scripts/fuzz.sh` passes them) this file
// defines libFuzzer's entry point and hands the process to libFuzzer's own driver (`LLVMFuzzerRunDriver`;
// SwiftPM names an executable's entry `mfrec_fuzz_main`); the target comes from MFREC_FUZZ_TARGET. Built
// plainly (as `swift build` and `swift test` do) it is a replay tool: `mfrec-fuzz TARGET FILE...` runs each
// file through the target once. The targets are MFRecFuzz's (readers and decoders) and `cli` (CLIFuzz.swift: command
// lines run in-process against a trained database in a temp folder).

/// Every target's name, and the function that runs one input through it.
let fuzzTargets: [(name: String, run: @Sendable ([UInt8]) -> Void, seeds: @Sendable () -> [[UInt8]])] =
    FuzzTarget.allCases.map { target in (target.rawValue, target.run, { target.seeds }) }
    + [("cli", CLIFuzz.run, CLIFuzz.seedInputs)]

func fuzzTarget(named name: String) -> (@Sendable ([UInt8]) -> Void)? { fuzzTargets.first { $0.name == name }?.run }
let targetNames = fuzzTargets.map(\.name).joined(separator: ", ")

#if FUZZING
    let selectedTarget: @Sendable ([UInt8]) -> Void = {
        let name = ProcessInfo.processInfo.environment["MFREC_FUZZ_TARGET"] ?? ""
        guard let target = fuzzTarget(named: name) else { fatalError("set MFREC_FUZZ_TARGET to one of " + targetNames) }
        return target
    }()

    /// libFuzzer's callback: one input through the selected target.
    /// - Parameters:
    ///   - data: the input's bytes (copied before a target sees them).
    ///   - size: their count.
    /// - Returns: 0, as libFuzzer expects.
    @_cdecl("LLVMFuzzerTestOneInput")
    public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
        selectedTarget(data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? [])
        return 0
    }

    typealias FuzzCallback = @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32

    @_silgen_name("LLVMFuzzerRunDriver")
    func runFuzzerDriver(
        _ argc: UnsafeMutablePointer<Int32>,
        _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
        _ callback: FuzzCallback
    ) -> Int32

    /// The process entry (SwiftPM's name for an executable's `main`): libFuzzer's driver takes over.
    /// - Parameters:
    ///   - argc: the argument count.
    ///   - argv: the arguments.
    /// - Returns: the process's exit status.
    @_cdecl("mfrec_fuzz_main")
    public func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
        var count = argc
        var arguments = argv
        _ = selectedTarget
        return runFuzzerDriver(&count, &arguments, fuzzOneInput)
    }
#else
    @main
    struct FuzzReplay {
        static func main() {
            let arguments = CommandLine.arguments.dropFirst()
            if arguments.first == "--write-seeds", let folder = arguments.dropFirst().first {
                // mfrec-fuzz --write-seeds DIR: DIR/TARGET/seed-N for every target.
                for target in fuzzTargets {
                    let dir = (folder as NSString).appendingPathComponent(target.name)
                    try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
                    for (n, seed) in target.seeds().enumerated() {
                        _ = FileManager.default.createFile(atPath: dir + "/seed-\(n)", contents: Data(seed))
                    }
                }
                return
            }
            guard let name = arguments.first, let target = fuzzTarget(named: name) else {
                print("usage: mfrec-fuzz TARGET FILE... (targets: \(targetNames))")
                exit(64)
            }
            for path in arguments.dropFirst() {
                guard let data = FileManager.default.contents(atPath: path) else {
                    print("cannot read \(path)")
                    exit(1)
                }
                target(Array(data))
            }
            if name == "cli" { CLIFuzz.removeFolder() }
            print("replayed \(arguments.count - 1) inputs through \(name)")
        }
    }
#endif
