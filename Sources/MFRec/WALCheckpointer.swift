import Foundation

/// Moves the write-ahead log into the database file from a thread and a connection of its own, so that no
/// write of its `Recommender` pays for a checkpoint.
///
/// Why: with SQLite's automatic checkpoint, the commit that pushes the log past 1,000 pages copies the
/// whole log into the database file and syncs it. One `rate` in a few hundred paid for that: on the 25M
/// model, p99 25 ms against p50 1 ms (`mfrec-bench incremental --large-ratings`). The owner's connection
/// has automatic checkpoints off instead, and this thread checkpoints once a second in SQLite's PASSIVE mode
/// (copying what it can without waiting for anyone). Under continuous writes a passive checkpoint never
/// catches up with the end of the log, so the log would grow without bound (371 MB in 10 s of rating posts
/// to `mfrec serve`): once it passes `restartBytes`, RESTART finishes the job and the log starts over
/// (writes wait for that, some tens of milliseconds, once per `restartBytes` of log).
///
/// The connection is opened at the first tick, not at start: a short-lived process (one `mfrec rate`) exits
/// before it, and its closing connection checkpoints as SQLite does for the last connection of a file.
///
/// Invariant (why `@unchecked Sendable` is sound): `store` is used only by the checkpointer's own thread and
/// released before `done` is signalled; `stopped` is behind a lock; `working` is held while a checkpoint
/// runs, so that `pausing` excludes one.
final class WALCheckpointer: @unchecked Sendable {
    private let stopped = Locked(false)
    private let wake = DispatchSemaphore(value: 0)
    private let done = DispatchSemaphore(value: 0)
    private let working = NSLock()
    /// RESTART checkpoints run so far (for tests).
    let restarts = Locked(0)

    /// Starts the thread.
    /// - Parameters:
    ///   - path: the database file (it must exist; a failure to open it is retried at the next tick).
    ///   - interval: seconds between checkpoints.
    ///   - restartBytes: the log size past which a RESTART checkpoint follows the passive one.
    init(path: String, every interval: TimeInterval = 1, restartBytes: Int = 64 << 20) {
        let thread = Thread { [self] in
            var store: Store?
            var restarted = 0  // the log's length at the last RESTART
            while true {
                _ = wake.wait(timeout: .now() + interval)
                if stopped.withLock({ $0 }) { break }
                working.lock()
                if store == nil { store = try? Store(path: path, mode: .write) }
                if let store {
                    // The log's own length, not the file's: the file keeps its largest size after the log starts
                    // over, and measuring it made every tick after one burst a RESTART (writes waiting each second).
                    // A log RESTART left is only started over by the next write: until then it reads as long as before,
                    // and restarting it again would only make writers wait.
                    if let length = try? store.checkpointWithoutWaiting(), length > restartBytes, length != restarted {
                        try? store.checkpointAndRestartLog()
                        restarted = length
                        restarts.withLock { $0 += 1 }
                    }
                }
                working.unlock()
            }
            store = nil
            done.signal()
        }
        thread.name = "mfrec-checkpoint"
        thread.start()
    }

    /// Runs `body` while no checkpoint of this thread runs (a caller's own checkpoint, which SQLite would
    /// refuse as busy while another connection checkpoints).
    /// - Parameter body: the work.
    /// - Returns: what `body` returns.
    /// - Throws: what `body` throws.
    func pausing<R>(_ body: () throws -> R) rethrows -> R {
        working.lock()
        defer { working.unlock() }
        return try body()
    }

    /// Stops the thread at once (a checkpoint under way finishes first), waits for it and closes its connection.
    func stop() {
        stopped.withLock { $0 = true }
        wake.signal()
        done.wait()
    }
}
