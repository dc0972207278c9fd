import Foundation
import MFEngine
import MFStore

/// A small pool of read-only connections to one database, for `QueryEngine`: concurrent queries each
/// take a connection of their own instead of waiting for one. WAL lets them read while a writer commits.
///
/// Invariant: a `Store` is either idle in the pool (guarded by `idle`'s lock) or checked out by exactly
/// one caller of `withConnection`, which is the only code that touches it until it is returned.
final class ReadPool: Sendable {
    let path: String
    private let idle = Locked<[Store]>([])
    /// Connections kept idle at most (more may be open while many queries run at once).
    static let maxIdle = 4

    /// Opens the first connection, so that a database that cannot be opened fails here.
    init(path: String) throws {
        self.path = path
        let first = try Store(path: path, readOnly: true)
        idle.withLock { $0.append(first) }
    }

    /// Runs `body` with a connection of its own (opening one when none is idle).
    func withConnection<R>(_ body: (Store) throws -> R) throws -> R {
        let store = try idle.withLock { $0.popLast() } ?? Store(path: path, readOnly: true)
        defer { idle.withLock { if $0.count < ReadPool.maxIdle { $0.append(store) } } }
        return try body(store)
    }

    /// Runs `body` in a read transaction on a connection of its own: its reads see one committed state.
    func read<R>(_ body: (Store) throws -> R) throws -> R {
        try withConnection { store in try store.read { try body(store) } }
    }
}
