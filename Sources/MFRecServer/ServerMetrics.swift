import Foundation
import Hummingbird
import MFRec
import Prometheus

/// What `GET /metrics` reports, in Prometheus' text format: request counts and latency histograms per
/// route, method and status, and the live model's generation and updates (set when scraped).
final class ServerMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    static let buckets: [Duration] = [
        .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2),
        .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(100), .milliseconds(500), .seconds(2),
    ]

    static var requests: MetricNameDescriptor {
        MetricNameDescriptor(
            namespace: "mfrec", subsystem: "http", metricName: "requests", unitName: "total",
            helpText: "HTTP requests answered, by route, method and status")
    }
    static var latency: MetricNameDescriptor {
        MetricNameDescriptor(
            namespace: "mfrec", subsystem: "http", metricName: "request_duration", unitName: "seconds",
            helpText: "Time from request to response, by route and method")
    }
    static var generation: MetricNameDescriptor {
        MetricNameDescriptor(
            namespace: "mfrec", subsystem: "model", metricName: "generation", unitName: "",
            helpText: "Generation of the live model (it moves on every change)")
    }
    static var updates: MetricNameDescriptor {
        MetricNameDescriptor(
            namespace: "mfrec", subsystem: "model", metricName: "ratings_applied_since_snapshot", unitName: "",
            helpText: "Ratings applied incrementally since the live snapshot")
    }
    static var snapshot: MetricNameDescriptor {
        MetricNameDescriptor(
            namespace: "mfrec", subsystem: "model", metricName: "live_snapshot", unitName: "",
            helpText: "Id of the live snapshot (0: none)")
    }

    /// The counter and histogram of each route, method and status, made once: asking the registry for them on
    /// every request (descriptor strings, label arrays, its lock) cost about 1.6% of the server's CPU under load.
    private let series = Locked<[Series: (requests: Counter, latency: DurationHistogram)]>([:])

    /// The labels of one request's metrics.
    private struct Series: Hashable {
        let route: String
        let method: String
        let status: Int
    }

    func record(route: String, method: String, status: Int, nanoseconds: Int64) {
        let key = Series(route: route, method: method, status: status)
        let metrics =
            series.withLock { $0[key] }
            ?? series.withLock { series in
                if let made = series[key] { return made }
                let made = (
                    requests: registry.makeCounter(
                        descriptor: ServerMetrics.requests,
                        labels: [("route", route), ("method", method), ("status", String(status))]),
                    latency: registry.makeDurationHistogram(
                        descriptor: ServerMetrics.latency, labels: [("route", route), ("method", method)],
                        buckets: ServerMetrics.buckets)
                )
                series[key] = made
                return made
            }
        metrics.requests.increment()
        metrics.latency.recordNanoseconds(nanoseconds)
    }

    /// The exposition text, with the model gauges set from the live model's state first.
    func exposition(generation: Int64, updatesSinceSnapshot: Int, snapshot: Int?) -> String {
        registry.makeGauge(descriptor: ServerMetrics.generation).set(to: Double(generation))
        registry.makeGauge(descriptor: ServerMetrics.updates).set(to: Double(updatesSinceSnapshot))
        registry.makeGauge(descriptor: ServerMetrics.snapshot).set(to: Double(snapshot ?? 0))
        return registry.emitToString()
    }
}

/// Counts and times every request under the route's template (`/v1/users/{id}/recommendations`), so
/// the label set stays bounded whatever ids clients send.
struct MetricsMiddleware<Context: RequestContext>: RouterMiddleware {
    let metrics: ServerMetrics

    func handle(_ input: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        let start = DispatchTime.now().uptimeNanoseconds
        let response: Response
        do {
            response = try await next(input, context)
        } catch {
            var answer = APIError.from(error)
            if answer.status == .notFound && answer.code == "no_route" {
                let methods = Routes.methods(forPath: input.uri.path)
                if !methods.isEmpty {
                    answer = APIError(
                        .methodNotAllowed, "method_not_allowed",
                        "\(input.method.rawValue) is not allowed here; use \(methods.joined(separator: " or "))")
                    answer.allow = methods
                }
            }
            response = try answer.response(from: input, context: context)
        }
        metrics.record(
            route: context.endpointPath ?? "unmatched", method: input.method.rawValue, status: response.status.code,
            nanoseconds: Int64(DispatchTime.now().uptimeNanoseconds - start))
        return response
    }
}

/// Bearer-token checks: write routes (`POST`) need the token whenever one is set; read routes too,
/// unless reads are public. `/healthz` is always open. The comparison takes the same time wherever the
/// first differing byte is.
struct TokenMiddleware<Context: RequestContext>: RouterMiddleware {
    let token: [UInt8]
    let publicReads: Bool

    func handle(_ input: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        let isRead = input.method == .get || input.method == .head
        if input.uri.path == "/healthz" || (isRead && publicReads) { return try await next(input, context) }
        guard let header = input.headers[.authorization], header.hasPrefix("Bearer ") else {
            throw APIError(.unauthorized, "unauthorized", "this route needs `Authorization: Bearer <token>`")
        }
        guard TokenMiddleware.equalInConstantTime(Array(header.utf8.dropFirst(7)), token) else {
            throw APIError(.unauthorized, "unauthorized", "the bearer token is not the server's")
        }
        return try await next(input, context)
    }

    static func equalInConstantTime(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var difference = UInt8(truncatingIfNeeded: a.count ^ b.count)
        for i in 0..<b.count { difference |= (i < a.count ? a[i] : 0) ^ b[i] }
        return difference == 0 && a.count == b.count
    }
}
