import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import TestFixtures

/// The real `mfrec serve` binary on a free loopback port, started for one test.
final class ServerProcess: @unchecked Sendable {
    let process = Process()
    let port: Int
    let log: URL
    var base: String { "http://127.0.0.1:\(port)" }

    /// Starts `mfrec serve --db db --port 0 extra...` and waits (up to 30 s) for its "listening on" line.
    init(db: String, extra: [String] = [], in dir: URL) throws {
        process.executableURL = URL(fileURLWithPath: mfrecBinary)
        process.arguments = ["serve", "--db", db, "--port", "0"] + extra
        var env = ProcessInfo.processInfo.environment
        env.removeValue(forKey: "MFREC_DB")
        process.environment = env
        log = dir.appendingPathComponent("serve-\(UUID().uuidString).log")
        FileManager.default.createFile(atPath: log.path, contents: nil)
        let out = Pipe()
        process.standardOutput = out
        process.standardError = try FileHandle(forWritingTo: log)
        try process.run()
        // A server that never reports is ended after 30 s (reading its stdout would block forever).
        let started = ThreadBox<Bool>()
        DispatchQueue.global().asyncAfter(deadline: .now() + 30) { [process] in
            if started.value != true && process.isRunning { process.terminate() }
        }
        let deadline = Date().addingTimeInterval(30)
        var seen = ""
        var found: Int?
        while found == nil && Date() < deadline && process.isRunning {
            let data = out.fileHandleForReading.availableData
            if data.isEmpty { break }
            seen += String(decoding: data, as: UTF8.self)
            // "mfrec serve: listening on http://HOST:PORT (database ...)"
            if let line = seen.split(separator: "\n").first(where: { $0.contains("listening on http://") }),
                let address = line.split(separator: "http://").last?.split(separator: " ").first,
                let port = address.split(separator: ":").last.flatMap({ Int($0) })
            {
                found = port
            }
        }
        guard let found else {
            if process.isRunning { process.terminate() }
            process.waitUntilExit()
            let stderr = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
            throw ServerDidNotStart(output: seen + stderr)
        }
        port = found
        started.value = true
        // Keep draining stdout so the server never blocks on a full pipe.
        Thread {
            while !out.fileHandleForReading.availableData.isEmpty {}
        }.start()
    }

    /// Ends the server (SIGTERM unless told otherwise) and returns its exit status.
    @discardableResult
    func stop(signal: Int32 = SIGTERM) -> (status: Int32, reason: Process.TerminationReason) {
        if process.isRunning { kill(process.processIdentifier, signal) }
        process.waitUntilExit()
        return (process.terminationStatus, process.terminationReason)
    }

    deinit {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }
}

struct ServerDidNotStart: Error, CustomStringConvertible {
    let output: String
    var description: String { "mfrec serve did not report a port: \(output)" }
}

/// An HTTP answer: status, headers and the body as text and as JSON (when it is JSON).
struct Answer {
    let status: Int
    let headers: HTTPHeaders
    let text: String
    var json: [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] ?? [:]
    }
    /// The `error.code` of a JSON error body.
    var errorCode: String? { (json["error"] as? [String: Any])?["code"] as? String }
    /// The `items` array's item ids, in order.
    var itemIDs: [String] { (json["items"] as? [[String: Any]] ?? []).compactMap { $0["item"] as? String } }
}

/// One client per test; every call has a 30 s bound.
struct API {
    let client: HTTPClient
    let base: String

    func call(_ method: HTTPMethod, _ path: String, body: String? = nil, token: String? = nil) async throws -> Answer {
        var request = HTTPClientRequest(url: base + path)
        request.method = method
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: body))
        }
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        let response = try await client.execute(request, timeout: .seconds(30))
        let buffer = try await response.body.collect(upTo: 64 << 20)
        return Answer(status: Int(response.status.code), headers: response.headers, text: String(buffer: buffer))
    }

    func get(_ path: String, token: String? = nil) async throws -> Answer {
        try await call(.GET, path, token: token)
    }

    func post(_ path: String, _ body: String? = nil, token: String? = nil) async throws -> Answer {
        try await call(.POST, path, body: body, token: token)
    }
}

/// Runs `body` with a client, shutting it down afterwards whatever happens.
func withClient<T>(_ base: String, _ body: (API) async throws -> T) async throws -> T {
    let client = HTTPClient(eventLoopGroupProvider: .singleton)
    do {
        let result = try await body(API(client: client, base: base))
        try await client.shutdown()
        return result
    } catch {
        try? await client.shutdown()
        throw error
    }
}
