import Foundation
import MFEngine
import MFStore

/// The live model as queries see it: its snapshot with the incremental overlay applied.
public struct LiveState: Sendable {
    /// The live snapshot.
    public var snapshot: SnapshotInfo
    /// Its rating model with the incremental updates applied.
    public var model: FactorModel
    /// The generation and update count the state was read at.
    public var live: Store.LiveModel
    /// The snapshot's ranking model with the incremental updates applied (see `RankingModel.absorb`), and
    /// what validation chose; nil when the snapshot has none.
    public var ranking: (model: RankingModel, choice: RankingChoice)?

    /// The precision of the item matrix's scan copy, as the live snapshot was trained with.
    var precision: ItemPrecision { snapshot.options?.itemPrecision ?? .f32 }

    /// The shape of the ranking section the item matrix holds for this state (`.none` without a ranking model).
    var rankingShape: ItemMatrix.Shape {
        ranking.map { ItemMatrix.Shape(itemCount: $0.model.itemCount, factors: $0.model.factors) } ?? .none
    }
}

extension Recommender {
    /// Rewrites the item matrix file for the live models (temp file + rename). A failure is not an
    /// error of the command that changed the model: the next query rebuilds the file.
    func writeItemMatrix(_ state: LiveState) {
        followLiveModel(generation: state.live.generation) {
            writeItemMatrix(
                model: state.model, ranking: state.ranking?.model, precision: state.precision,
                generation: state.live.generation, snapshotID: state.snapshot.id)
        }
    }

    /// Writes the whole item matrix file of `model` and `ranking` (call inside `followLiveModel`); a failure is
    /// left for the next query to rebuild.
    func writeItemMatrix(
        model: FactorModel, ranking: RankingModel?, precision: ItemPrecision, generation: Int64, snapshotID: Int
    ) {
        try? ItemMatrix.write(
            model: model, ranking: ranking, precision: precision, generation: UInt64(generation),
            snapshotID: UInt64(snapshotID), to: itemMatrixPath)
    }

    /// Runs `write` holding the item matrix lock, only if `generation` is still the committed live one:
    /// a process that committed later writes its own (newer) file, and an older one must not replace it.
    /// - Parameters:
    ///   - generation: the live generation `write` stands for.
    ///   - lockHeld: true inside `updatingItemMatrix`, which holds the lock already.
    ///   - write: the writes to the item matrix file.
    func followLiveModel(generation: Int64, lockHeld: Bool = false, _ write: () -> Void) {
        func follow() {
            guard (try? store.liveGeneration()) == generation else { return }
            write()
        }
        if lockHeld { follow() } else { ItemMatrix.exclusively(path: itemMatrixPath, follow) }
    }

    /// Runs an incremental update — its transaction, then the rows it rewrites in the item matrix file — holding
    /// the item matrix lock from before the commit until the file carries the new generation. A query that reads
    /// the new generation from the database and then gets the lock so finds the file stamped, and one that finds
    /// the file behind the database with the lock free knows that no writer is about to stamp it (one was killed
    /// in between) and rebuilds it. (Committing first let a query take the lock in that gap and rewrite the whole
    /// file — fsync and all, on a server's event loop — and the writer then rewrite it again.)
    /// The lock is waited for as long as the database's own (`setLockWait`), then the update fails busy.
    /// - Parameter body: the update.
    /// - Returns: what `body` returns.
    /// - Throws: what `body` throws; `StoreError` (`isBusy`) when another writer kept the lock past the wait.
    func updatingItemMatrix<R>(_ body: () throws -> R) throws -> R {
        let wait = Double(store.lockWait) / 1000
        guard let result = try ItemMatrix.exclusively(path: itemMatrixPath, waitingAtMost: wait, body) else {
            throw StoreError.busy("another writer held the item matrix lock (\(itemMatrixPath).lock) past the wait")
        }
        return result
    }

    /// Removes temp files of the item matrix left by a process that was killed while writing one.
    func removeStaleTempFiles() {
        let url = URL(fileURLWithPath: itemMatrixPath)
        let folder = url.deletingLastPathComponent().path
        let prefix = url.lastPathComponent + ".tmp-"
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder.isEmpty ? "." : folder) else {
            return
        }
        for name in names where name.hasPrefix(prefix) {
            let pid = name.dropFirst(prefix.count).split(separator: "-").first.flatMap { Int32($0) } ?? 0
            // Keep files whose writer is still running (this process included).
            if pid > 0 && (pid == getpid() || kill(pid, 0) == 0) { continue }
            unlink((folder as NSString).appendingPathComponent(name))
        }
    }
}
