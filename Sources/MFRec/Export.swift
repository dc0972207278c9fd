import Foundation
import MFEngine
import MFStore

/// File formats of `export`.
public enum ExportFormat: String, Sendable, CaseIterable {
    /// `user_factors.csv` and `item_factors.csv`: one row per user/item with its original id, k factors and bias.
    case csv
    /// NumPy `.npy` arrays: `user_factors.npy` (m×k float32), `item_factors.npy` (n×k), `user_bias.npy`,
    /// `item_bias.npy`, plus `user_ids.txt`/`item_ids.txt` (row r ↔ line r) and `global_mean.txt`.
    case npy
}

extension Recommender {
    /// Writes the two embedding matrices and biases of a snapshot, or of the live model by default (its
    /// snapshot with the incremental updates since, so new users are there), into `folder`.
    /// Each file is written as `OutputFile` writes it (a regular file is replaced whole, a link followed).
    /// - Returns: the paths written.
    /// - Parameters:
    ///   - id: the snapshot; the live model when nil.
    ///   - format: `.csv` or `.npy`.
    ///   - folder: the folder to write into (made when missing; `-` is refused).
    /// - Throws: `MFRecError.cannotWrite` for a path that cannot be written, `MFRecError.noModel` before the
    ///   first `train`, `StoreError` when the model cannot be read.
    @discardableResult
    public func export(snapshot id: Int? = nil, format: ExportFormat, to folder: String) throws -> [String] {
        return try serialized {
            let (_, model, _, stored) = try store.read { try reader.modelOrLive(snapshot: id) }
            guard folder != "-" else {
                throw MFRecError.cannotWrite(
                    path: folder, reason: "export writes several files into a folder, not to standard output")
            }
            try OutputFile.createFolder(folder)
            let userKeys = try store.userKeys(), itemKeys = try store.itemKeys()
            func path(_ name: String) -> String { (folder as NSString).appendingPathComponent(name) }
            var written: [String] = []
            func save(_ name: String, _ data: Data) throws {
                try OutputFile.write(data, to: path(name), allowStdout: false)
                written.append(path(name))
            }
            switch format {
            case .csv:
                func table(
                    _ keys: [String], _ count: Int, _ prefix: String, vector: (Int) -> ArraySlice<Float>, bias: [Float]
                ) -> Data {
                    var text = "id," + (0..<model.factors).map { "\(prefix)\($0)" }.joined(separator: ",") + ",bias\n"
                    for r in 0..<count {
                        text += csvField(r < keys.count ? keys[r] : String(r))
                        for v in vector(r) { text += ",\(v)" }
                        text += ",\(bias[r])\n"
                    }
                    return Data(text.utf8)
                }
                try save(
                    "user_factors.csv",
                    table(userKeys, model.userCount, "p", vector: model.userVector, bias: model.userBias))
                try save(
                    "item_factors.csv",
                    table(itemKeys, model.itemCount, "q", vector: model.itemVector, bias: model.itemBias))
            case .npy:
                try save(
                    "user_factors.npy", npy(rows: model.userCount, columns: model.factors) { model.userVector($0) })
                try save(
                    "item_factors.npy", npy(rows: model.itemCount, columns: model.factors) { model.itemVector($0) })
                try save("user_bias.npy", npy(vector: model.userBias))
                try save("item_bias.npy", npy(vector: model.itemBias))
                try save("user_ids.txt", Data((userKeys.prefix(model.userCount).joined(separator: "\n") + "\n").utf8))
                try save("item_ids.txt", Data((itemKeys.prefix(model.itemCount).joined(separator: "\n") + "\n").utf8))
                try save("global_mean.txt", Data("\(model.globalMean)\n".utf8))
            }
            // The ranking model: its item vectors q_i and the users' vectors p_u from their stored ratings (score = p_u·q_i).
            if let (ranking, _) = stored {
                let users = userKeys.count, k = ranking.factors
                var userVectors = [Float](repeating: 0, count: users * k)
                try store.forEachUserRatings { u, ratings in
                    guard u < users else { return }
                    let v = ranking.userVector(user: u, ratings: ratings)
                    for c in 0..<k { userVectors[u * k + c] = v[c] }
                }
                let userRow = { (u: Int) in userVectors[u * k..<(u + 1) * k] }
                let itemRow = { (i: Int) in ranking.itemVectors[i * k..<(i + 1) * k] }
                switch format {
                case .csv:
                    func table(_ keys: [String], _ count: Int, _ prefix: String, _ row: (Int) -> ArraySlice<Float>)
                        -> Data
                    {
                        var text = "id," + (0..<k).map { "\(prefix)\($0)" }.joined(separator: ",") + "\n"
                        for r in 0..<count {
                            text += csvField(r < keys.count ? keys[r] : String(r))
                            for v in row(r) { text += ",\(v)" }
                            text += "\n"
                        }
                        return Data(text.utf8)
                    }
                    try save("ranking_user_factors.csv", table(userKeys, users, "p", userRow))
                    try save("ranking_item_factors.csv", table(itemKeys, ranking.itemCount, "q", itemRow))
                case .npy:
                    try save("ranking_user_factors.npy", npy(rows: users, columns: k, row: userRow))
                    try save("ranking_item_factors.npy", npy(rows: ranking.itemCount, columns: k, row: itemRow))
                }
            }
            return written
        }
    }
}

/// A NumPy `.npy` (format 1.0) file of little-endian float32 values, C order.
func npyHeader(shape: [Int]) -> Data {
    let shapeText = shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
    var dict = "{'descr': '<f4', 'fortran_order': False, 'shape': \(shapeText), }"
    // magic (6) + version (2) + length (2) + dict + '\n' must be a multiple of 64.
    let unpadded = 10 + dict.utf8.count + 1
    dict += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
    var data = Data([0x93]) + Data("NUMPY".utf8) + Data([1, 0])
    let length = UInt16(dict.utf8.count)
    data.append(contentsOf: [UInt8(length & 0xff), UInt8(length >> 8)])
    data.append(Data(dict.utf8))
    return data
}

func npy(rows: Int, columns: Int, row: (Int) -> ArraySlice<Float>) -> Data {
    var data = npyHeader(shape: [rows, columns])
    data.reserveCapacity(data.count + rows * columns * 4)
    var bytes: [UInt8] = []
    bytes.reserveCapacity(rows * columns * 4)
    for r in 0..<rows { LittleEndian.append(floats: row(r), to: &bytes) }
    data.append(contentsOf: bytes)
    return data
}

func npy(vector: [Float]) -> Data {
    var data = npyHeader(shape: [vector.count])
    var bytes: [UInt8] = []
    LittleEndian.append(floats: vector, to: &bytes)
    data.append(contentsOf: bytes)
    return data
}

/// File formats of `exportRatings`, both read by `spark.read` (and by `ingest`).
public enum RatingsExportFormat: String, Sendable, CaseIterable {
    /// `user,item,rating,timestamp` with a header line; fields quoted when they need it (RFC 4180), an
    /// empty timestamp when the rating has none.
    case csv
    /// JSON Lines: `{"user":"…","item":"…","rating":4.0,"timestamp":881250949}` (timestamp null when none).
    case jsonl
}

/// What `exportRatings` wrote.
public struct RatingsExportReport: Sendable {
    /// The file written.
    public var path: String
    /// Ratings written.
    public var ratings: Int
    /// Bytes of text (before compression).
    public var bytes: Int64
    /// Whether the file is gzip-compressed.
    public var gzip: Bool
}

extension Recommender {
    /// Streams every stored rating — original user and item ids, rating, timestamp — to `path`, for
    /// `spark.read` (see `spark/README.md`). Memory stays flat in the number of ratings (rows are read one
    /// at a time inside one read transaction, so the file is one consistent state, and written through a
    /// 1 MiB buffer). The file is written as `OutputFile` writes (`-` is standard output; a regular file is
    /// replaced only when complete).
    /// - Parameters:
    ///   - path: the file.
    ///   - format: CSV or JSON Lines.
    ///   - gzip: compress; nil compresses when the path ends in `.gz`.
    /// - Returns: what was written.
    /// - Throws: `MFRecError`, `StoreError`.
    @discardableResult
    public func exportRatings(to path: String, format: RatingsExportFormat, gzip: Bool? = nil) throws
        -> RatingsExportReport
    {
        return try serialized {
            let compress = gzip ?? path.hasSuffix(".gz")
            let writer = try LineWriter(path: path, gzip: compress)
            var count = 0
            if format == .csv { writer.append("user,item,rating,timestamp\n") }
            try store.read {
                // Each key is quoted once, not once per rating: rows then cost a copy of two byte runs.
                func quoted(_ keys: [String]) -> [[UInt8]] {
                    keys.map { key in
                        if format == .csv { return Array(csvField(key).utf8) }
                        var bytes: [UInt8] = []
                        JSONEscape.append(key, to: &bytes)
                        return bytes
                    }
                }
                let users = quoted(try store.userKeys()), items = quoted(try store.itemKeys())
                var ratingText: [Double: [UInt8]] = [:]
                let (open, middle, rating, time, close): (String, String, String, String, String) =
                    format == .csv
                    ? ("", ",", ",", ",", "\n") : ("{\"user\":", ",\"item\":", ",\"rating\":", ",\"timestamp\":", "}\n")
                try store.forEachTimedRating { u, i, r, timestamp in
                    guard Int(u) < users.count, Int(i) < items.count else {
                        throw StoreError.corrupt(
                            what: "ratings", reason: "a rating names user \(u) or item \(i), which has no row")
                    }
                    writer.append(open)
                    writer.append(bytes: users[Int(u)])
                    writer.append(middle)
                    writer.append(bytes: items[Int(i)])
                    writer.append(rating)
                    if let text = ratingText[r] {
                        writer.append(bytes: text)
                    } else {
                        let text = Array(String(r).utf8)
                        if ratingText.count < 1024 { ratingText[r] = text }
                        writer.append(bytes: text)
                    }
                    writer.append(time)
                    if let timestamp {
                        writer.append(Int(timestamp))
                    } else if format == .jsonl {
                        writer.append("null")
                    }
                    writer.append(close)
                    count += 1
                    try writer.flushIfNeeded()
                }
            }
            let bytes = try writer.finish()
            return RatingsExportReport(path: path, ratings: count, bytes: bytes, gzip: compress)
        }
    }
}
