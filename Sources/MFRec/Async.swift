import Foundation
import MFEngine

/// `async` entry points for the long operations. Each runs on a thread of its own (never blocking Swift
/// concurrency's cooperative pool) and follows the calling task: cancelling the task stops the work at
/// its next check (every 4,096 lines of an ingest; every training stratum, tuning setting and stage of a
/// train) and throws `CancellationError`, with the database exactly as it was.
extension Recommender {
    /// Streams a ratings file into the database; see `ingest(path:options:progress:)`.
    /// - Parameters:
    ///   - path: the ratings file.
    ///   - options: format, item file, scale and error handling.
    ///   - progress: called with bytes read and the file's size.
    /// - Returns: what was stored.
    /// - Throws: `CancellationError` when the task is cancelled (nothing is stored); `MFRecError` for bad input.
    @discardableResult
    public func ingest(path: String, options: IngestOptions = IngestOptions(), progress: ProgressHandler? = nil)
        async throws
        -> IngestReport
    {
        try await runCancellable { isCancelled in
            try self.ingest(path: path, options: options, progress: progress, isCancelled: isCancelled)
        }
    }

    /// Trains, saves a snapshot and makes it live; see `train(_:progress:isCancelled:rankingProgress:ratingProgress:)`.
    /// - Parameters:
    ///   - request: what to train.
    ///   - progress: called after every epoch with the run index, its k and the epoch's figures.
    /// - Returns: the runs, the kept model and the snapshot it was saved as.
    /// - Throws: `CancellationError` when the task is cancelled (nothing is saved); `EngineError` otherwise.
    @discardableResult
    public func train(_ request: TrainRequest, progress: (@Sendable (Int, Int, EpochStats) -> Void)? = nil) async throws
        -> TrainOutcome
    {
        try await runCancellable { isCancelled in
            try self.train(request, progress: progress.map { p in { p($0, $1, $2) } }, isCancelled: isCancelled)
        }
    }
}

extension QueryEngine {
    /// Writes every user's top-n to a CSV file; see `recommendAll(n:to:batch:threads:cooccurrenceBelow:by:progress:)`.
    /// - Returns: the number of users written.
    /// - Throws: `CancellationError` when the task is cancelled (the file is not created).
    /// - Parameters:
    ///   - n: items per user.
    ///   - path: the CSV file (`-` for standard output).
    ///   - ranker: the ranker; nil for the rule validation chose.
    ///   - progress: called with users done and users in all.
    @discardableResult
    public func recommendAll(n: Int, to path: String, by ranker: Ranker? = nil, progress: ProgressHandler? = nil)
        async throws
        -> Int
    {
        try await runCancellable { isCancelled in
            try self.recommendAll(n: n, to: path, by: ranker, progress: progress, isCancelled: isCancelled)
        }
    }
}

/// Runs `body` on a new thread and waits for it without blocking a cooperative thread. `body` gets a
/// check that turns true once the calling task is cancelled; if it then throws, the error is
/// `CancellationError`.
func runCancellable<R: Sendable>(
    _ body: @escaping @Sendable (_ isCancelled: @escaping @Sendable () -> Bool) throws -> R
)
    async throws -> R
{
    try Task.checkCancellation()
    let cancelled = Locked(false)
    let isCancelled: @Sendable () -> Bool = { cancelled.withLock { $0 } }
    return try await withTaskCancellationHandler {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<R, Error>) in
            let thread = Thread {
                do {
                    continuation.resume(returning: try body(isCancelled))
                } catch {
                    continuation.resume(throwing: isCancelled() ? CancellationError() : error)
                }
            }
            thread.stackSize = 16 << 20
            thread.start()
        }
    } onCancel: {
        cancelled.withLock { $0 = true }
    }
}
