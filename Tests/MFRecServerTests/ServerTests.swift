import AsyncHTTPClient
import Foundation
import TestFixtures
import Testing

@testable import MFRec
@testable import MFStore

/// A trained database of generated ratings (users and items "1", "2", …; scale 1–5).
func servedDatabase(in dir: URL) throws -> String {
    try trainedDatabase(in: dir, name: "serve.db", users: 400, items: 200, ratings: 20_000, epochs: 5).db
}

/// The ratings stored for `user` by item id (nil: no such user), read from the file.
func storedRatings(_ db: String, user: String) throws -> [String: Double]? {
    let store = try Store(path: db, mode: .read)
    guard let id = try store.userID(forKey: user) else { return nil }
    var out: [String: Double] = [:]
    for r in try store.ratings(ofUser: id) { out[try store.item(id: r.item)?.key ?? "?"] = r.rating }
    return out
}

@Suite(.serialized) struct ServerRouteTests {
    /// Every route answers over real HTTP from the real binary, with the fields the API documents;
    /// a posted rating changes the next list; errors are JSON with a code and the right status.
    @Test func everyRouteAnswers() async throws {
        let dir = folder()
        let db = try servedDatabase(in: dir)
        let server = try ServerProcess(db: db, extra: ["--max-body-bytes", "2048"], in: dir)
        try await withClient(server.base) { (api: API) async throws -> Void in
            let health = try await api.get("/healthz")
            #expect(health.status == 200 && health.json["status"] as? String == "ok")

            let list = try await api.get("/v1/users/1/recommendations?n=5")
            #expect(list.status == 200, "\(list.text)")
            #expect(list.headers.first(name: "Content-Type")?.hasPrefix("application/json") == true)
            #expect(list.itemIDs.count == 5)
            #expect(list.json["user"] as? String == "1" && list.json["ranking"] as? String == "ranking")
            // The same list the command line prints for the same database and options.
            let cli = try mfrec(["recommend", "1", "-n", "5", "--format", "json", "--db", db])
            let cliItems =
                ((try JSONSerialization.jsonObject(with: Data(cli.stdout.utf8)) as? [String: Any])?["items"]
                as? [[String: Any]] ?? []).compactMap { $0["item"] as? String }
            #expect(cliItems == list.itemIDs)

            let byRating = try await api.get("/v1/users/1/recommendations?n=3&by=rating&explain=true")
            #expect(byRating.json["ranking"] as? String == "rating")
            let first = (byRating.json["items"] as? [[String: Any]])?.first
            #expect((first?["because"] as? [[String: Any]])?.isEmpty == false, "\(byRating.text)")

            let similar = try await api.get("/v1/items/5/similar?n=4&by=ranking")
            #expect(similar.status == 200 && similar.itemIDs.count == 4 && !similar.itemIDs.contains("5"))
            let predict = try await api.get("/v1/predict?user=1&item=5")
            #expect(predict.status == 200 && (predict.json["predictedRating"] as? Double ?? 0) >= 1)
            let info = try await api.get("/v1/info")
            #expect(info.json["users"] as? Int == 400 && info.json["items"] as? Int == 200)
            #expect(info.json["itemPrecision"] as? String == "f32", "\(info.text)")
            let snapshots = try await api.get("/v1/snapshots")
            #expect((snapshots.json["snapshots"] as? [[String: Any]])?.count == 1)

            // A rating posted over HTTP is stored, moves the live model, and the next list leaves the item out.
            let top = list.itemIDs[0]
            let posted = try await api.post("/v1/ratings", #"{"user": "1", "item": "\#(top)", "rating": 5}"#)
            #expect(posted.status == 200 && posted.json["applied"] as? Int == 1, "\(posted.text)")
            let generation = try #require(posted.json["generation"] as? Int)
            let after = try await api.get("/v1/users/1/recommendations?n=5")
            #expect(!after.itemIDs.contains(top))
            #expect(try storedRatings(db, user: "1")?[top] == 5)
            let metrics = try await api.get("/metrics")
            #expect(metrics.text.contains("mfrec_model_generation \(generation).0"), "\(metrics.text)")
            #expect(metrics.text.contains(#"route="/v1/users/{id}/recommendations",method="GET",status="200""#))

            // A batch, with integer ids; a new user gets a list.
            let batch = try await api.post(
                "/v1/ratings",
                #"{"ratings": [{"user": 9001, "item": 3, "rating": 4}, {"user": 9001, "item": 7, "rating": 5}]}"#)
            #expect(batch.status == 200 && batch.json["newUsers"] as? Int == 1, "\(batch.text)")
            let newcomer = try await api.get("/v1/users/9001/recommendations?n=3")
            #expect(newcomer.status == 200 && newcomer.itemIDs.count == 3 && !newcomer.itemIDs.contains("3"))

            // Freeze and roll back over HTTP.
            let frozen = try await api.post("/v1/snapshots", #"{"note": "from http"}"#)
            #expect(frozen.status == 201 && frozen.json["id"] as? Int == 2, "\(frozen.text)")
            let rolled = try await api.post("/v1/rollback/1")
            #expect(rolled.status == 200 && rolled.json["snapshot"] as? Int == 1, "\(rolled.text)")

            // Errors: JSON, a stable code, the right status; nothing stored by a refused write.
            let before = try storedRatings(db, user: "1")
            let cases: [(Answer, Int, String)] = [
                (try await api.post("/v1/ratings", #"{"user": "1", "item": "4""#), 400, "bad_json"),
                (try await api.post("/v1/ratings", #"{"user": "1", "item": "4", "rating": 9}"#), 422, "invalid_rating"),
                (try await api.post("/v1/ratings", #"{"user": "1", "rating": 3}"#), 400, "bad_json"),
                (try await api.post("/v1/ratings", String(repeating: " ", count: 4096) + "{}"), 413, "body_too_large"),
                (try await api.get("/v1/users/1/recommendations?n=0"), 400, "bad_request"),
                (try await api.get("/v1/users/1/recommendations?n=abc"), 400, "bad_request"),
                (try await api.get("/v1/users/1/recommendations?by=magic"), 400, "bad_request"),
                (try await api.get("/v1/users/1/recommendations?count=3"), 400, "bad_request"),
                (try await api.get("/v1/items/99999/similar"), 404, "unknown_item"),
                (try await api.get("/v1/predict?user=1&item=99999"), 404, "unknown_item"),
                (try await api.get("/v1/predict?user=1"), 400, "bad_request"),
                (try await api.post("/v1/rollback/77"), 404, "unknown_snapshot"),
                (try await api.post("/v1/rollback/x"), 400, "bad_request"),
                (try await api.get("/v1/nothing"), 404, "no_route"),
                (try await api.call(.DELETE, "/v1/ratings"), 405, "method_not_allowed"),
            ]
            for (answer, status, code) in cases {
                #expect(answer.status == status && answer.errorCode == code, "\(status) \(code): \(answer.text)")
            }
            #expect(try storedRatings(db, user: "1") == before)
        }
        #expect(server.stop().status == 0)
    }

    /// `exclude=` filters inside the scan: the answer is the true top-n of the allowed items, not a
    /// filtered top-n (excluding the unfiltered top 10 gives exactly the unfiltered ranks 11–15).
    @Test func excludeFiltersInsideTheScan() async throws {
        let dir = folder()
        let db = try servedDatabase(in: dir)
        let server = try ServerProcess(db: db, in: dir)
        try await withClient(server.base) { (api: API) async throws -> Void in
            for by in ["ranking", "rating", "cooccurrence", "popular"] {
                let long = try await api.get("/v1/users/2/recommendations?n=15&by=\(by)")
                #expect(long.itemIDs.count == 15, "\(by): \(long.text)")
                let excluded = long.itemIDs.prefix(10).joined(separator: ",")
                let rest = try await api.get("/v1/users/2/recommendations?n=5&by=\(by)&exclude=\(excluded)")
                #expect(rest.itemIDs == Array(long.itemIDs.suffix(5)), "\(by)")
                // A candidate set of the unfiltered ranks 3, 7 and 12 gives exactly those, in that order.
                let picked = [2, 6, 11].map { long.itemIDs[$0] }
                let only = try await api.get(
                    "/v1/users/2/recommendations?n=5&by=\(by)&only=\(picked.reversed().joined(separator: ","))")
                #expect(only.itemIDs == picked, "\(by): \(only.text)")
                // Every item has at least 0 ratings; none has a billion.
                let all = try await api.get("/v1/users/2/recommendations?n=15&by=\(by)&minItemRatings=0")
                #expect(all.itemIDs == long.itemIDs, "\(by)")
                let none = try await api.get("/v1/users/2/recommendations?n=5&by=\(by)&minItemRatings=1000000000")
                #expect(none.status == 200 && none.itemIDs.isEmpty, "\(by): \(none.text)")
            }
            let genre = try await api.get("/v1/users/2/recommendations?genre=Jazz")
            #expect(genre.status == 404 && genre.errorCode == "unknown_genre", "\(genre.text)")
            let bad = try await api.get("/v1/users/2/recommendations?minItemRatings=-1")
            #expect(bad.status == 400, "\(bad.text)")
        }
        server.stop()
    }

    /// A `mfrec rollback` (and a `mfrec rate`) run as separate processes are picked up by the running
    /// server: its next answers come from the new live model.
    @Test func changesByOtherProcessesArePickedUp() async throws {
        let dir = folder()
        let db = try servedDatabase(in: dir)
        let server = try ServerProcess(db: db, in: dir)
        try await withClient(server.base) { (api: API) async throws -> Void in
            // A second model, trained with other settings (and a 16-bit scan copy), becomes live from the shell.
            #expect(
                try mfrec([
                    "train", "--db", db, "--epochs", "2", "--factors", "8", "--quiet", "--tune", "off",
                    "--item-precision", "f16",
                ]).status == 0)
            let trained = try await api.get("/v1/info")
            #expect((trained.json["live"] as? [String: Any])?["snapshot"] as? Int == 2)
            #expect(trained.json["itemPrecision"] as? String == "f16", "\(trained.text)")
            let byRating2 = try await api.get("/v1/users/3/recommendations?n=5&by=rating")
            let cli2 = try mfrec(["recommend", "3", "-n", "5", "--by", "rating", "--format", "csv", "--db", db])
            let cliItems2 = cli2.stdout.split(separator: "\n").dropFirst().map { String($0.split(separator: ",")[1]) }
            #expect(byRating2.itemIDs == cliItems2)

            #expect(try mfrec(["rollback", "1", "--db", db]).status == 0)
            let rolled = try await api.get("/v1/info")
            #expect((rolled.json["live"] as? [String: Any])?["snapshot"] as? Int == 1)
            #expect(rolled.json["itemPrecision"] as? String == "f32", "\(rolled.text)")
            let byRating1 = try await api.get("/v1/users/3/recommendations?n=5&by=rating")
            let cli1 = try mfrec(["recommend", "3", "-n", "5", "--by", "rating", "--format", "csv", "--db", db])
            let cliItems1 = cli1.stdout.split(separator: "\n").dropFirst().map { String($0.split(separator: ",")[1]) }
            #expect(byRating1.itemIDs == cliItems1)
            #expect(byRating1.itemIDs != byRating2.itemIDs)

            // A rating from the shell: the server's next list for that user leaves the item out.
            let top = try await api.get("/v1/users/3/recommendations?n=1")
            let item = try #require(top.itemIDs.first)
            #expect(try mfrec(["rate", "3", item, "5", "--db", db]).status == 0)
            let next = try await api.get("/v1/users/3/recommendations?n=5")
            #expect(!next.itemIDs.contains(item))
        }
        server.stop()
    }

    /// With --token-file every POST needs the token (401 otherwise, JSON), GET routes too unless
    /// --public-reads; /healthz never does. A non-loopback address without a token is refused at start.
    @Test func tokenGuardsWrites() async throws {
        let dir = folder()
        let db = try servedDatabase(in: dir)
        let tokenFile = dir.appendingPathComponent("token")
        let token = "s3cret-token-0123456789"
        try (token + "\n").write(to: tokenFile, atomically: true, encoding: .utf8)
        let rating = #"{"user": "1", "item": "2", "rating": 4}"#

        let closed = try ServerProcess(db: db, extra: ["--token-file", tokenFile.path], in: dir)
        try await withClient(closed.base) { (api: API) async throws -> Void in
            let none = try await api.post("/v1/ratings", rating)
            #expect(none.status == 401 && none.errorCode == "unauthorized", "\(none.text)")
            #expect(try await api.post("/v1/ratings", rating, token: token + "x").status == 401)
            #expect(try await api.post("/v1/ratings", rating, token: String(token.dropLast())).status == 401)
            #expect(try await api.get("/v1/users/1/recommendations").status == 401)
            #expect(try await api.get("/healthz").status == 200)
            let ok = try await api.post("/v1/ratings", rating, token: token)
            #expect(ok.status == 200, "\(ok.text)")
            #expect(try await api.get("/v1/users/1/recommendations", token: token).status == 200)
        }
        closed.stop()

        let open = try ServerProcess(db: db, extra: ["--token-file", tokenFile.path, "--public-reads"], in: dir)
        try await withClient(open.base) { (api: API) async throws -> Void in
            #expect(try await api.get("/v1/users/1/recommendations").status == 200)
            #expect(try await api.post("/v1/snapshots").status == 401)
        }
        open.stop()

        let exposed = try mfrec(["serve", "--db", db, "--host", "0.0.0.0", "--port", "0"])
        #expect(exposed.status == 64 && exposed.stderr.contains("--token-file"), "\(exposed.stderr)")
        let short = dir.appendingPathComponent("short")
        try "abc".write(to: short, atomically: true, encoding: .utf8)
        let weak = try mfrec(["serve", "--db", db, "--port", "0", "--token-file", short.path])
        #expect(weak.status != 0 && weak.stderr.contains("shorter than 16"), "\(weak.stderr)")
    }

    /// A write that cannot get the database lock within --write-wait-ms answers 503 with Retry-After,
    /// and stores nothing; it succeeds once the lock is free.
    @Test func busyDatabaseGets503() async throws {
        let dir = folder()
        let db = try servedDatabase(in: dir)
        let server = try ServerProcess(db: db, extra: ["--write-wait-ms", "2000"], in: dir)
        let holding = ThreadBox<Bool>()
        let release = DispatchSemaphore(value: 0)
        let holder = Thread {
            do {
                let store = try Store(path: db, mode: .write)
                try store.transaction {
                    try store.db.execute("UPDATE live_model SET updates = updates WHERE id = 1")
                    holding.value = true
                    release.wait()
                }
            } catch {
                holding.value = false
            }
        }
        holder.start()
        while holding.value == nil { usleep(1000) }
        #expect(holding.value == true)
        try await withClient(server.base) { (api: API) async throws -> Void in
            // The post waits up to 2 s for the lock, holding the server's writer meanwhile.
            async let waiting = api.post("/v1/ratings", #"{"user": "5", "item": "6", "rating": 2}"#)
            try await Task.sleep(for: .milliseconds(300))
            // Reads, status and health still answer at once: they use the query engine's own connections,
            // not the waiting writer (WAL lets them read past the other process's lock).
            let started = Date()
            for path in ["/v1/users/5/recommendations?n=2", "/healthz", "/v1/info", "/metrics", "/v1/snapshots"] {
                let answer = try await api.get(path)
                #expect(answer.status == 200, "\(path): \(answer.text)")
            }
            let waited = Date().timeIntervalSince(started)
            #expect(waited < 1, "reads took \(waited) s while a write waited for the lock")
            let busy = try await waiting
            #expect(busy.status == 503 && busy.errorCode == "busy", "\(busy.text)")
            #expect(busy.headers.first(name: "Retry-After") == "1")
            release.signal()
            while !holder.isFinished { usleep(1000) }
            let later = try await api.post("/v1/ratings", #"{"user": "5", "item": "6", "rating": 2}"#)
            #expect(later.status == 200, "\(later.text)")
        }
        server.stop()
    }
}

@Suite(.serialized) struct ServerDurabilityTests {
    /// Posts ratings one at a time from several connections until `stopAfter` are acknowledged, then
    /// signals the server; every acknowledged rating must be in the file afterwards.
    func streamThenSignal(_ signal: Int32) async throws {
        let dir = folder()
        let db = try servedDatabase(in: dir)
        let server = try ServerProcess(db: db, in: dir)
        let acknowledged = ThreadBox<[String]>()
        acknowledged.value = []
        try await withClient(server.base) { (api: API) async throws -> Void in
            try await withThrowingTaskGroup(of: Void.self) { group in
                for writer in 0..<4 {
                    group.addTask {
                        for n in 0..<100_000 {
                            let user = "stream-\(writer)-\(n)"
                            guard
                                let answer = try? await api.post(
                                    "/v1/ratings", #"{"user": "\#(user)", "item": "\#(n % 200 + 1)", "rating": 4}"#)
                            else { return }  // the server went away
                            if answer.status != 200 { return }
                            acknowledged.mutate { $0!.append(user) }
                        }
                    }
                }
                group.addTask {
                    while (acknowledged.value?.count ?? 0) < 150 { try await Task.sleep(for: .milliseconds(5)) }
                    let ended = server.stop(signal: signal)
                    if signal == SIGTERM {
                        // Graceful: requests in flight finish, then a clean exit.
                        #expect(ended.status == 0 && ended.reason == .exit, "\(ended)")
                    } else {
                        #expect(ended.reason == .uncaughtSignal)
                    }
                }
                try await group.waitForAll()
            }
        }
        let users = acknowledged.value ?? []
        #expect(users.count >= 150)
        let store = try Store(path: db, mode: .read)
        var missing: [String] = []
        for user in users where try store.userID(forKey: user) == nil { missing.append(user) }
        #expect(missing.isEmpty, "acknowledged but not stored: \(missing.prefix(5))")
    }

    @Test func sigkillLosesNoAcknowledgedRating() async throws { try await streamThenSignal(SIGKILL) }

    @Test func sigtermLosesNoAcknowledgedRating() async throws { try await streamThenSignal(SIGTERM) }
}

/// Whether `schemathesis` (PyPI) can be run; `.ci/run` installs it and sets MFREC_REQUIRE_SCHEMATHESIS=1,
/// so on CI this suite cannot be skipped.
let schemathesisInstalled: Bool = {
    let probe = Process()
    probe.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    probe.arguments = ["schemathesis", "--version"]
    probe.standardOutput = FileHandle.nullDevice
    probe.standardError = FileHandle.nullDevice
    guard (try? probe.run()) != nil else { return false }
    probe.waitUntilExit()
    return probe.terminationStatus == 0
}()
let schemathesisRequired = ProcessInfo.processInfo.environment["MFREC_REQUIRE_SCHEMATHESIS"] == "1"

@Suite(.serialized, .enabled(if: schemathesisInstalled || schemathesisRequired))
struct ServerConformanceTests {
    /// Schemathesis generates requests from openapi.yaml (valid and invalid ones, every route and method)
    /// against the real server, and checks every response's status, headers, content type and body
    /// against the document's schemas, and that no request gets a 5xx.
    @Test func everyResponseMatchesTheOpenAPIDocument() throws {
        #expect(schemathesisInstalled, "schemathesis is not installed (pip install schemathesis)")
        guard schemathesisInstalled else { return }
        let dir = folder()
        let db = try servedDatabase(in: dir)
        let server = try ServerProcess(db: db, in: dir)
        let here = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        let spec = here.appendingPathComponent("../../Sources/MFRecServer/openapi.yaml").standardizedFileURL.path
        let seed = ProcessInfo.processInfo.environment["MFREC_SCHEMATHESIS_SEED"] ?? "1"
        let run = Process()
        run.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        run.arguments = [
            "schemathesis", "--no-color", "--config-file", here.appendingPathComponent("schemathesis.toml").path,
            "run", spec, "--url", server.base, "--checks", "all", "--max-examples", "40", "--seed", seed,
        ]
        run.currentDirectoryURL = dir  // its hypothesis database goes to the temp folder
        let output = dir.appendingPathComponent("schemathesis.txt")
        FileManager.default.createFile(atPath: output.path, contents: nil)
        run.standardOutput = try FileHandle(forWritingTo: output)
        run.standardError = run.standardOutput
        try run.run()
        run.waitUntilExit()
        let text = (try? String(contentsOf: output, encoding: .utf8)) ?? ""
        #expect(run.terminationStatus == 0, "schemathesis found failures:\n\(text.suffix(6000))")
        // It really ran: every operation was tested.
        #expect(text.contains("Tested: 10"), "\(text.suffix(2000))")
        #expect(server.stop().status == 0)
    }
}
