import Foundation

/// The item (title) file layouts mfrec reads.
public enum ItemsFormat: String, Sendable, CaseIterable {
    /// MovieLens 100K `u.item`: `id|title|release|video release|url|19 genre flags`, Latin-1.
    case uitem
    /// MovieLens `movies.dat`: `id::title::genres`, Latin-1.
    case dat
    /// MovieLens `movies.csv`: `movieId,title,genres` with a header, UTF-8, quoted titles.
    case csv
}

/// One item of an item file.
package struct ItemLine: Equatable {
    var key: String
    var title: String
    var genres: String?
}

/// Streams an item file, decoding Latin-1 titles to UTF-8.
package final class ItemsReader {
    /// The 19 genre flags of `u.item`, in file order.
    static let uitemGenres = [
        "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
        "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
        "Romance", "Sci-Fi", "Thriller", "War", "Western",
    ]

    let name: String
    let path: String
    private(set) var format: ItemsFormat?

    /// - Parameters:
    ///   - path: the item file.
    ///   - format: its layout; detected from the first line when nil.
    package init(path: String, format: ItemsFormat? = nil) {
        self.path = path
        self.name = (path as NSString).lastPathComponent
        self.format = format
    }

    /// - Parameter body: called with each item line.
    /// - Throws: `MFRecError.input` naming file, line and field; what `body` throws.
    package func read(_ body: (ItemLine) throws -> Void) throws {
        let lines = LineReader(source: try openByteSource(path: path))
        var fields: [Range<Int>] = []
        try lines.forEachLine { line, number in
            if line.isEmpty { return true }
            if format == nil { format = try detect(line, number) }
            switch format! {
            case .uitem:
                Fields.split(line, delimiter: [0x7C], into: &fields)
                guard fields.count >= 2 else {
                    throw MFRecError.input(
                        file: name, line: number,
                        reason: "expected '|'-separated fields (id|title|…), found \(fields.count)")
                }
                let flags = fields.dropFirst(5)
                var genres: [String] = []
                for (index, range) in flags.enumerated() where index < Self.uitemGenres.count {
                    if line[range].elementsEqual([UInt8(ascii: "1")]) { genres.append(Self.uitemGenres[index]) }
                }
                try body(
                    ItemLine(
                        key: try key(line, fields[0], number),
                        title: Fields.decodeUTF8OrLatin1(line[fields[1]]),
                        genres: genres.isEmpty ? nil : genres.joined(separator: "|")))
            case .dat:
                Fields.split(line, delimiter: [0x3A, 0x3A], into: &fields)
                guard fields.count >= 2 else {
                    throw MFRecError.input(
                        file: name, line: number,
                        reason: "expected '::'-separated fields (id::title::genres), found \(fields.count)")
                }
                let genres = fields.count > 2 ? Fields.decodeUTF8OrLatin1(line[fields[2]]) : nil
                try body(
                    ItemLine(
                        key: try key(line, fields[0], number),
                        title: Fields.decodeUTF8OrLatin1(line[fields[1]]),
                        genres: genres?.isEmpty == false ? genres : nil))
            case .csv:
                if number == 1 && !line.isEmpty && !(line[0] &- 48 < 10) { return true }  // header
                guard let values = Fields.splitCSV(line) else {
                    throw MFRecError.input(file: name, line: number, reason: "a quoted field is not closed")
                }
                guard values.count >= 2 else {
                    throw MFRecError.input(
                        file: name, line: number,
                        reason: "expected comma-separated fields (movieId,title,genres), found \(values.count)")
                }
                let key = ByteView.with(values[0]) { raw -> String? in
                    let id = Fields.trim(raw)
                    return id.isEmpty ? nil : String(validating: id, as: UTF8.self)
                }
                guard let key else {
                    throw MFRecError.input(
                        file: name, line: number, reason: "field 1 (item): empty id or invalid UTF-8")
                }
                let genres = values.count > 2 ? Fields.decodeUTF8OrLatin1(values[2]) : nil
                try body(
                    ItemLine(
                        key: key, title: Fields.decodeUTF8OrLatin1(values[1]),
                        genres: genres.flatMap { $0.isEmpty || $0 == "(no genres listed)" ? nil : $0 }))
            }
            return true
        }
    }

    private func key(_ line: ByteView, _ range: Range<Int>, _ number: Int) throws -> String {
        let bytes = Fields.trim(line.view(range))
        guard !bytes.isEmpty else {
            throw MFRecError.input(file: name, line: number, reason: "field 1 (item): empty id")
        }
        guard let key = String(validating: bytes, as: UTF8.self) else {
            throw MFRecError.input(file: name, line: number, reason: "field 1 (item): id is not valid UTF-8")
        }
        return key
    }

    private func detect(_ line: ByteView, _ number: Int) throws -> ItemsFormat {
        if line.contains(0x7C) && !zip(line, line.dropFirst()).contains(where: { $0 == 0x3A && $1 == 0x3A }) {
            return .uitem
        }
        if zip(line, line.dropFirst()).contains(where: { $0 == 0x3A && $1 == 0x3A }) { return .dat }
        if line.contains(0x2C) { return .csv }
        throw MFRecError.input(
            file: name, line: number, reason: "cannot tell the item file's format (u.item, movies.dat or movies.csv)")
    }
}
