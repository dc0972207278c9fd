import Foundation

/// The ratings file layouts mfrec reads (each may be gzip-compressed).
public enum RatingsFormat: String, Sendable, CaseIterable {
    /// MovieLens 100K `u.data`: `user<TAB>item<TAB>rating<TAB>timestamp`.
    case udata
    /// MovieLens 1M/10M `ratings.dat`: `user::item::rating::timestamp`.
    case dat
    /// CSV with a header naming the columns (`userId,movieId,rating,timestamp` and variants);
    /// a file whose first line is numeric is read as `user,item,rating[,timestamp]`.
    case csv
}

/// One parsed rating line. The key views are valid only during the callback.
package struct RatingLine {
    var user: ByteView
    var item: ByteView
    /// NaN on a line without a rating (only a reader opened with `ratingOptional` accepts one).
    var rating: Double
    var timestamp: Int64?
}

/// Streams a ratings file and parses each line, reporting errors as `file:line: reason`.
package final class RatingsReader {
    let name: String
    let format: RatingsFormat
    private let lines: LineReader
    private var columns: (user: Int, item: Int, rating: Int, timestamp: Int?, count: Int)
    private let delimiter: [UInt8]
    private var headerLine = 0
    /// Ratings outside it are errors (naming file, line and field).
    var scale: ClosedRange<Double>?
    /// Whether lines of (user, item) pairs without a rating are read too (batch prediction).
    let ratingOptional: Bool

    /// Opens `path`, detects its layout (unless `format` is given) and reads the CSV header. With
    /// `ratingOptional`, a line may stop after the item (a CSV header may lack the rating column).
    /// - Parameters:
    ///   - path: the ratings file (plain or gzip).
    ///   - format: its layout; detected from the first line when nil.
    ///   - scale: ratings outside it are errors.
    ///   - ratingOptional: whether lines may stop after the item.
    /// - Throws: `MFRecError.input` when the file cannot be opened or its layout told.
    package init(
        path: String, format: RatingsFormat? = nil, scale: ClosedRange<Double>? = nil, ratingOptional: Bool = false
    ) throws {
        self.name = (path as NSString).lastPathComponent
        self.scale = scale
        self.ratingOptional = ratingOptional
        // Detection reads the first non-empty line from its own stream, so the main one starts clean.
        let first = try RatingsReader.firstLine(path: path)
        let detected = try format ?? RatingsReader.detect(first, name: name)
        self.format = detected
        self.lines = LineReader(source: try openByteSource(path: path))
        switch detected {
        case .udata:
            delimiter = [0x09]
            columns = (0, 1, 2, 3, 4)
        case .dat:
            delimiter = [0x3A, 0x3A]
            columns = (0, 1, 2, 3, 4)
        case .csv:
            delimiter = [0x2C]
            columns = (0, 1, 2, 3, 4)
            if let (line, number) = first {
                var fields: [Range<Int>] = []
                try ByteView.with(Array(line)) { raw in
                    Fields.split(raw, delimiter: delimiter, into: &fields)
                    let firstField = Fields.trim(raw.view(fields[0]))
                    if Fields.parseDouble(firstField) != nil {
                        // No header: positional user,item,rating[,timestamp] (or user,item for pairs).
                        if ratingOptional && fields.count == 2 {
                            columns = (0, 1, -1, nil, 2)
                            return
                        }
                        guard fields.count == 3 || fields.count == 4 else {
                            throw MFRecError.input(
                                file: name, line: number,
                                reason:
                                    "expected 3 or 4 comma-separated fields (user, item, rating[, timestamp]), "
                                    + "found \(fields.count)"
                            )
                        }
                        columns = (0, 1, 2, fields.count == 4 ? 3 : nil, fields.count)
                    } else {
                        guard let header = Fields.splitCSV(raw) else {
                            throw MFRecError.input(file: name, line: number, reason: "a quoted field is not closed")
                        }
                        let names = header.map { String(decoding: $0, as: UTF8.self) }
                        columns = try RatingsReader.mapHeader(
                            names, name: name, line: number, ratingOptional: ratingOptional)
                        headerLine = number
                    }
                }
            }
        }
    }

    var bytesConsumed: Int64 { lines.bytesConsumed }
    var lineNumber: Int { lines.lineNumber }

    private static func firstLine(path: String) throws -> ([UInt8], Int)? {
        let reader = LineReader(source: try openByteSource(path: path), capacity: 64 * 1024)
        var found: ([UInt8], Int)?
        try reader.forEachLine { line, number in
            if line.isEmpty { return true }
            found = (Array(line), number)
            return false
        }
        return found
    }

    static func detect(_ first: ([UInt8], Int)?, name: String) throws -> RatingsFormat {
        guard let (line, number) = first else { return .udata }  // empty file: nothing to read anyway
        if line.contains(0x09) { return .udata }
        if zip(line, line.dropFirst()).contains(where: { $0 == 0x3A && $1 == 0x3A }) { return .dat }
        if line.contains(0x2C) { return .csv }
        throw MFRecError.input(
            file: name, line: number,
            reason:
                "cannot tell the format: expected tab-separated (u.data), '::'-separated (ratings.dat) or "
                + "comma-separated (CSV) fields; use --format"
        )
    }

    /// Maps a CSV header to column positions. Names are compared without case, `_`, `-` or spaces.
    static func mapHeader(_ names: [String], name: String, line: Int, ratingOptional: Bool = false) throws -> (
        user: Int, item: Int, rating: Int, timestamp: Int?, count: Int
    ) {
        func normalized(_ s: String) -> String {
            s.lowercased().filter { $0.isLetter || $0.isNumber }
        }
        let keys = names.map(normalized)
        func find(_ candidates: [String]) -> Int? { keys.firstIndex { candidates.contains($0) } }
        guard let user = find(["userid", "user", "uid", "customerid", "reviewerid", "visitorid"]) else {
            throw MFRecError.input(
                file: name, line: line, reason: "CSV header has no user column (expected one of userId, user_id, user)")
        }
        guard let item = find(["movieid", "itemid", "item", "movie", "iid", "productid", "asin", "bookid", "isbn"])
        else {
            throw MFRecError.input(
                file: name, line: line, reason: "CSV header has no item column (expected one of movieId, item_id, item)"
            )
        }
        let rating = find(["rating", "score", "stars", "value", "bookrating"]) ?? -1
        guard rating >= 0 || ratingOptional else {
            throw MFRecError.input(file: name, line: line, reason: "CSV header has no rating column (expected rating)")
        }
        let timestamp = find(["timestamp", "ts", "time", "unixtime", "unixreviewtime", "date"])
        return (user, item, rating, timestamp, names.count)
    }

    private var expectation: String {
        switch format {
        case .udata:
            return ratingOptional
                ? "2 to 4 tab-separated fields (user, item[, rating[, timestamp]])"
                : "3 or 4 tab-separated fields (user, item, rating[, timestamp])"
        case .dat:
            return ratingOptional
                ? "2 to 4 '::'-separated fields (user, item[, rating[, timestamp]])"
                : "3 or 4 '::'-separated fields (user, item, rating[, timestamp])"
        case .csv: return "\(columns.count) comma-separated fields"
        }
    }

    /// Parses every line. `body` gets each valid rating; `onError` gets each invalid line's error and
    /// returns true to go on (skip) or throws to stop.
    /// - Parameters:
    ///   - body: called with each parsed line (its keys valid only during the call).
    ///   - onError: called with each bad line's error; throwing from it stops the read.
    /// - Throws: what `body` or `onError` throws; `MFRecError.input` for an unreadable stream.
    package func read(_ body: (RatingLine) throws -> Void, onError: (MFRecError) throws -> Void) throws {
        var fields: [Range<Int>] = []
        fields.reserveCapacity(8)
        let headerLine = self.headerLine
        try lines.forEachLine { line, number in
            if number == headerLine || Fields.isBlank(line) { return true }
            guard format == .csv && line.contains(UInt8(ascii: "\"")) else {
                Fields.split(line, delimiter: delimiter, into: &fields)
                do { try body(parse(line, fields: fields, line: number)) } catch let error as MFRecError {
                    try onError(error)
                }
                return true
            }
            // Rare: quoted fields in a ratings CSV (a quoted id may hold a comma). The unquoted fields are laid
            // end to end, each range recorded.
            guard let parts = Fields.splitCSV(line) else {
                try onError(MFRecError.input(file: name, line: number, reason: "a quoted field is not closed"))
                return true
            }
            let unquoted = Array(parts.joined())
            fields.removeAll(keepingCapacity: true)
            var start = 0
            for part in parts {
                fields.append(start..<start + part.count)
                start += part.count
            }
            return try ByteView.with(unquoted) { raw -> Bool in
                do { try body(parse(raw, fields: fields, line: number)) } catch let error as MFRecError {
                    try onError(error)
                }
                return true
            }
        }
    }

    private func parse(_ line: ByteView, fields: [Range<Int>], line number: Int) throws -> RatingLine {
        // u.data and ratings.dat lines may leave out the timestamp, as CSV files may; pairs also the rating.
        let withoutTimestamp = format != .csv && fields.count == columns.count - 1
        let pairOnly = ratingOptional && format != .csv && fields.count == 2
        guard fields.count == columns.count || withoutTimestamp || pairOnly else {
            throw MFRecError.input(file: name, line: number, reason: "expected \(expectation), found \(fields.count)")
        }
        func field(_ index: Int) -> ByteView {
            Fields.trim(line.view(fields[index]))
        }
        let user = field(columns.user)
        guard !user.isEmpty else {
            throw MFRecError.input(file: name, line: number, reason: "field \(columns.user + 1) (user): empty id")
        }
        let item = field(columns.item)
        guard !item.isEmpty else {
            throw MFRecError.input(file: name, line: number, reason: "field \(columns.item + 1) (item): empty id")
        }
        for (column, id, what) in [(columns.user, user, "user"), (columns.item, item, "item")] {
            if let byte = Fields.controlByte(id) {
                throw MFRecError.input(
                    file: name, line: number,
                    reason: "field \(column + 1) (\(what)): id contains a control character (byte "
                        + String(format: "0x%02X", byte) + ")")
            }
        }
        if pairOnly || columns.rating < 0 {
            return RatingLine(user: user, item: item, rating: .nan, timestamp: nil)
        }
        let ratingField = field(columns.rating)
        guard let rating = Fields.parseDouble(ratingField) else {
            throw MFRecError.input(
                file: name, line: number,
                reason: "field \(columns.rating + 1) (rating): \(Fields.show(ratingField)) is not a finite number")
        }
        if let scale, !scale.contains(rating) {
            throw MFRecError.input(
                file: name, line: number,
                reason:
                    "field \(columns.rating + 1) (rating): \(Fields.show(ratingField)) is outside the scale "
                    + RatingScale.describe(scale)
            )
        }
        var timestamp: Int64?
        if let column = columns.timestamp, !withoutTimestamp {
            let ts = field(column)
            if !ts.isEmpty {
                guard let value = Fields.parseInt(ts) else {
                    throw MFRecError.input(
                        file: name, line: number,
                        reason: "field \(column + 1) (timestamp): \(Fields.show(ts)) is not an integer")
                }
                timestamp = value
            }
        }
        return RatingLine(user: user, item: item, rating: rating, timestamp: timestamp)
    }
}
