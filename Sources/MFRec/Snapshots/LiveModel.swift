import Foundation
import MFEngine
import MFStore

/// The live model as queries see it: its snapshot with the incremental overlay applied.
public struct LiveState: Sendable {
    public var snapshot: SnapshotInfo
    public var model: FactorModel
    public var live: Store.LiveModel
}

extension Recommender {
    /// Loads the live model: the live snapshot (checksum verified) plus the rows changed since.
    public func liveState() throws -> LiveState {
        let live = try store.liveModel()
        guard let id = live.snapshotID else { throw QueryError.noModel }
        var (info, model) = try loadModel(snapshot: id)
        try applyOverlay(to: &model)
        return LiveState(snapshot: info, model: model, live: live)
    }

    /// Applies the stored overlay rows (users and items changed or added since the snapshot).
    func applyOverlay(to model: inout FactorModel) throws {
        let users = try store.liveRows(users: true), items = try store.liveRows(users: false)
        guard !users.isEmpty || !items.isEmpty else { return }
        let userCount = max(model.userCount, (users.map(\.id).max() ?? -1) + 1)
        let itemCount = max(model.itemCount, (items.map(\.id).max() ?? -1) + 1)
        model = model.resized(userCount: userCount, itemCount: itemCount)
        for row in users where row.vector.count == model.factors {
            model.userBias[row.id] = row.bias
            for f in 0..<model.factors { model.userFactors[row.id * model.stride + f] = row.vector[f] }
        }
        for row in items where row.vector.count == model.factors {
            model.itemBias[row.id] = row.bias
            for f in 0..<model.factors { model.itemFactors[row.id * model.stride + f] = row.vector[f] }
        }
    }

    /// Rewrites the item matrix file for the live model (temp file + rename). A failure is not an
    /// error of the command that changed the model: the next query rebuilds the file.
    func writeItemMatrix(_ state: LiveState) {
        try? ItemMatrix.write(model: state.model, generation: UInt64(state.live.generation),
                              snapshotID: UInt64(state.snapshot.id), to: itemMatrixPath)
    }

    /// Removes temp files of the item matrix left by a process that was killed while writing one.
    func removeStaleTempFiles() {
        let url = URL(fileURLWithPath: itemMatrixPath)
        let folder = url.deletingLastPathComponent().path
        let prefix = url.lastPathComponent + ".tmp-"
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder.isEmpty ? "." : folder) else { return }
        for name in names where name.hasPrefix(prefix) {
            let pid = name.dropFirst(prefix.count).split(separator: "-").first.flatMap { Int32($0) } ?? 0
            // Keep files whose writer is still running (this process included).
            if pid > 0 && (pid == getpid() || kill(pid, 0) == 0) { continue }
            unlink((folder as NSString).appendingPathComponent(name))
        }
    }
}
