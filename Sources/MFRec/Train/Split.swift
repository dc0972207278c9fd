import Foundation
import MFEngine

/// How the test set of a training run was chosen. Stored with each snapshot so `eval` can rebuild it.
public enum TestSplit: Codable, Sendable, Equatable {
    /// A random share of the ratings. Membership is a hash of (seed, user, item), so it does not depend
    /// on the order of the ratings and a rating keeps its side when others are added later.
    case random(fraction: Double, seed: UInt64)
    /// The ratings of a file (any format `ingest` reads); training used every stored rating.
    case file(path: String)
    /// No test set: training used every rating.
    case none

    /// Whether (user, item) is in the test side of a random split.
    /// - Parameters:
    ///   - user: the user's dense id.
    ///   - item: the item's dense id.
    ///   - fraction: the test share (0 puts nothing in the test side).
    ///   - seed: the split's seed.
    /// - Returns: true for the test side; the same pair always lands on the same side.
    public static func isTest(user: Int32, item: Int32, fraction: Double, seed: UInt64) -> Bool {
        guard fraction > 0 else { return false }
        var x =
            seed &+ (UInt64(UInt32(bitPattern: user)) << 32 | UInt64(UInt32(bitPattern: item))) &* 0x9E37_79B9_7F4A_7C15
        x = (x ^ (x >> 30)) &* 0xBF58_476D_1CE4_E5B9
        x = (x ^ (x >> 27)) &* 0x94D0_49BB_1331_11EB
        x ^= x >> 31
        return Double(x >> 11) / 9_007_199_254_740_992.0 < fraction
    }

    /// Whether a stored (user, item) pair is on the test side of this split: only a random split holds stored
    /// pairs out (a test file's ratings are not stored ones; `.none` tests nothing).
    /// - Parameters:
    ///   - user: the user's dense id.
    ///   - item: the item's dense id.
    /// - Returns: true for the test side.
    public func holdsOut(user: Int32, item: Int32) -> Bool {
        if case .random(let fraction, let seed) = self {
            return TestSplit.isTest(user: user, item: item, fraction: fraction, seed: seed)
        }
        return false
    }

    /// Whether this is a random split (its test ratings are stored ones).
    public var isRandom: Bool {
        if case .random = self { return true }
        return false
    }

    /// A one-line description ("random 20% test split, seed 42").
    public var summary: String {
        switch self {
        case .random(let fraction, let seed):
            return "random \(Int((fraction * 100).rounded()))% test split, seed \(seed)"
        case .file(let path): return "test file \(path)"
        case .none: return "no test set"
        }
    }
}
