// swift-tools-version: 6.0
import PackageDescription

let package = Package(
    name: "mfrec",
    platforms: [.macOS(.v13)],
    products: [
        .library(name: "MFRec", targets: ["MFRec"]),
        .executable(name: "mfrec", targets: ["mfrec"]),
        .executable(name: "mfrec-bench", targets: ["mfrec-bench"]),
        .executable(name: "mfrec-fuzz", targets: ["mfrec-fuzz"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        // `swift package generate-documentation --target MFRec` (the DocC catalog in Sources/MFRec/MFRec.docc).
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"),
        // `mfrec serve` (MFRecServer): HTTP on Hummingbird 2, Prometheus text for /metrics.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        // `mfrec serve` runs Swift concurrency's jobs on NIO's event loops (no hop between thread pools).
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        // The server's end-to-end tests and `mfrec-bench serve` call it over real HTTP.
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
    ],
    targets: [
        // System libraries (Debian: libsqlite3-dev, zlib1g-dev).
        .systemLibrary(name: "CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),

        // Turns the top-level migrations/*.sql into a Swift source compiled into MFStore.
        .executableTarget(name: "EmbedMigrationsTool"),
        .plugin(name: "EmbedMigrations", capability: .buildTool(), dependencies: ["EmbedMigrationsTool"]),

        // SQLite store: database, statements, transactions, migrator, typed tables.
        .target(name: "MFStore", dependencies: ["CSQLite", "CZlib"], plugins: ["EmbedMigrations"]),
        // Pure computation: factor model, SGD trainer, metrics, top-n heap, item matrix file.
        // The top-n scan's dot products: AVX2+FMA chosen at run time, portable C otherwise.
        .target(name: "CKernels"),
        .target(name: "MFEngine", dependencies: ["CKernels"]),
        // The embeddable API: readers, ingest, train, recommend.
        .target(name: "MFRec", dependencies: ["MFStore", "MFEngine", "CZlib"]),
        // Fuzz targets (readers and decoders fed arbitrary bytes), and their driver: libFuzzer's entry point when
        // scripts/fuzz.sh builds it with -sanitize=fuzzer,address -D FUZZING, a corpus replay tool otherwise.
        .target(name: "MFRecFuzz", dependencies: ["MFRec", "MFEngine", "CZlib"]),
        .executableTarget(name: "mfrec-fuzz", dependencies: ["MFRecFuzz", "MFRecCLI"]),
        // The HTTP server (`mfrec serve`): routes, JSON, auth and metrics over MFRec; nothing HTTP-specific in MFRec.
        .target(
            name: "MFRecServer",
            dependencies: [
                "MFRec",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            exclude: ["openapi.yaml"]),
        // The command-line tool: a thin layer over MFRec (and MFRecServer for `serve`). Its commands are a library,
        // so that the CLI fuzz target (in mfrec-fuzz) runs them in-process; the executable only calls `Mfrec.main()`.
        .target(
            name: "MFRecCLI",
            dependencies: [
                "MFRec", "MFRecServer",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        .executableTarget(name: "mfrec", dependencies: ["MFRecCLI"]),
        // Benchmarks (release build, outside the test suite).
        .executableTarget(
            name: "mfrec-bench",
            dependencies: [
                "MFRec", "MFStore", "MFEngine", "CSQLite", "CZlib",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                // `mfrec-bench serve`: the fixed-body HTTP ceiling runs on the same framework as the server.
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]),

        // The one place the tests compute where the MovieLens fixture lives.
        .target(name: "TestFixtures", path: "Tests/TestFixtures"),
        .testTarget(name: "MFStoreTests", dependencies: ["MFStore", "TestFixtures"]),
        .testTarget(name: "MFEngineTests", dependencies: ["MFEngine", "TestFixtures"]),
        .testTarget(
            name: "MFRecTests", dependencies: ["MFRec", "MFStore", "MFEngine", "CZlib", "TestFixtures", "MFRecFuzz"],
            exclude: ["Corpus"]),
        .testTarget(
            name: "MfrecCLITests",
            dependencies: ["mfrec", "mfrec-fuzz", "MFRec", "MFStore", "MFEngine", "TestFixtures"]),
        // The server end to end: the real `mfrec serve` binary on a loopback port, called over HTTP.
        .testTarget(
            name: "MFRecServerTests",
            dependencies: [
                "mfrec", "MFRec", "MFRecServer", "MFStore", "TestFixtures",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ],
            exclude: ["schemathesis.toml"]),
    ],
    swiftLanguageModes: [.v6]
)
