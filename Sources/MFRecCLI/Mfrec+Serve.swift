import ArgumentParser
import Dispatch
import Foundation
import MFRec
import MFRecServer

extension Mfrec {
    struct Serve: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Answer recommendations and take ratings over HTTP (JSON under /v1).",
            discussion: """
                Serves the database's live model: GET /v1/users/ID/recommendations, /v1/items/ID/similar, \
                /v1/predict, /v1/snapshots, /v1/info, /healthz, /metrics (Prometheus); POST /v1/ratings (stored, \
                applied to the live model and committed before the answer), /v1/snapshots, /v1/rollback/ID. \
                Changes made by other mfrec processes (train, rollback, rate) are picked up by the next request. \
                Binds 127.0.0.1 unless --host says otherwise; a non-loopback address needs --token-file. SIGTERM \
                or SIGINT stop it gracefully: requests in flight finish first. The API is described in \
                Sources/MFRecServer/openapi.yaml.
                """)

        @OptionGroup var database: DatabaseOptions
        @Option(help: "The address to listen on (127.0.0.1: this machine only).") var host = "127.0.0.1"
        @Option(help: "The TCP port (0…65535; 0 picks a free one, printed at start).") var port = 8080
        @Option(
            help: ArgumentHelp(
                "A file holding the bearer token (16+ characters) that POST routes, and GET routes unless "
                    + "--public-reads, require.", valueName: "path"))
        var tokenFile: String?
        @Flag(help: "With --token-file: GET routes answer without the token.") var publicReads = false
        @Option(help: "The largest request body, in bytes (1024…1073741824).") var maxBodyBytes = 1 << 20
        @Option(help: "The most ratings one POST /v1/ratings may carry (1…1000000).") var maxBatch = 10_000
        @Option(
            help: "How long a write waits for another process's database lock before answering 503, in ms (0…600000)."
        )
        var writeWaitMs = 2_000
        @Option(help: "Close a connection idle this many seconds (1…3600).") var idleTimeout = 30

        /// The server's settings from the options (`token`: the token file's content, read at start).
        func settings(token: String?) -> ServerConfiguration {
            var settings = ServerConfiguration()
            settings.host = host
            settings.port = port
            settings.token = token
            settings.publicReads = publicReads
            settings.maxBodyBytes = maxBodyBytes
            settings.maxBatch = maxBatch
            settings.writeWaitMilliseconds = writeWaitMs
            settings.idleTimeoutSeconds = idleTimeout
            return settings
        }

        func validate() throws {
            // The server's own rules; the token file is read at start, so here it only has to be given.
            do {
                try settings(token: tokenFile.map { _ in "" }).validate()
            } catch let error as ServerError {
                throw ValidationError(error.description)
            }
        }

        func run() throws {
            // Before any task: request handlers then run on the event loop that read the request.
            RecommendationServer.runTasksOnEventLoops()
            let settings = settings(token: try tokenFile.map { try ServerConfiguration.readToken(path: $0) })
            let server = try RecommendationServer(path: database.db, configuration: settings)
            Signals.handOverToServer()
            let outcome = HandOff<Result<Void, Error>>()
            let done = DispatchSemaphore(value: 0)
            Task {
                do {
                    try await server.run { host, port in
                        // Scripts and tests read the port from this line (with --port 0 it is the free one).
                        print("mfrec serve: listening on http://\(host):\(port) (database \(server.path))")
                        fflush(nil)
                    }
                    outcome.value = .success(())
                } catch {
                    outcome.value = .failure(error)
                }
                done.signal()
            }
            done.wait()
            try outcome.value?.get()
        }
    }
}

/// A value handed from a task to the thread waiting for it (written once, read after the semaphore).
final class HandOff<Value>: @unchecked Sendable {
    var value: Value?
}
