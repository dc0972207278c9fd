import Foundation

/// Where the test suites find MovieLens 100K: `../shared/data/ml-100k` beside the repository (the one
/// place this path is computed). Tests that need it skip themselves when it is absent.
public enum Fixtures {
    /// The `ml-100k` folder.
    public static let movieLens100K = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("shared/data/ml-100k")
    /// `u.data`.
    public static let uData = movieLens100K.appendingPathComponent("u.data").path
    /// `u.item`.
    public static let uItem = movieLens100K.appendingPathComponent("u.item").path
    /// Whether the data is there.
    public static var haveMovieLens: Bool { FileManager.default.fileExists(atPath: uData) }
}
