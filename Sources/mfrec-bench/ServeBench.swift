import ArgumentParser
import Dispatch
import Foundation
import Hummingbird
import Logging
import MFRec
import NIOCore
import NIOPosix

/// `mfrec serve` under load from wrk on loopback, next to the same queries made in-process and to a
/// Hummingbird server returning a fixed body of the same size (the HTTP ceiling), all in one run.
struct ServeBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract:
            "HTTP throughput and latency of `mfrec serve` (wrk on loopback): recommendations, and 95% reads with 5% "
            + "rating posts, next to in-process queries and a fixed-body Hummingbird server from the same run.")

    @Option(help: "Seconds each measured load runs (after a 2 s warm-up).") var seconds = 10
    @Option(help: "Concurrent connections of the read loads (repeat the option for several).")
    var connections: [Int] = [8, 32]
    @Option(help: "Also measure a generated model with this many ratings (0: ML-100K only; 25000000 for 25M).")
    var largeRatings = 0
    @Option(help: "Users of the generated model.") var largeUsers = 162_541
    @Option(help: "Items of the generated model.") var largeItems = 59_047
    @Flag(help: "Reuse the databases a run with --keep left in --folder (their earlier posts included).")
    var reuse = false
    @Flag(help: "Skip ML-100K.") var largeOnly = false
    @Option(
        help: ArgumentHelp(
            "Niceness of wrk (-20…19; 0: the servers' own priority).",
            discussion:
                "wrk shares the cores with the server it drives: at the servers' priority its threads wait for a core "
                + "behind the saturated event loops, and that wait is counted as the server's latency. Both the "
                + "ceiling and mfrec serve are driven by the same wrk settings."))
    var wrkNice = -10
    @Option(
        help: ArgumentHelp(
            "Rounds of the read loads (1…20).",
            discussion:
                "In each round the ceiling, the in-process queries and mfrec serve run one after another, so a change "
                + "in the machine's load (other jobs on a shared machine) falls on all three; each ratio is taken "
                + "within a round, and the median over the rounds is printed (with an even count, the lower of the "
                + "two middle ones)."))
    var rounds = 3
    @OptionGroup var scale: Scale

    /// How the keys of the new users the mixed loads post begin: over HTTP (wrk's script) and in process. The read
    /// loads leave such users out, so a database reused from an earlier run is read like a fresh one.
    static let postedUserPrefixes = (http: "wrk-", inProcess: "in-process-")

    func validate() throws {
        guard (1...3_600).contains(seconds) else { throw ValidationError("--seconds must be 1…3600") }
        guard (-20...19).contains(wrkNice) else { throw ValidationError("--wrk-nice must be -20…19") }
        guard (1...20).contains(rounds) else { throw ValidationError("--rounds must be 1…20") }
        guard connections.allSatisfy({ (1...1_024).contains($0) }) else {
            throw ValidationError("--connections must be 1…1024")
        }
    }

    func run() throws {
        // As `mfrec serve` does: Swift concurrency's jobs (the ceiling's handlers) run on NIO's event loops.
        _ = NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/wrk") else {
            throw BenchError("wrk is needed: apt-get install wrk")
        }
        if wrkNice != 0 {
            let probe = try captureChild("/usr/bin/nice", ["-n", "\(wrkNice)", "/bin/true"])
            guard probe.status == 0, !probe.output.contains("cannot set niceness") else {
                throw BenchError("cannot run wrk at niceness \(wrkNice) here (\(probe.output)); pass --wrk-nice 0")
            }
        }
        let dir = try scale.makeFolder()
        defer { scale.removeFolder(dir) }
        if largeOnly {
            print("(ML-100K skipped: --large-only)")
        } else if FileManager.default.fileExists(atPath: sharedML100K) {
            let db = (dir as NSString).appendingPathComponent("ml.db")
            if !(reuse && FileManager.default.fileExists(atPath: db)) {
                try prepare(["ingest", sharedML100K, "--db", db], ["train", "--db", db, "--quiet"])
            }
            try measure(name: "ML-100K", db: db, dir: dir)
        } else {
            print("(ML-100K not found at \(sharedML100K): skipped)")
        }
        if largeRatings > 0 {
            let data = (dir as NSString).appendingPathComponent("large.data")
            let db = (dir as NSString).appendingPathComponent("large.db")
            if reuse && FileManager.default.fileExists(atPath: db) {
                print("(reusing \(db))")
            } else {
                try prepare(
                    [
                        "generate", "--users", "\(largeUsers)", "--items", "\(largeItems)", "--ratings",
                        "\(largeRatings)", "-o", data,
                    ], ["ingest", data, "--db", db], ["train", "--db", db, "--quiet", "--tune", "off"])
            }
            try measure(name: "generated \(largeRatings) ratings", db: db, dir: dir)
        }
    }

    func prepare(_ steps: [String]...) throws {
        for step in steps {
            let run = try runChild(mfrecPath, step)
            guard run.status == 0 else { throw BenchError("mfrec \(step.joined(separator: " ")) failed") }
        }
    }

    func measure(name: String, db: String, dir: String) throws {
        let rec = try Recommender(path: db, mode: .read)
        let engine = try rec.queries()
        let store = try Store(path: db, mode: .read)
        // The users of the data set: not the one-rating users the mixed loads of an earlier --reuse run posted (a
        // reused database would otherwise be measured on a different mix of users than a fresh one).
        let posted = ServeBench.postedUserPrefixes
        let users = try store.userKeys().filter { !$0.hasPrefix(posted.http) && !$0.hasPrefix(posted.inProcess) }
        guard !users.isEmpty else { throw BenchError("\(db) has no users of its data set to ask for") }
        let items = Array(try (0..<min(try rec.catalog().items, 5_000)).compactMap { try store.item(id: $0)?.key })
        let sample = try engine.recommend(user: users[0], n: 10)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let body = try encoder.encode(sample)
        section(
            "\(name): \(users.count) users, \(try engine.matrix().itemCount) items; top-10 by the default ranker "
                + "(\(sample.ranking)), responses of about \(body.count) bytes; wrk -t2 at niceness \(wrkNice) (the servers "
                + "at 0), \(seconds) s after 2 s warm-up"
        )
        let script = (dir as NSString).appendingPathComponent("load.lua")

        // The ceiling (Hummingbird answering the same route with a fixed body of the same size), the same queries in
        // process (from as many threads as connections), and mfrec serve, in turns: each round runs all three.
        let ceiling = try FixedBodyServer(body: body)
        defer { ceiling.stop() }
        let server = try ServeChild(db: db)
        defer { server.stop() }
        try writeScript(script, users: users, items: items, writeShare: 0)
        var ceilingRates: [Int: Double] = [:]
        for c in connections {
            var turns: [Turn] = []
            for round in 1...rounds {
                let turn = (
                    ceiling: try wrk(port: ceiling.port, connections: c, script: script, serverPID: getpid()),
                    inProcess: try inProcessLoad(engine: engine, users: users, threads: c),
                    serve: try wrk(port: server.port, connections: c, script: script, serverPID: server.pid)
                )
                turns.append(turn)
                print(
                    "  round \(round), \(c) connections: ceiling \(rate(turn.ceiling.perSecond, 1))/s, in-process "
                        + "\(rate(turn.inProcess.perSecond, 1))/s, mfrec serve \(rate(turn.serve.perSecond, 1))/s "
                        + "(p99 \(fmt(turn.serve.p99 / 1000)) ms) = \(fmt(turn.serve.perSecond / turn.ceiling.perSecond)) × "
                        + "the ceiling, \(fmt(turn.serve.perSecond / turn.inProcess.perSecond)) × in-process")
            }
            // Each load's median round by requests/s, and the median of the ratios within rounds (the lower middle one
            // of an even count).
            let middle = (turns.count - 1) / 2
            func median(_ pick: (Turn) -> Load) -> Load {
                turns.map(pick).sorted { $0.perSecond < $1.perSecond }[middle]
            }
            func medianRatio(_ ratio: (Turn) -> Double) -> Double { turns.map(ratio).sorted()[middle] }
            let (top, inner, serve) = (median(\.ceiling), median(\.inProcess), median(\.serve))
            ceilingRates[c] = top.perSecond
            let each = rounds > 1 ? " (the median round of \(rounds))" : ""
            print(top.line("fixed-body Hummingbird (ceiling)", connections: c) + each)
            print(inner.line("in-process QueryEngine.recommend", connections: c) + each)
            print(serve.line("mfrec serve recommendations", connections: c) + each)
            print(
                "    = \(fmt(medianRatio { $0.serve.perSecond / $0.ceiling.perSecond })) × the ceiling's requests/s, "
                    + "\(fmt(medianRatio { $0.serve.perSecond / $0.inProcess.perSecond })) × in-process; CPU per request "
                    + "\(fmt(medianRatio { ($0.serve.cpuPerRequest ?? .nan) / ($0.ceiling.cpuPerRequest ?? .nan) })) × "
                    + "the ceiling's, "
                    + "\(fmt(medianRatio { ($0.serve.cpuPerRequest ?? .nan) / ($0.inProcess.cpuPerRequest ?? .nan) })) × "
                    + "in-process (medians of the ratios within rounds)")
            // What HTTP on these cores allows at best: the cores the in-process queries kept busy, shared by each HTTP
            // request's query (its in-process CPU), at least the ceiling's HTTP work (its server CPU) and wrk's own.
            func bound(_ turn: Turn) -> Double {
                guard let query = turn.inProcess.cpuPerRequest, let http = turn.ceiling.cpuPerRequest,
                    let client = turn.serve.clientCPUPerRequest
                else { return .nan }
                return query / (query + http + client)
            }
            print(
                "    wrk's CPU per request: \(fmt(serve.clientCPUPerRequest ?? .nan, 0)) µs; on these cores HTTP allows at "
                    + "most \(fmt(medianRatio(bound))) × in-process (in-process CPU ÷ (in-process + the ceiling's + wrk's "
                    + "CPU per request): the query, the least HTTP work and the client share the cores); mfrec serve "
                    + "reached \(fmt(medianRatio { $0.serve.perSecond / $0.inProcess.perSecond / bound($0) })) of that")
        }
        // Where the time goes: the server's own histogram of the route's handler time (from the request to the
        // response, inside the server), over the read runs above and their warm-ups.
        let readHistogram = handlerHistogram(port: server.port)
        if let line = handlerShares(readHistogram["GET /v1/users/{id}/recommendations"]) {
            print(
                "    the route's handler time inside the server (its /metrics histogram, these runs and warm-ups): "
                    + line)
        }
        let c = connections.min() ?? 8
        // The mixed load in process first: the same share of ratings through a Recommender of this process
        // (the engine follows its writes as the server's follows the server's).
        // The writer is closed before the server's run (its WAL checkpointer would run beside the server's).
        let mixedInProcess = try inProcessLoad(
            engine: engine, users: users, threads: c, writer: try Recommender(path: db), items: items,
            writeShare: 0.05)
        print(mixedInProcess.line("in-process 95% recommend + 5% rate", connections: c))
        print("    \(mixedInProcess.acknowledged) ratings written")
        let matrixFile = engine.itemMatrixPath
        let matrixBefore = inode(matrixFile)
        try writeScript(script, users: users, items: items, writeShare: 0.05)
        // Warmed up like the other runs, and the warm-up printed: its first posts make the server catch up with the
        // in-process writer's ratings (every reader waits for that load once). The count is taken once the warm-up's
        // last posts are stored, so every rating counted after it is the measured run's.
        let warmUp = try wrk(
            port: server.port, connections: c, script: script, warmUp: false, serverPID: server.pid, seconds: 2)
        print(warmUp.line("mfrec serve 95% reads + 5% rating posts, its 2 s warm-up", connections: c))
        var before = try rec.ratingCount()
        while true {
            usleep(200_000)
            let now = try rec.ratingCount()
            if now == before { break }
            before = now
        }
        let histogramBefore = handlerHistogram(port: server.port)
        let mixed = try wrk(port: server.port, connections: c, script: script, warmUp: false, serverPID: server.pid)
        let after = try rec.ratingCount()
        print(mixed.line("mfrec serve 95% reads + 5% rating posts", connections: c))
        // The same histogram over the mixed run alone (its counts less those before it).
        let mixedHistogram = handlerHistogram(port: server.port)
        for route in ["GET /v1/users/{id}/recommendations", "POST /v1/ratings"] {
            let earlier = histogramBefore[route] ?? [:]
            let delta = (mixedHistogram[route] ?? [:]).reduce(into: [String: Double]()) {
                $0[$1.key] = $1.value - (earlier[$1.key] ?? 0)
            }
            if let line = handlerShares(delta) { print("    \(route) handler time in that run: " + line) }
        }
        // Posts still in flight when wrk stops are stored but not counted by it: stored ≥ acknowledged.
        let stored = after - before
        print(
            "    = \(fmt(mixed.perSecond / (ceilingRates[c] ?? .nan))) × the ceiling, "
                + "\(fmt(mixed.perSecond / mixedInProcess.perSecond)) × in-process; \(mixed.acknowledged) posts "
                + "acknowledged, \(stored) new ratings stored"
                + (stored >= mixed.acknowledged
                    ? " (every acknowledged rating is there; \(stored - mixed.acknowledged) were answered after wrk stopped)"
                    : " — \(mixed.acknowledged - stored) ACKNOWLEDGED RATINGS MISSING"))
        // Every post is followed in place; a whole rewrite of the item matrix (a new file) means a query or a
        // writer found the file behind the database.
        print(
            "    item matrix file during the mixed run: "
                + (inode(matrixFile) == matrixBefore
                    ? "followed in place (the same file)" : "REWRITTEN WHOLE at least once (a new file)"))
        print("    server peak memory \(fmt(server.peakMegabytes(), 0)) MB")
    }

    /// One round of a read load: the ceiling's, the in-process queries' and mfrec serve's.
    typealias Turn = (ceiling: Load, inProcess: Load, serve: Load)

    struct Load {
        var requests: Int
        var seconds: Double
        var p50: Double  // µs
        var p99: Double
        var p999: Double
        var failed: Int
        var acknowledged = 0
        /// CPU time (user + system) of the process that answered, per request, in µs: steadier than requests/s
        /// on a shared machine, where other jobs take cores away.
        var cpuPerRequest: Double?
        /// CPU time of the client (wrk) per request, in µs: what the load itself takes from the shared cores.
        var clientCPUPerRequest: Double?
        var perSecond: Double { Double(requests) / max(seconds, 1e-9) }

        func line(_ what: String, connections: Int) -> String {
            "\(what), \(connections) connections: \(rate(Double(requests), seconds)) requests/s, p50 "
                + "\(fmt(p50 / 1000)) ms, p99 \(fmt(p99 / 1000)) ms, p99.9 \(fmt(p999 / 1000)) ms"
                + (failed > 0 ? ", \(failed) failed" : "")
                + (cpuPerRequest.map { ", \(fmt($0, 0)) µs of CPU per request" } ?? "")
        }
    }

    func writeScript(_ path: String, users: [String], items: [String], writeShare: Double) throws {
        func list(_ keys: [String]) -> String {
            "{"
                + keys.map {
                    "\"" + $0.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
                        + "\""
                }
                .joined(separator: ",") + "}"
        }
        let posted = ServeBench.postedUserPrefixes.http
        var lua = """
            local users = \(list(users))
            local items = \(list(items))
            local write_share = \(writeShare)
            local threads = {}
            local counter = 0
            function setup(thread)
              counter = counter + 1
              thread:set("tid", counter)
              table.insert(threads, thread)
            end
            function init(args)
              acked = 0
              seq = 0
              math.randomseed(tid * 7919 + os.time())
            end
            function request()
              if write_share > 0 and math.random() < write_share then
                seq = seq + 1
                local body = string.format('{"user":"\(posted)%d-%d-%d","item":"%s","rating":%d}', os.time(), tid, seq,
                  items[math.random(#items)], math.random(1, 5))
                return wrk.format("POST", "/v1/ratings", {["Content-Type"] = "application/json"}, body)
              end
              return wrk.format("GET", "/v1/users/" .. users[math.random(#users)] .. "/recommendations?n=10")
            end
            function done(summary, latency, requests)
              local a = 0
              for _, t in ipairs(threads) do a = a + (t:get("acked") or 0) end
              local e = summary.errors
              io.write(string.format("RESULT %d %d %d %d %.1f %.1f %.1f %d\\n", summary.requests, summary.duration,
                e.status, e.connect + e.read + e.write + e.timeout, latency:percentile(50), latency:percentile(99),
                latency:percentile(99.9), a))
            end

            """
        if writeShare > 0 {
            lua += """
                function response(status, headers, body)
                  if status == 200 and string.find(body, '"applied"', 1, true) then acked = acked + 1 end
                end

                """
        }
        try lua.write(toFile: path, atomically: true, encoding: .utf8)
    }

    /// A wrk load on `port` (`seconds` long, or `--seconds`); the CPU time of `serverPID` (the process answering) is
    /// read around the measured run.
    func wrk(
        port: Int, connections: Int, script: String, warmUp: Bool = true, serverPID: Int32, seconds: Int? = nil
    ) throws -> Load {
        func once(_ seconds: Int) throws -> Load {
            let out = try captureChild(
                "/usr/bin/nice",
                [
                    "-n", "\(wrkNice)", "/usr/bin/wrk", "-t2", "-c\(connections)", "-d\(seconds)s", "--timeout", "10s",
                    "-s", script,
                    "http://127.0.0.1:\(port)",
                ]
            ).output
            guard let line = out.split(separator: "\n").first(where: { $0.hasPrefix("RESULT ") }) else {
                throw BenchError("wrk printed no result:\n\(out)")
            }
            let f = line.split(separator: " ").dropFirst().map { Double($0) ?? 0 }
            return Load(
                requests: Int(f[0]), seconds: f[1] / 1e6, p50: f[4], p99: f[5], p999: f[6], failed: Int(f[2] + f[3]),
                acknowledged: Int(f[7]))
        }
        if warmUp { _ = try once(2) }
        let cpu = cpuSeconds(of: serverPID)
        let client = childrenCPUSeconds()
        var load = try once(seconds ?? self.seconds)
        if let before = cpu, let after = cpuSeconds(of: serverPID), load.requests > 0 {
            load.cpuPerRequest = (after - before) * 1e6 / Double(load.requests)
        }
        // wrk (exec'd by nice) is the only child reaped during the run: the growth of the reaped children's CPU time
        // is its own.
        if load.requests > 0 {
            load.clientCPUPerRequest = (childrenCPUSeconds() - client) * 1e6 / Double(load.requests)
        }
        return load
    }

    /// `writeShare` of the requests rate one item for a new user through `writer` (as the mixed HTTP load posts),
    /// the others are recommendations; latencies of both count.
    func inProcessLoad(
        engine: QueryEngine, users: [String], threads: Int, writer: Recommender? = nil, items: [String] = [],
        writeShare: Double = 0
    ) throws -> Load {
        let warm = Date().addingTimeInterval(2)
        while Date() < warm { _ = try engine.recommend(user: users.randomElement()!, n: 10) }
        let acknowledged = Locked(0)
        let latencies = ThreadSlots<[Double]>(count: threads)
        let end = DispatchTime.now().uptimeNanoseconds + UInt64(seconds) * 1_000_000_000
        let start = DispatchTime.now().uptimeNanoseconds
        let cpu = cpuSeconds(of: getpid())
        DispatchQueue.concurrentPerform(iterations: threads) { t in
            var mine: [Double] = []
            var generator = SystemRandomNumberGenerator()
            while DispatchTime.now().uptimeNanoseconds < end {
                let user = users[Int.random(in: 0..<users.count, using: &generator)]
                let writes = writer != nil && !items.isEmpty && Double.random(in: 0..<1, using: &generator) < writeShare
                let t0 = DispatchTime.now().uptimeNanoseconds
                if writes, let writer {
                    let item = items[Int.random(in: 0..<items.count, using: &generator)]
                    let key = "\(ServeBench.postedUserPrefixes.inProcess)\(t)-\(mine.count)-\(t0)"
                    if (try? writer.rate(user: key, item: item, rating: Double(Int.random(in: 1...5)))) != nil {
                        acknowledged.withLock { $0 += 1 }
                    }
                } else {
                    _ = try? engine.recommend(user: user, n: 10)
                }
                mine.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1000)
            }
            latencies.set(t, mine)
        }
        let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        let cpuAfter = cpuSeconds(of: getpid())
        let all = (0..<threads).flatMap { latencies.get($0) }.sorted()
        var load = Load(
            requests: all.count, seconds: elapsed, p50: percentile(all, 0.5), p99: percentile(all, 0.99),
            p999: percentile(all, 0.999), failed: 0)
        load.acknowledged = acknowledged.withLock { $0 }
        if let cpu, let cpuAfter, !all.isEmpty { load.cpuPerRequest = (cpuAfter - cpu) * 1e6 / Double(all.count) }
        return load
    }
}

/// The CPU time (user + system, seconds) of this process's children that have been waited for.
func childrenCPUSeconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_CHILDREN.rawValue, &usage)
    func seconds(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }
    return seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

/// The CPU time (user + system, seconds) a process has used so far, from /proc/PID/stat; nil when unreadable.
func cpuSeconds(of pid: Int32) -> Double? {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
        let close = text.lastIndex(of: ")")
    else { return nil }
    // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15.
    let fields = text[text.index(after: close)...].split(separator: " ")
    guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
    return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
}

/// The server's request-duration histogram (`/metrics`), per "METHOD route": cumulative counts by upper bound
/// ("0.001", …, "+Inf"); empty when it cannot be read.
func handlerHistogram(port: Int) -> [String: [String: Double]] {
    guard let text = httpGet(port: port, path: "/metrics") else { return [:] }
    var out: [String: [String: Double]] = [:]
    for line in text.split(separator: "\n") where line.hasPrefix("mfrec_http_request_duration_seconds_bucket{") {
        func label(_ name: String) -> String? {
            line.split(separator: "\(name)=\"").dropFirst().first?.split(separator: "\"").first.map(String.init)
        }
        guard let route = label("route"), let method = label("method"), let le = label("le"),
            let value = line.split(separator: " ").last.flatMap({ Double($0) })
        else { continue }
        out["\(method) \(route)", default: [:]][le] = value
    }
    return out
}

/// "A% within 1 ms, B% within 2 ms, C% within 5 ms, D% within 10 ms of N requests" from cumulative counts; nil
/// when there are none.
func handlerShares(_ buckets: [String: Double]?) -> String? {
    guard let buckets, let all = buckets["+Inf"], all > 0 else { return nil }
    let share = { (le: String) in fmt(100 * (buckets[le] ?? .nan) / all, 1) }
    return "\(share("0.001"))% within 1 ms, \(share("0.002"))% within 2 ms, \(share("0.005"))% within 5 ms, "
        + "\(share("0.01"))% within 10 ms of \(Int(all)) requests"
}

/// The body of `GET path` on 127.0.0.1:`port` (HTTP/1.0, one connection), or nil when it fails.
func httpGet(port: Int, path: String) -> String? {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
        }
    }
    guard connected == 0 else { return nil }
    let request = Array("GET \(path) HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".utf8)
    guard write(fd, request, request.count) == request.count else { return nil }
    var response: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65_536)
    while true {
        let got = read(fd, &chunk, chunk.count)
        if got <= 0 { break }
        response += chunk[..<got]
    }
    let text = String(decoding: response, as: UTF8.self)
    guard text.hasPrefix("HTTP/1.") && text.contains(" 200 "), let body = text.range(of: "\r\n\r\n") else {
        return nil
    }
    return String(text[body.upperBound...])
}

/// `mfrec serve --port 0` as a child process of the bench.
final class ServeChild {
    let process = Process()
    let port: Int
    /// The server's process id.
    var pid: Int32 { process.processIdentifier }

    init(db: String) throws {
        process.executableURL = URL(fileURLWithPath: mfrecPath)
        process.arguments = ["serve", "--db", db, "--port", "0"]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        var seen = ""
        while !seen.contains("\n") {
            let data = pipe.fileHandleForReading.availableData
            if data.isEmpty { throw BenchError("mfrec serve ended: \(seen)") }
            seen += String(decoding: data, as: UTF8.self)
        }
        guard let address = seen.split(separator: "http://").last?.split(separator: " ").first,
            let port = address.split(separator: ":").last.flatMap({ Int($0) })
        else { throw BenchError("mfrec serve printed no port: \(seen)") }
        self.port = port
    }

    /// The server's peak resident memory so far (VmHWM).
    func peakMegabytes() -> Double {
        guard let text = try? String(contentsOfFile: "/proc/\(process.processIdentifier)/status", encoding: .utf8),
            let line = text.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
            let kb = line.split(separator: " ").dropFirst().first.flatMap({ Double($0) })
        else { return 0 }
        return kb / 1024
    }

    func stop() {
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
    }
}

/// A Hummingbird server in this process answering every recommendation route with the same body: what
/// HTTP alone costs on this machine (the ceiling `mfrec serve` is compared with).
final class FixedBodyServer: @unchecked Sendable {
    private var task: Task<Void, Error>?
    let port: Int

    init(body: Data) throws {
        let router = Router(context: BasicRequestContext.self)
        let bytes = ByteBuffer(bytes: body)
        router.get("/v1/users/{id}/recommendations") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "application/json; charset=utf-8"], body: .init(byteBuffer: bytes))
        }
        let bound = ThreadSlots<Int>(count: 1)
        let ready = DispatchSemaphore(value: 0)
        // Logs nothing: stopping it by task cancellation logs the cancellation as an error. A no-op handler also
        // keeps it from rendering the request id Hummingbird sets on every request's logger, which `mfrec serve`'s
        // own handler does not do either (swift-log's StreamLogHandler would, at about 2.7% of a server's CPU).
        let logger = Logger(label: "ceiling", factory: { _ in SwiftLogNoOpLogHandler() })
        let app = Application(
            router: router, server: .http1(), configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in
                bound.set(0, channel.localAddress?.port ?? 0)
                ready.signal()
            }, logger: logger)
        task = Task { try await app.runService(gracefulShutdownSignals: []) }
        ready.wait()
        port = bound.get(0)
    }

    func stop() {
        task?.cancel()
        task = nil
    }
}

/// The inode number of `path` (0 when it cannot be read): a file replaced by a rename gets a new one.
private func inode(_ path: String) -> UInt64 {
    var info = stat()
    return stat(path, &info) == 0 ? UInt64(info.st_ino) : 0
}
