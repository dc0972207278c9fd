import Foundation

/// The output folder of `spark/train_als.py` (Spark MLlib ALS), read back: the manifest and the user and
/// item factors, each a folder of JSON Lines part files (`{"id": "<original id>", "features": [k floats]}`,
/// plain or gzip) as Spark's `DataFrame.write.json` writes them.
///
/// Every line is checked: a line that is not such an object, a vector whose length is not the manifest's
/// rank, a value that is not a finite number, or an id given twice is an `MFRecError` naming the part file
/// (relative to the folder), the line and the field. Nothing is stored while reading.
public struct SparkFactors: Sendable {
    /// `manifest/part-00000`: what the Spark job wrote about its run.
    public struct Manifest: Codable, Sendable, Equatable {
        /// "mfrec-spark-als/1".
        public var format: String?
        /// "rating" (explicit ALS) or "implicit" (`implicitPrefs=True`).
        public var model: String
        /// k.
        public var rank: Int
        /// ALS settings.
        public var parameters: Parameters
        /// Holdout metrics (RMSE and MAE, or precision and NDCG at 10), when the job held ratings out.
        public var metrics: [String: Double]?
        /// The Spark version that trained it.
        public var sparkVersion: String?
        /// Row counts of the run.
        public var rows: [String: Int]?

        /// The ALS parameters of the run.
        public struct Parameters: Codable, Sendable, Equatable {
            /// Iterations.
            public var maxIter: Int?
            /// λ.
            public var regParam: Double
            /// α (implicit only).
            public var alpha: Double?
            /// Whether implicit preferences were modelled.
            public var implicitPrefs: Bool?
            /// Whether the factors are non-negative.
            public var nonnegative: Bool?
            /// The seed.
            public var seed: Int?
        }

        enum CodingKeys: String, CodingKey {
            case format, model, rank, parameters, metrics, sparkVersion, rows
        }

        /// Decodes, keeping only the numeric metrics (the job may add notes beside them).
        /// - Parameter decoder: the job's metadata JSON.
        /// - Throws: `DecodingError` when a field has the wrong type.
        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            format = try c.decodeIfPresent(String.self, forKey: .format)
            model = try c.decode(String.self, forKey: .model)
            rank = try c.decode(Int.self, forKey: .rank)
            parameters = try c.decode(Parameters.self, forKey: .parameters)
            sparkVersion = try c.decodeIfPresent(String.self, forKey: .sparkVersion)
            rows = try c.decodeIfPresent([String: Int].self, forKey: .rows)
            if let raw = try? c.decodeIfPresent([String: MetricValue].self, forKey: .metrics) {
                metrics = raw.compactMapValues(\.number)
            }
        }

        private enum MetricValue: Decodable {
            case number(Double)
            case other
            var number: Double? { if case .number(let v) = self { return v } else { return nil } }
            init(from decoder: Decoder) throws {
                let c = try decoder.singleValueContainer()
                self = (try? c.decode(Double.self)).map(MetricValue.number) ?? .other
            }
        }
    }

    /// One side's rows: original ids and their vectors (rank floats each, row r at r × rank).
    public struct Side: Sendable {
        /// Original ids, in file order.
        public var keys: [String] = []
        /// The vectors, row-major.
        public var vectors: [Float] = []
        /// Part files read.
        public var files = 0
    }

    /// The manifest.
    public var manifest: Manifest
    /// User factors.
    public var users: Side
    /// Item factors.
    public var items: Side

    /// Reads a Spark output folder.
    /// - Parameter folder: the `--output` of `spark/train_als.py`.
    /// - Throws: `MFRecError` naming the file, line and field of the first problem.
    public init(folder: String) throws {
        manifest = try Self.readManifest(folder)
        guard manifest.rank > 0, manifest.rank <= 4096 else {
            throw MFRecError.input(file: "manifest", reason: "rank \(manifest.rank) is outside 1…4096")
        }
        users = try Self.readSide(folder, "user_factors", rank: manifest.rank)
        items = try Self.readSide(folder, "item_factors", rank: manifest.rank)
        guard !items.keys.isEmpty else {
            throw MFRecError.input(file: "item_factors", reason: "no item factors in \(folder)/item_factors")
        }
    }

    /// Part files of a Spark output folder: `part-*` in name order (`_SUCCESS` and checksum files aside).
    static func partFiles(_ folder: String) throws -> [String] {
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder, isDirectory: &isFolder), isFolder.boolValue else {
            throw MFRecError.input(
                file: (folder as NSString).lastPathComponent, reason: "\(folder) is not a folder of Spark part files")
        }
        let names = try FileManager.default.contentsOfDirectory(atPath: folder)
        return names.filter { $0.hasPrefix("part-") && !$0.hasSuffix(".crc") }.sorted()
    }

    static func readManifest(_ folder: String) throws -> Manifest {
        let dir = (folder as NSString).appendingPathComponent("manifest")
        var text: Data?
        var name = "manifest"
        if FileManager.default.fileExists(atPath: dir) {
            for part in try partFiles(dir) {
                let data = try Data(contentsOf: URL(fileURLWithPath: (dir as NSString).appendingPathComponent(part)))
                if !data.allSatisfy({ $0 == 0x0a || $0 == 0x20 }) {
                    text = data
                    name = "manifest/\(part)"
                    break
                }
            }
        } else if let data = FileManager.default.contents(atPath: dir + ".json") {
            text = data
            name = "manifest.json"
        }
        guard let text else {
            throw MFRecError.input(
                file: "manifest", reason: "\(folder) has no manifest (manifest/part-00000 or manifest.json)")
        }
        do {
            return try JSONDecoder().decode(Manifest.self, from: text)
        } catch {
            throw MFRecError.input(
                file: name, line: 1, reason: "not a manifest of spark/train_als.py: \(Self.describe(error))")
        }
    }

    private struct Row: Decodable {
        var id: String
        var features: [Double]

        enum CodingKeys: String, CodingKey { case id, features }

        init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            guard c.contains(.id) else {
                throw DecodingError.keyNotFound(CodingKeys.id, .init(codingPath: [], debugDescription: "missing"))
            }
            if let text = try? c.decode(String.self, forKey: .id) {
                id = text
            } else if let number = try? c.decode(Int64.self, forKey: .id) {
                id = String(number)  // an integer id column written as a number
            } else {
                throw DecodingError.dataCorruptedError(
                    forKey: .id, in: c, debugDescription: "not a string or integer")
            }
            features = try c.decode([Double].self, forKey: .features)
        }
    }

    static func readSide(_ folder: String, _ name: String, rank: Int) throws -> Side {
        let dir = (folder as NSString).appendingPathComponent(name)
        let parts = try partFiles(dir)
        guard !parts.isEmpty else { throw MFRecError.input(file: name, reason: "\(dir) holds no part files") }
        var side = Side()
        var seen: [String: String] = [:]  // id → where it was first seen
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(
            positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        for part in parts {
            let file = "\(name)/\(part)"
            let source = try openByteSource(path: (dir as NSString).appendingPathComponent(part))
            side.files += 1
            try LineReader(source: source).forEachLine { bytes, line in
                guard !bytes.isEmpty else { return true }
                let row: Row
                do {
                    row = try decoder.decode(Row.self, from: Data(bytes))
                } catch {
                    throw MFRecError.input(file: file, line: line, reason: Self.describe(error))
                }
                guard row.features.count == rank else {
                    throw MFRecError.input(
                        file: file, line: line,
                        reason: "field features: \(row.features.count) values, but the manifest's rank is \(rank)")
                }
                if let bad = row.features.firstIndex(where: {
                    !$0.isFinite || abs($0) > Double(Float.greatestFiniteMagnitude)
                }) {
                    throw MFRecError.input(
                        file: file, line: line,
                        reason: "field features[\(bad)]: \(row.features[bad]) is not a finite number")
                }
                guard !row.id.isEmpty else { throw MFRecError.input(file: file, line: line, reason: "field id: empty") }
                if let first = seen.updateValue("\(file):\(line)", forKey: row.id) {
                    throw MFRecError.input(
                        file: file, line: line, reason: "field id: \"\(row.id)\" again (first at \(first))")
                }
                side.keys.append(row.id)
                side.vectors.append(contentsOf: row.features.map { Float($0) })
                return true
            }
        }
        return side
    }

    /// A decoding error in a sentence naming the field.
    static func describe(_ error: Error) -> String {
        switch error {
        case DecodingError.keyNotFound(let key, _): return "field \(key.stringValue): missing"
        case DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context):
            return "field \(path(context)): \(context.debugDescription)"
        case DecodingError.dataCorrupted(let context):
            return context.codingPath.isEmpty
                ? "not a JSON object: \(context.debugDescription)"
                : "field \(path(context)): \(context.debugDescription)"
        default: return "\(error)"
        }
    }

    private static func path(_ context: DecodingError.Context) -> String {
        context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
            .replacingOccurrences(of: ".[", with: "[")
    }
}
