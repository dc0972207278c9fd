import Foundation
import MFRec

/// Moves the write-ahead log into the database file once a second, from a connection of its own, in
/// SQLite's PASSIVE mode (copying what it can without waiting for anyone). Under continuous writes a
/// passive checkpoint never catches up with the end of the log, so the log would grow without bound (371 MB
/// in 10 s of rating posts): once it passes `restartBytes`, RESTART finishes the job and the log starts
/// over (writes wait for that, some tens of milliseconds, once per `restartBytes` of log). The server's write connection has automatic checkpoints off: left
/// on, every thousandth page written made one request pay for a whole checkpoint and its fsync (rating
/// posts on one connection: p99 20–25 ms against p50 1.2 ms on this machine). PASSIVE alone let the log
/// grow without bound under continuous writes (371 MB in 10 s).
///
/// Invariant (why `@unchecked Sendable` is sound): `store` is used only by the checkpointer's own thread;
/// `stopped` is behind a lock.
final class Checkpointer: @unchecked Sendable {
    private let store: Store
    private let stopped = Locked(false)
    private let done = DispatchSemaphore(value: 0)

    /// Opens the connection and starts the thread.
    init(path: String, every interval: TimeInterval = 1, restartBytes: Int = 64 << 20) throws {
        store = try Store(path: path, mode: .write)
        let log = path + "-wal"
        let thread = Thread { [self] in
            while !stopped.withLock({ $0 }) {
                Thread.sleep(forTimeInterval: interval)
                try? store.checkpointWithoutWaiting()
                let size = (try? FileManager.default.attributesOfItem(atPath: log)[.size] as? NSNumber)?.intValue ?? 0
                if size > restartBytes { try? store.checkpointAndRestartLog() }
            }
            done.signal()
        }
        thread.name = "mfrec-checkpoint"
        thread.start()
    }

    /// Stops the thread (after its current sleep) and waits for it.
    func stop() {
        stopped.withLock { $0 = true }
        done.wait()
    }
}
