import Foundation
import Logging

/// The server's log handler: one line per message on standard error, `mfrec serve: LEVEL: message` and the
/// metadata. Unlike swift-log's `StreamLogHandler`, setting metadata does not render it: Hummingbird sets a
/// request id on every request's logger, and rendering it each time cost about 2.7% of the server's CPU
/// under load (perf, `mfrec-bench serve`), while messages at the server's level (warnings) are rare.
struct ServerLogHandler: LogHandler {
    var logLevel: Logger.Level
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?

    /// A handler that writes messages at `level` and above.
    init(level: Logger.Level) { self.logLevel = level }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var all = metadata
        if let provided = metadataProvider?.get() { all.merge(provided) { _, new in new } }
        if let extra = event.metadata { all.merge(extra) { _, new in new } }
        let rendered =
            all.isEmpty
            ? "" : " " + all.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        FileHandle.standardError.write(Data("mfrec serve: \(event.level): \(event.message)\(rendered)\n".utf8))
    }
}
