import Foundation
import Hummingbird
import Logging
import MFRec
import NIOCore
import NIOPosix

/// `mfrec serve`: the library's queries and updates over HTTP (JSON under `/v1`, Prometheus text at
/// `/metrics`), from the same database file the command line uses.
///
/// One `Recommender` (its read-write connection) takes the writes; one `QueryEngine` (read-only
/// connections of its own, the mapped item matrix) answers the reads and follows the live model, so a
/// `mfrec train` or `rollback` run in a shell is picked up by the next request. A write is committed
/// (WAL, `synchronous=NORMAL`) before its response is sent; on SIGTERM or SIGINT the server stops
/// accepting, lets in-flight requests finish and exits.
public struct RecommendationServer: Sendable {
    /// The database file.
    public let path: String
    /// Address, token, limits.
    public let configuration: ServerConfiguration
    let recommender: Recommender
    let engine: QueryEngine

    /// Opens the database (it must exist: `mfrec ingest` creates it) and checks the configuration.
    /// - Throws: `ServerError.configuration`, or the library's errors opening the database.
    /// - Parameters:
    ///   - path: the database file.
    ///   - configuration: address, token and limits (validated here).
    public init(path: String, configuration: ServerConfiguration) throws {
        try configuration.validate()
        self.path = path
        self.configuration = configuration
        recommender = try Recommender(path: path, mode: .write)
        recommender.setLockWait(milliseconds: configuration.writeWaitMilliseconds)
        engine = try recommender.queries()
        // Loaded now rather than by the first rating post (which would hold up the posts behind it).
        try recommender.prepareForUpdates()
    }

    /// Makes NIO's event loops (the threads that read and write the sockets) also run Swift concurrency's jobs,
    /// so a request's handler runs on the thread that read it instead of hopping to the cooperative pool and
    /// back. Process-wide: call it first thing in a process whose main work is serving, before any task starts.
    /// - Returns: whether it took effect (false once any task has run).
    @discardableResult
    public static func runTasksOnEventLoops() -> Bool {
        NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
    }

    /// Serves until SIGTERM or SIGINT (graceful: in-flight requests finish first).
    /// - Parameter onListening: called once with the bound address and port (port 0 picks a free one).
    /// - Throws: when the address cannot be bound, or the service group fails.
    public func run(onListening: @escaping @Sendable (_ host: String, _ port: Int) -> Void = { _, _ in }) async throws {
        try await application(onListening: onListening).runService(gracefulShutdownSignals: [.sigterm, .sigint])
    }

    func application(onListening: @escaping @Sendable (String, Int) -> Void) -> some ApplicationProtocol {
        let metrics = ServerMetrics()
        let router = Router(context: BasicRequestContext.self)
        // Outermost first: every answer is counted, and every error becomes the API's JSON error.
        router.add(middleware: MetricsMiddleware(metrics: metrics))
        if let token = configuration.token {
            router.add(middleware: TokenMiddleware(token: Array(token.utf8), publicReads: configuration.publicReads))
        }
        Routes(recommender: recommender, engine: engine, configuration: configuration, metrics: metrics)
            .register(on: router)
        let logger = Logger(label: "mfrec.serve") { _ in ServerLogHandler(level: .warning) }
        let host = configuration.host
        return Application(
            router: router,
            server: .http1(configuration: .init(idleTimeout: .seconds(Int64(configuration.idleTimeoutSeconds)))),
            configuration: .init(address: .hostname(host, port: configuration.port), serverName: "mfrec"),
            onServerRunning: { channel in
                onListening(host, channel.localAddress?.port ?? 0)
            },
            logger: logger)
    }
}
