import Foundation
import HTTPTypes
import Hummingbird
import MFRec
import NIOCore
import NIOPosix

/// The API's handlers: each parses and validates its input, calls the library, and encodes the answer.
/// Reads run on the request's task (a scan of the mapped item matrix takes microseconds); writes, which may
/// wait for another process's database lock, run on NIO's blocking thread pool.
struct Routes: Sendable {
    let recommender: Recommender
    let engine: QueryEngine
    let configuration: ServerConfiguration
    let metrics: ServerMetrics

    /// The largest n a list may ask for.
    static let maxN = 10_000
    /// The most ids `exclude=` may name.
    static let maxExcluded = 10_000

    /// Every route the API answers: registered from this one list, which also gives the 405 answer to a
    /// known path asked with another method (so the two cannot disagree).
    enum Route: CaseIterable {
        case health, metrics, recommendations, similar, predict, postRatings, snapshots, createSnapshot, rollback, info

        /// Method and path (`{id}`: one path segment).
        var endpoint: (method: HTTPRequest.Method, path: String) {
            switch self {
            case .health: (.get, "/healthz")
            case .metrics: (.get, "/metrics")
            case .recommendations: (.get, "/v1/users/{id}/recommendations")
            case .similar: (.get, "/v1/items/{id}/similar")
            case .predict: (.get, "/v1/predict")
            case .postRatings: (.post, "/v1/ratings")
            case .snapshots: (.get, "/v1/snapshots")
            case .createSnapshot: (.post, "/v1/snapshots")
            case .rollback: (.post, "/v1/rollback/{id}")
            case .info: (.get, "/v1/info")
            }
        }
    }

    /// The methods the API answers on `path` (empty: no such path).
    static func methods(forPath path: String) -> [String] {
        let parts = path.split(separator: "/", omittingEmptySubsequences: false)
        return Route.allCases.map(\.endpoint).filter { route in
            let template = route.path.split(separator: "/", omittingEmptySubsequences: false)
            return template.count == parts.count
                && zip(template, parts).allSatisfy { t, p in t.hasPrefix("{") ? !p.isEmpty : t == p }
        }.map(\.method.rawValue)
    }

    func register(on router: Router<BasicRequestContext>) {
        for route in Route.allCases {
            let (method, path) = route.endpoint
            router.on(RouterPath(path), method: method) { request, context in
                try await self.answer(route, request, context: context)
            }
        }
    }

    /// The handler of one route.
    func answer(_ route: Route, _ request: Request, context: BasicRequestContext) async throws -> Response {
        let query = request.uri.queryParameters
        switch route {
        case .health: return try health()
        case .metrics: return try metricsText()
        case .recommendations: return try recommendations(user: context.parameters.require("id"), query: query)
        case .similar: return try similar(item: context.parameters.require("id"), query: query)
        case .predict: return try predict(query: query)
        case .postRatings: return try await postRatings(request, context: context)
        case .snapshots: return try snapshots()
        case .createSnapshot: return try await createSnapshot(request, context: context)
        case .rollback: return try await rollback(to: context.parameters.require("id"))
        case .info: return try info()
        }
    }

    // MARK: Reads

    func recommendations(user: String, query: Parameters) throws -> Response {
        try Routes.allow(query, ["n", "by", "explain", "exclude", "only", "genre", "minItemRatings"])
        let n = try Routes.integer(query, "n", default: 10, in: 1...Routes.maxN)
        let by = try Routes.ranker(query)
        let explain = try Routes.boolean(query, "explain")
        func ids(_ name: String) throws -> Set<String>? {
            let values = query.getAll(name)
            guard !values.isEmpty else { return nil }
            var out = Set<String>()
            for value in values {
                for id in value.split(separator: ",", omittingEmptySubsequences: true) { out.insert(String(id)) }
            }
            guard out.count <= Routes.maxExcluded else {
                throw APIError.badRequest("\(name) names more than \(Routes.maxExcluded) items")
            }
            return out
        }
        let genre = query.get("genre")
        if let genre, genre.isEmpty { throw APIError.badRequest("genre is empty") }
        let filter = ItemFilter(
            excluded: try ids("exclude") ?? [], only: try ids("only"), genre: genre,
            minRatings: try Routes.integer(query, "minItemRatings", default: 0, in: 0...1_000_000_000))
        try Routes.validID(user, "user")
        let list = try engine.recommend(user: user, n: n, explain: explain, by: by, filter: filter)
        return Routes.json(bytes: JSONText.encode(list))
    }

    func similar(item: String, query: Parameters) throws -> Response {
        try Routes.allow(query, ["n", "by"])
        let n = try Routes.integer(query, "n", default: 10, in: 1...Routes.maxN)
        let by = try Routes.ranker(query) ?? .rating
        guard by == .rating || by == .ranking else {
            throw APIError.badRequest("by must be rating or ranking for similar items (whose item vectors to compare)")
        }
        try Routes.validID(item, "item")
        let items = try engine.similar(item: item, n: n, by: by)
        return try Routes.json(SimilarBody(item: item, by: by.rawValue, items: items))
    }

    func predict(query: Parameters) throws -> Response {
        try Routes.allow(query, ["user", "item"])
        guard let user = query.get("user"), let item = query.get("item") else {
            throw APIError.badRequest("give both user= and item=")
        }
        try Routes.validID(user, "user")
        try Routes.validID(item, "item")
        let (rating, fallback) = try engine.predict(user: user, item: item)
        return try Routes.json(PredictionBody(user: user, item: item, predictedRating: rating, fallback: fallback))
    }

    func snapshots() throws -> Response {
        let list = try engine.snapshots().map(SnapshotBody.init)
        return try Routes.json(SnapshotsBody(snapshots: list, live: LiveBody(try engine.liveModel())))
    }

    func info() throws -> Response {
        let catalog = try engine.catalog()
        let live = try engine.liveModel()
        let ranking = live.snapshotID == nil ? nil : try engine.rankingModel()
        return try Routes.json(
            InfoBody(
                users: catalog.users, items: catalog.items, ratings: try engine.ratingCount(),
                scale: catalog.scale.map { .init(min: $0.lowerBound, max: $0.upperBound) },
                snapshots: try engine.snapshots().count, live: LiveBody(live),
                rankingModel: ranking.map { $0.1.parameters.description }, rankingModelFactors: ranking?.0.factors,
                itemPrecision: live.snapshotID == nil ? nil : try engine.itemPrecision().rawValue))
    }

    func health() throws -> Response {
        try Routes.json(HealthBody(status: "ok", generation: try engine.liveModel().generation))
    }

    func metricsText() throws -> Response {
        let live = try engine.liveModel()
        let text = metrics.exposition(
            generation: live.generation, updatesSinceSnapshot: live.updates, snapshot: live.snapshotID)
        return Response(
            status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    // MARK: Writes

    func postRatings(_ request: Request, context: BasicRequestContext) async throws -> Response {
        let body = try await Routes.decode(RatingsBody.self, request, limit: configuration.maxBodyBytes)
        let ratings = body.ratings
        guard !ratings.isEmpty else { throw APIError.badRequest("no ratings in the body") }
        guard ratings.count <= configuration.maxBatch else {
            throw APIError.badRequest("\(ratings.count) ratings in one request; at most \(configuration.maxBatch)")
        }
        for (n, r) in ratings.enumerated() {
            let which = ratings.count > 1 ? "ratings[\(n)]." : ""
            try Routes.validID(r.user, which + "user")
            try Routes.validID(r.item, which + "item")
        }
        let report = try await Routes.blocking {
            try recommender.rate(
                ratings.map { NewRating(user: $0.user, item: $0.item, rating: $0.rating, timestamp: $0.timestamp) })
        }
        return try Routes.json(
            RatingsApplied(
                applied: report.ratings, newUsers: report.newUsers, newItems: report.newItems,
                generation: report.generation))
    }

    func createSnapshot(_ request: Request, context: BasicRequestContext) async throws -> Response {
        let buffer = try await request.body.collect(upTo: configuration.maxBodyBytes)
        let note = buffer.readableBytes > 0 ? try Routes.decode(NewSnapshotRequest.self, from: buffer).note : nil
        let id = try await Routes.blocking { try recommender.createSnapshot(note: note) }
        return try Routes.json(NewSnapshotBody(id: id), status: .created)
    }

    func rollback(to text: String) async throws -> Response {
        guard let id = Int(text), id > 0 else {
            throw APIError.badRequest("snapshot id \(text) is not a positive integer")
        }
        let report = try await Routes.blocking { try recommender.rollback(to: id) }
        let generation = try recommender.liveModel().generation
        return try Routes.json(
            RollbackBody(snapshot: report.snapshotID, savedUpdatesAs: report.savedUpdatesAs, generation: generation))
    }

    // MARK: Helpers

    /// Runs blocking library work (a write that may wait for the database lock) off the request's task.
    static func blocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await NIOThreadPool.singleton.runIfActive(body)
    }

    static func json<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok) throws -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return json(bytes: try encoder.encode(value), status: status)
    }

    static func json(bytes: some Sequence<UInt8>, status: HTTPResponse.Status = .ok) -> Response {
        Response(
            status: status, headers: [.contentType: "application/json; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    static func decode<T: Decodable>(_ type: T.Type, _ request: Request, limit: Int) async throws -> T {
        let buffer = try await request.body.collect(upTo: limit)
        return try decode(type, from: buffer)
    }

    static func decode<T: Decodable>(_ type: T.Type, from buffer: ByteBuffer) throws -> T {
        do {
            return try JSONDecoder().decode(type, from: Data(buffer.readableBytesView))
        } catch let error as DecodingError {
            throw APIError(.badRequest, "bad_json", describe(error))
        }
    }

    static func describe(_ error: DecodingError) -> String {
        func path(_ context: DecodingError.Context) -> String {
            let keys = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
            return keys.isEmpty ? "the body" : String(keys.drop(while: { $0 == "." }))
        }
        switch error {
        case .dataCorrupted(let c): return "\(path(c)): not valid JSON (\(c.debugDescription))"
        case .keyNotFound(let key, let c): return "\(path(c)): missing field \(key.stringValue)"
        case .typeMismatch(_, let c), .valueNotFound(_, let c): return "\(path(c)): \(c.debugDescription)"
        @unknown default: return "the body is not what this route takes"
        }
    }

    /// Refuses query parameters the route does not know (a misspelt `n` would silently be ignored).
    static func allow(_ query: Parameters, _ names: Set<String>) throws {
        for (key, _) in query where !names.contains(String(key)) {
            throw APIError.badRequest(
                "unknown query parameter \(key); this route takes \(names.sorted().joined(separator: ", "))")
        }
    }

    static func integer(_ query: Parameters, _ name: String, default value: Int, in range: ClosedRange<Int>) throws
        -> Int
    {
        guard let text = query.get(name) else { return value }
        guard let n = Int(text), range.contains(n) else {
            throw APIError.badRequest("\(name) must be an integer in \(range.lowerBound)…\(range.upperBound)")
        }
        return n
    }

    static func boolean(_ query: Parameters, _ name: String) throws -> Bool {
        switch query.get(name) {
        case nil, "false", "0": return false
        case "true", "1": return true
        default: throw APIError.badRequest("\(name) must be true or false")
        }
    }

    static func ranker(_ query: Parameters) throws -> Ranker? {
        guard let text = query.get("by") else { return nil }
        guard let ranker = Ranker(rawValue: text) else {
            throw APIError.badRequest(
                "by must be one of \(Ranker.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return ranker
    }

    /// Ids are what the ratings file had: 1…256 bytes, no control characters.
    static func validID(_ id: String, _ name: String) throws {
        guard !id.isEmpty, id.utf8.count <= 256 else { throw APIError.badRequest("\(name) must be 1 to 256 bytes") }
        guard !id.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7f }) else {
            throw APIError.badRequest("\(name) contains a control character")
        }
    }
}
