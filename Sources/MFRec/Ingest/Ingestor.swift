import Foundation
import MFEngine
import MFStore

/// Options for an ingest.
public struct IngestOptions: Sendable {
    /// Force a ratings layout instead of detecting it.
    public var format: RatingsFormat?
    /// An item file to read titles and genres from.
    public var itemsPath: String?
    /// Force the item file's layout instead of detecting it.
    public var itemsFormat: ItemsFormat?
    /// The scale of a first ingest (ratings outside it are errors). Without it, the first ingest fixes the
    /// smallest standard scale holding every rating (see `RatingScale`); later ingests use the stored one.
    public var scale: ClosedRange<Double>?
    /// Store the valid lines and report the invalid ones, instead of stopping at the first.
    public var skipInvalid = false

    /// Options for an ingest; every one is optional.
    /// - Parameters:
    ///   - format: the ratings file's layout; detected when nil.
    ///   - itemsPath: an item file (titles, genres) to read too.
    ///   - itemsFormat: that file's layout; detected when nil.
    ///   - scale: the rating scale; chosen by the first ingest when nil.
    ///   - skipInvalid: whether to store the valid lines and report the others.
    public init(
        format: RatingsFormat? = nil, itemsPath: String? = nil, itemsFormat: ItemsFormat? = nil,
        scale: ClosedRange<Double>? = nil, skipInvalid: Bool = false
    ) {
        self.format = format
        self.itemsPath = itemsPath
        self.itemsFormat = itemsFormat
        self.scale = scale
        self.skipInvalid = skipInvalid
    }
}

/// What an ingest did.
public struct IngestReport: Sendable {
    /// The ratings file's name.
    public var file: String
    /// The layout read (detected or forced).
    public var format: RatingsFormat
    /// Valid rating lines read.
    public var ratingsRead = 0
    /// Of those, how many replaced a rating already stored (or an earlier line of the same file).
    public var ratingsReplaced = 0
    /// Users seen for the first time.
    public var newUsers = 0
    /// Items seen for the first time in the ratings.
    public var newItems = 0
    /// Items seen for the first time in the item file, without ratings yet.
    public var newItemsWithoutRatings = 0
    /// Items given a title by the item file.
    public var itemsTitled = 0
    /// Invalid lines skipped (with `skipInvalid`).
    public var skippedLines = 0
    /// The first 10 reasons lines were skipped.
    public var skippedReasons: [String] = []
    /// Wall-clock time of the ingest.
    public var seconds = 0.0
    /// The sequence numbers the stored ratings received.
    public var sequence: ClosedRange<Int64>?
    /// The smallest and largest rating in this file.
    public var observedScale: ClosedRange<Double>?
    /// The database's rating scale after the ingest, and where it came from.
    public var scale: ClosedRange<Double>?
    /// Where `scale` came from.
    public var scaleSource: ScaleSource = .stored
}

/// Progress of a long operation: done and total in the same unit (bytes for ingest).
public typealias ProgressHandler = @Sendable (_ done: Int64, _ total: Int64) -> Void

/// Streams ratings (and item) files into the store in one transaction.
///
/// The whole ingest is atomic: any error — a bad line without `skipInvalid`, a corrupt gzip stream, a
/// full disk, the process being killed — leaves the database exactly as it was.
struct Ingestor {
    let store: Store

    /// Streams the file into the store in one transaction.
    /// - Parameters:
    ///   - path: the ratings file.
    ///   - options: format, item file, scale and error handling.
    ///   - progress: called with bytes read and the file's size.
    ///   - isCancelled: polled every 4,096 lines; when it answers true the ingest throws `CancellationError`
    ///     and stores nothing.
    ///   - stored: called inside the transaction, after the ratings are stored, with every stored
    ///     rating (dense ids) in file order; a throw rolls the whole ingest back.
    /// - Returns: what was stored.
    /// - Throws: `MFRecError` for bad input, `CancellationError`, or a store error; nothing is stored then.
    func ingest(
        path: String, options: IngestOptions, progress: ProgressHandler? = nil,
        isCancelled: (() -> Bool)? = nil,
        stored: ((RatingTriples, Int64) throws -> Void)? = nil
    ) throws -> IngestReport {
        let started = Date()
        let reader = try RatingsReader(path: path, format: options.format, scale: options.scale)
        var report = IngestReport(file: reader.name, format: reader.format)
        let total = fileSize(path)

        try store.writeRatings { writer in
            var users = IdMap(keys: try store.userKeys())
            var items = IdMap(keys: try store.itemKeys())
            let usersBefore = users.count, itemsBefore = items.count
            var lo = Double.infinity, hi = -Double.infinity
            let ratingsBefore = try store.ratingCount()
            let oldScale = try store.ratingScale()
            if let given = options.scale, let oldScale, given != oldScale {
                throw MFRecError.input(
                    file: reader.name,
                    reason: "the scale given (\(RatingScale.describe(given))) is not the database's "
                        + "(\(RatingScale.describe(oldScale)), fixed by its first ingest)")
            }
            // Every writer refuses ratings outside the stored scale; a first ingest checks a given one.
            reader.scale = options.scale ?? oldScale
            var lastProgress: Int64 = 0
            var collected = RatingTriples()

            func id(_ bytes: ByteView, in map: inout IdMap, isUser: Bool, line: Int) throws -> Int32 {
                if let id = map.index(of: bytes) { return id }
                guard let key = String(validating: bytes, as: UTF8.self) else {
                    let what = isUser ? "field 1 (user):" : "field 2 (item):"
                    throw MFRecError.input(file: reader.name, line: line, reason: "\(what) id is not valid UTF-8")
                }
                let id = map.insertNew(key)
                if isUser { try writer.insertUser(id: id, key: key) } else { try writer.insertItem(id: id, key: key) }
                return id
            }

            try reader.read(
                { line in
                    let number = reader.lineNumber
                    if number & 4095 == 0, isCancelled?() == true { throw CancellationError() }
                    let user = try id(line.user, in: &users, isUser: true, line: number)
                    let item = try id(line.item, in: &items, isUser: false, line: number)
                    try writer.upsert(user: user, item: item, rating: line.rating, timestamp: line.timestamp)
                    if stored != nil { collected.append(user: user, item: item, rating: Float(line.rating)) }
                    report.ratingsRead += 1
                    lo = min(lo, line.rating)
                    hi = max(hi, line.rating)
                    if let progress, reader.bytesConsumed - lastProgress > 1 << 22 {
                        lastProgress = reader.bytesConsumed
                        progress(lastProgress, total)
                    }
                },
                onError: { error in
                    guard options.skipInvalid else { throw error }
                    report.skippedLines += 1
                    if report.skippedReasons.count < 10 { report.skippedReasons.append(error.description) }
                })

            report.newUsers = Int(users.count - usersBefore)
            report.ratingsReplaced = ratingsBefore + report.ratingsRead - (try store.ratingCount())
            if report.ratingsRead > 0 {
                report.sequence = writer.firstSequence...(writer.nextSequence - 1)
                report.observedScale = lo...hi
            }
            if let oldScale {
                report.scale = oldScale
            } else if let given = options.scale {
                (report.scale, report.scaleSource) = (given, .given)
            } else if report.ratingsRead > 0 {
                let standard = RatingScale.fitting(lo...hi)
                (report.scale, report.scaleSource) = (standard ?? lo...hi, standard == nil ? .data : .standard)
            }
            if oldScale == nil, let scale = report.scale { try store.setRatingScale(scale) }
            report.newItems = Int(items.count - itemsBefore)
            if let itemsPath = options.itemsPath {
                report.itemsTitled = try ingestItems(
                    path: itemsPath, format: options.itemsFormat, items: &items, writer: writer)
                report.newItemsWithoutRatings = Int(items.count - itemsBefore) - report.newItems
            }
            try stored?(collected, writer.nextSequence - 1)
        }
        progress?(total, total)
        report.seconds = Date().timeIntervalSince(started)
        return report
    }

    /// Reads titles and genres; items not yet known are added (they have no ratings yet).
    private func ingestItems(path: String, format: ItemsFormat?, items: inout IdMap, writer: RatingWriter) throws -> Int
    {
        let reader = ItemsReader(path: path, format: format)
        var count = 0
        try reader.read { line in
            let existing = ByteView.with(line.key) { items.index(of: $0) }
            let id: Int32
            if let existing {
                id = existing
            } else {
                id = items.insertNew(line.key)
                try writer.insertItem(id: id, key: line.key)
            }
            try writer.setTitle(item: id, title: line.title, genres: line.genres)
            count += 1
        }
        return count
    }
}
