import MFRec

/// JSON for the hot routes, written straight into bytes: Foundation's `JSONEncoder` took as long as the
/// query itself for a ten-item list (measured with perf under `mfrec-bench serve`). Keys are written in
/// sorted order, as the `JSONEncoder` answers of the other routes and `recommend --format json` are.
struct JSONText {
    private(set) var bytes: [UInt8] = []

    init(capacity: Int = 1024) { bytes.reserveCapacity(capacity) }

    mutating func raw(_ text: StaticString) {
        text.withUTF8Buffer { bytes.append(contentsOf: $0) }
    }

    mutating func string(_ value: String) { JSONEscape.append(value, to: &bytes) }

    /// A finite number as Swift prints it (the shortest text that reads back to the same value); JSON has
    /// no NaN or infinity, so those are written as null.
    mutating func number(_ value: Double) {
        if value.isFinite { bytes.append(contentsOf: value.description.utf8) } else { raw("null") }
    }

    mutating func number(_ value: Int) { bytes.append(contentsOf: String(value).utf8) }

    mutating func bool(_ value: Bool) { value ? raw("true") : raw("false") }

    // MARK: The answers of the hot routes

    /// `{"coldStart":…,"items":[…],"ranking":"…","user":"…"}`, as `RecommendationList` encodes.
    static func encode(_ list: RecommendationList) -> [UInt8] {
        var out = JSONText(capacity: 96 + 96 * list.items.count)
        out.raw("{\"coldStart\":")
        out.bool(list.coldStart)
        out.raw(",\"items\":[")
        for (n, item) in list.items.enumerated() {
            if n > 0 { out.raw(",") }
            if let because = item.because {
                out.raw("{\"because\":[")
                for (m, reason) in because.enumerated() {
                    if m > 0 { out.raw(",") }
                    out.raw("{\"item\":")
                    out.string(reason.item)
                    out.raw(",\"rating\":")
                    out.number(reason.rating)
                    out.raw(",\"similarity\":")
                    out.number(reason.similarity)
                    if let title = reason.title {
                        out.raw(",\"title\":")
                        out.string(title)
                    }
                    out.raw("}")
                }
                out.raw("],\"item\":")
            } else {
                out.raw("{\"item\":")
            }
            out.string(item.item)
            out.raw(",\"predictedRating\":")
            out.number(item.predictedRating)
            out.raw(",\"rank\":")
            out.number(item.rank)
            if let title = item.title {
                out.raw(",\"title\":")
                out.string(title)
            }
            out.raw("}")
        }
        out.raw("],\"ranking\":")
        out.string(list.ranking.rawValue)
        out.raw(",\"user\":")
        out.string(list.user)
        out.raw("}")
        return out.bytes
    }
}
