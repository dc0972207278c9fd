import Foundation

/// How `mfrec serve` listens and whom it answers.
public struct ServerConfiguration: Sendable {
    /// The address to bind (127.0.0.1 by default: only this machine).
    public var host = "127.0.0.1"
    /// The TCP port; 0 picks a free one (the server reports it once listening).
    public var port = 8080
    /// The bearer token that write routes (`POST`) require, and read routes too unless `publicReads`.
    /// Nil: no token, which is allowed only on a loopback address.
    public var token: String?
    /// With a token: read routes (`GET`) answer without it.
    public var publicReads = false
    /// The largest request body accepted (larger ones get 413).
    public var maxBodyBytes = 1 << 20
    /// The most ratings one `POST /v1/ratings` may carry.
    public var maxBatch = 10_000
    /// How long a write waits for another process's lock on the database before answering 503.
    public var writeWaitMilliseconds = 2_000
    /// A connection idle this long (no request, or a request that stalls) is closed.
    public var idleTimeoutSeconds = 30

    /// The defaults: 127.0.0.1:8080, no token.
    public init() {}

    /// Whether `host` is a loopback address (127.0.0.0/8, ::1 or localhost).
    /// - Parameter host: an address or host name.
    /// - Returns: true for a loopback address.
    public static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host == "::1" || host == "[::1]" || host.hasPrefix("127.")
    }

    /// Refuses settings out of range, and those that would expose the database (a non-loopback address
    /// without a token). `mfrec serve` checks its options with this one rule set (exit 64).
    /// - Throws: `ServerError.configuration` naming the `mfrec serve` option.
    public func validate() throws {
        func within(_ value: Int, _ range: ClosedRange<Int>, _ option: String) throws {
            guard range.contains(value) else {
                throw ServerError.configuration(
                    "\(option) must be \(range.lowerBound)…\(range.upperBound) (got \(value))")
            }
        }
        try within(port, 0...65_535, "--port")
        try within(maxBodyBytes, 1024...(1 << 30), "--max-body-bytes")
        try within(maxBatch, 1...1_000_000, "--max-batch")
        try within(writeWaitMilliseconds, 0...600_000, "--write-wait-ms")
        try within(idleTimeoutSeconds, 1...3_600, "--idle-timeout")
        guard !host.isEmpty else { throw ServerError.configuration("--host must name an address") }
        if !ServerConfiguration.isLoopback(host) && token == nil {
            throw ServerError.configuration(
                "--host \(host) is not a loopback address: give --token-file, or every write route would be open "
                    + "to the network")
        }
        if publicReads && token == nil {
            throw ServerError.configuration("--public-reads needs --token-file")
        }
    }

    /// The token in `path`: its content without surrounding white space.
    /// - Throws: `ServerError.configuration` when the file cannot be read or holds no token.
    /// - Parameter path: the token file.
    /// - Returns: the token.
    public static func readToken(path: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ServerError.configuration("cannot read the token file \(path)")
        }
        let token = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard token.count >= 16 else {
            throw ServerError.configuration("the token in \(path) is shorter than 16 characters")
        }
        guard !token.contains(where: { $0.isWhitespace || $0.isNewline }) else {
            throw ServerError.configuration("the token in \(path) is more than one line or word")
        }
        return token
    }
}

/// Errors of starting the server.
public enum ServerError: Error, CustomStringConvertible, Sendable {
    /// A setting that cannot be used (the message says which and why).
    case configuration(String)

    /// The message `mfrec serve` prints.
    public var description: String {
        switch self {
        case .configuration(let why): return why
        }
    }
}
