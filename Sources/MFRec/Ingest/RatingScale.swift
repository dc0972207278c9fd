import Foundation

/// Where an ingest's rating scale came from.
public enum ScaleSource: String, Sendable, Codable {
    /// `--scale` (`IngestOptions.scale`).
    case given
    /// The database's, fixed by its first ingest.
    case stored
    /// The smallest standard scale holding every rating of the first ingest.
    case standard
    /// The first ingest's own range: no standard scale holds it.
    case data
}

/// The rating scale rules: the first ingest fixes the scale (given, or the smallest standard scale that
/// holds every rating, or failing those the data's range); every later writer refuses ratings outside it.
public enum RatingScale {
    /// The standard scales, smallest first: 0–1, 1–5, 0.5–5, 1–10.
    public static let standard: [ClosedRange<Double>] = [0...1, 1...5, 0.5...5, 1...10]

    /// The smallest standard scale holding `observed`, if any.
    /// - Parameter observed: the smallest and largest rating seen.
    /// - Returns: the scale, or nil when no standard scale holds the ratings.
    public static func fitting(_ observed: ClosedRange<Double>) -> ClosedRange<Double>? {
        standard.first { $0.contains(observed.lowerBound) && $0.contains(observed.upperBound) }
    }

    /// "1–5", "0.5–5".
    /// - Parameter scale: the scale.
    /// - Returns: the scale as mfrec prints it.
    public static func describe(_ scale: ClosedRange<Double>) -> String {
        "\(number(scale.lowerBound))–\(number(scale.upperBound))"
    }

    /// 5.0 → "5", 4.5 → "4.5", -0.0 → "0".
    static func number(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : String(value)
    }
}
