import MFStore

/// Which items a list may hold: applied inside the scan (the items it rules out are skipped before the
/// heap), so a filtered list is the true top-n of the allowed items, not a shortened unfiltered one.
public struct ItemFilter: Sendable, Equatable {
    /// Items that may not appear (ids of the ratings file; unknown ids are ignored).
    public var excluded: Set<String>
    /// When set, the only items that may appear (the candidate set; unknown ids are ignored).
    public var only: Set<String>?
    /// When set, only items with this genre (a whole name of the item file's "|"-separated genres, any case).
    public var genre: String?
    /// Only items with at least this many stored ratings (0: any).
    public var minRatings: Int

    /// A filter; the defaults allow every item.
    /// - Parameters:
    ///   - excluded: item keys never recommended.
    ///   - only: when given, the only item keys recommended.
    ///   - genre: only items of this genre.
    ///   - minRatings: only items with at least this many ratings.
    public init(excluded: Set<String> = [], only: Set<String>? = nil, genre: String? = nil, minRatings: Int = 0) {
        self.excluded = excluded
        self.only = only
        self.genre = genre
        self.minRatings = minRatings
    }

    /// Whether it allows every item.
    public var allowsEverything: Bool { excluded.isEmpty && only == nil && genre == nil && minRatings <= 0 }
}

extension QueryEngine {
    /// The dense ids `filter` rules out, sorted ascending (what the scans skip).
    /// - Throws: `MFRecError.unknownGenre` for a genre no item has.
    func banned(by filter: ItemFilter) throws -> [Int32] {
        if filter.allowsEverything { return [] }
        return try pool.read { store -> [Int32] in
            let itemCount = try store.itemCount()
            var allowed = [Bool](repeating: true, count: itemCount)
            for key in filter.excluded { if let id = try store.itemID(forKey: key) { allowed[id] = false } }
            if let only = filter.only {
                var keep = [Bool](repeating: false, count: itemCount)
                for key in only { if let id = try store.itemID(forKey: key) { keep[id] = true } }
                for i in 0..<itemCount where !keep[i] { allowed[i] = false }
            }
            if let genre = filter.genre {
                let ids = try store.itemIDs(genre: genre)
                if ids.isEmpty {
                    let known = try store.genres()
                    if !known.contains(where: { $0.lowercased() == genre.lowercased() }) {
                        throw MFRecError.unknownGenre(genre, known: known)
                    }
                }
                var keep = [Bool](repeating: false, count: itemCount)
                for id in ids where Int(id) < itemCount { keep[Int(id)] = true }
                for i in 0..<itemCount where !keep[i] { allowed[i] = false }
            }
            if filter.minRatings > 0 {
                // Counted once per live generation (one pass over the ratings), not once per query.
                let counts = try cached(\.itemRatingCounts, key: try store.liveGeneration()) {
                    try store.itemRatingCounts()
                }
                for i in 0..<itemCount where i >= counts.count || Int(counts[i]) < filter.minRatings {
                    allowed[i] = false
                }
            }
            return (0..<itemCount).compactMap { allowed[$0] ? nil : Int32($0) }
        }
    }
}
