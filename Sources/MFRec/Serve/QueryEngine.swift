import Foundation
import MFEngine
import MFStore

/// Answers queries against the live model: top-n, predictions, similar items.
///
/// Opened once, it maps the item matrix file (rebuilding it from the live snapshot when it is missing,
/// stale or corrupt) and holds the user factors in memory. It is safe to use from many threads at once:
/// the mapping is read-only, database look-ups take a read-only connection of their own from a small
/// pool (`ReadPool`), and the live state and the caches are each behind a lock (`Locked`).
///
/// The query methods live in `QueryEngine+Recommend.swift` (top-n), `QueryEngine+Lookups.swift`
/// (predict, similar), `QueryEngine+Explain.swift` (reasons, the popular fallback) and
/// `BatchRecommend.swift` (every user's list).
public final class QueryEngine: Sendable {
    let pool: ReadPool
    /// The item matrix file this engine maps.
    public let itemMatrixPath: String
    /// The live model and its mapped item matrix, replaced together when the live model changes.
    private let live: Locked<Live>

    /// What `live` holds.
    struct Live {
        var state: LiveState
        var mapped: ItemMatrix
        /// The state `state` replaced, when that was an incremental reload of the same snapshot: the next such
        /// reload patches it in place with the rows written since its generation, once the queries that held
        /// it are done, instead of copying the whole current model to patch (two models in memory instead of
        /// a model-sized copy per rating).
        var spare: LiveState?
        /// Set when a query saw the mapped rows change under it: the mapping must be checked again.
        var forceReload = false
        /// A query is loading the new live model; the others answer from this one meanwhile.
        var reloading = false
        /// Loads finished (or given up), for the queries that wait for one (see `loaded`).
        var loads = 0
    }
    /// Signalled when a load ends, for the queries that cannot answer from the old model meanwhile (its rows were
    /// rewritten in place): they sleep until then rather than poll (on a server, each of them holds an event loop).
    private let loaded = NSCondition()
    /// What the engine read once and keeps while the live snapshot (or the stored version) is the same.
    let caches = Locked(Caches())
    /// Whether the item matrix file had to be (re)built when this engine was opened.
    public let rebuiltMatrix: Bool

    /// Per-snapshot caches (see `popularList`, `cooccurrence`, `item`).
    struct Caches {
        /// Item keys and titles already looked up (they never change for an id).
        var items: [Int: Store.ItemInfo] = [:]
        /// The popular list, with the live snapshot and base generation it was read for (a forget rewrites the
        /// list without changing the snapshot, and moves the base generation).
        var popular: (key: [Int64], value: [PopularItem])?
        /// The co-occurrence embedding, with the stored version it was read at.
        var embedding: (key: Int64, value: CooccurrenceEmbedding?)?
        /// Ratings per item (for `ItemFilter.minRatings`), with the live generation they were counted at.
        var itemRatingCounts: (key: Int64, value: [Int32])?
        /// Forgotten items, with the live model's base generation they were read at (a forget moves it).
        var forgotten: (key: Int64, value: [Int32])?
    }

    /// The value cached in `slot` when it was read for `key`; otherwise `load()`, cached for `key`.
    func cached<Key: Equatable, Value>(
        _ slot: WritableKeyPath<Caches, (key: Key, value: Value)?>, key: Key, load: () throws -> Value
    ) rethrows -> Value {
        if let entry = caches.withLock({ $0[keyPath: slot] }), entry.key == key { return entry.value }
        let value = try load()
        caches.withLock { $0[keyPath: slot] = (key, value) }
        return value
    }

    init(path: String, itemMatrixPath: String) throws {
        pool = try ReadPool(path: path)
        self.itemMatrixPath = itemMatrixPath
        // A writer may move the live model between reading it and mapping its file: read again then.
        var attempt = 0
        while true {
            let state = try pool.read { try ModelReader(store: $0).liveState() }
            do {
                let (mapped, rebuilt) = try QueryEngine.openMatrix(path: itemMatrixPath, state: state)
                live = Locked(Live(state: state, mapped: mapped))
                rebuiltMatrix = rebuilt
                break
            } catch EngineError.itemMatrixStale where attempt < 4 {
                attempt += 1
            }
        }
    }

    /// The database file this engine reads.
    public var path: String { pool.path }

    /// Where the item matrix lives: beside the database, or — when that folder cannot be written and the
    /// file there is unusable — in the temp folder.
    static func fallbackPath(for path: String) -> String {
        var hash: UInt64 = 14_695_981_039_346_656_037
        for b in path.utf8 { hash = (hash ^ UInt64(b)) &* 1_099_511_628_211 }
        return (NSTemporaryDirectory() as NSString).appendingPathComponent("mfrec-\(String(hash, radix: 16)).items")
    }

    /// The mapped item matrix now in use.
    /// - Throws: `MFRecError.reloadFailed` when the live model changed and could not be loaded.
    /// - Returns: the mapping the engine's scans read.
    public func matrix() throws -> ItemMatrix { try current().matrix }

    /// The live snapshot now in use.
    public var snapshotID: Int { live.withLock { $0.state.snapshot.id } }

    /// Thrown by `openMatrix` when the file needs rebuilding but the state it has is no longer the live one: the
    /// caller loads the newer state instead of writing an older one over the file.
    struct StaleState: Error {}

    /// Maps the item matrix file, rebuilding it first when it does not match the live model.
    /// - Parameters:
    ///   - path: the item matrix file.
    ///   - state: the live state it must match.
    ///   - isCurrent: whether `state` is still the committed live model (checked under the writers' lock before a
    ///     rebuild, so the file never goes back to an older generation).
    /// - Returns: the mapping, and whether the file had to be written.
    /// - Throws: `StaleState` when a rebuild is due but `state` is no longer live; the item matrix's I/O errors.
    static func openMatrix(path: String, state: LiveState, isCurrent: () throws -> Bool = { true }) throws -> (
        ItemMatrix, Bool
    ) {
        let generation = UInt64(state.live.generation), snapshotID = UInt64(state.snapshot.id)
        func open(_ file: String) throws -> ItemMatrix {
            try ItemMatrix.open(
                path: file, generation: generation, snapshotID: snapshotID,
                factors: state.model.factors, itemCount: state.model.itemCount, ranking: state.rankingShape,
                precision: state.precision)
        }
        func write(_ file: String) throws {
            try ItemMatrix.write(
                model: state.model, ranking: state.ranking?.model, precision: state.precision, generation: generation,
                snapshotID: snapshotID, to: file)
        }
        do {
            return (try open(path), false)
        } catch let error as EngineError {
            if case .itemMatrixIO = error { throw error }
            var target = path
            do {
                // Under the writers' lock; another process may have written it meanwhile.
                try ItemMatrix.exclusively(path: path) {
                    if (try? open(path)) == nil {
                        guard try isCurrent() else { throw StaleState() }
                        try write(path)
                    }
                }
            } catch let stale as StaleState {
                throw stale
            } catch {
                // A read-only folder: keep a private copy in the temp folder instead.
                target = fallbackPath(for: path)
                if (try? open(target)) == nil { try write(target) }
            }
            return (try open(target), true)
        }
    }

    /// The model and matrix to answer with. When another connection or process changed the live model
    /// (a new generation), the engine reloads it first: a long-lived engine follows training, rollbacks
    /// and incremental updates without being reopened.
    /// - Throws: `MFRecError.reloadFailed` when the live model changed but could not be loaded (a damaged
    ///   snapshot, an unwritable item matrix): the engine never answers from a model that is no longer live.
    func current() throws -> (model: FactorModel, matrix: ItemMatrix) {
        let (state, matrix, _) = try currentState()
        return (state.model, matrix)
    }

    /// Runs `body` on the live model and its mapped item matrix, and keeps its answer only if no writer
    /// changed the mapped rows meanwhile: the header's generation must be the model's before and after
    /// (a writer marks the header before it rewrites rows in place). Otherwise the engine reloads and
    /// runs `body` again.
    /// - Parameter body: a query over the model and the matrix.
    /// - Returns: what `body` returns, computed from one committed state.
    /// - Throws: what `body` throws, or `MFRecError.reloadFailed` when writers kept changing the file.
    func consistently<R>(_ body: (FactorModel, ItemMatrix) throws -> R) throws -> R {
        try consistentState { state, matrix in try body(state.model, matrix) }
    }

    /// `consistently`, with the whole live state (both models of one generation).
    func consistentState<R>(_ body: (LiveState, ItemMatrix) throws -> R) throws -> R {
        try consistentState(reading: { _ in () }, answer: { state, matrix, _ in try body(state, matrix) })
    }

    /// `consistentState`, with `read` run in the read transaction that reads the live generation, and its
    /// result handed to `body`: a one-user query reads the user's ratings there, one transaction instead of two.
    func consistentState<P, R>(
        reading read: (Store) throws -> P, answer body: (LiveState, ItemMatrix, P) throws -> R
    ) throws -> R {
        try consistentState(
            fetching: { store in try store.read { (try store.liveGeneration(), try read(store)) } }, answer: body)
    }

    /// `consistentState(reading:answer:)` with the live generation and `body`'s input read by `fetch`, which opens
    /// its own read transaction on the connection it is given (or, like `Store.rememberedGenerationAndUser(forKey:)`,
    /// answers from what the connection remembers while the database is unchanged).
    func consistentState<P, R>(
        fetching fetch: (Store) throws -> (generation: Int64, fetched: P),
        answer body: (LiveState, ItemMatrix, P) throws -> R
    ) throws -> R {
        for _ in 0..<16 {
            let (state, matrix, generation, fetched) = try currentState(fetching: fetch)
            let expected = UInt64(generation)
            if matrix.mappedGeneration == expected {
                let answer = try body(state, matrix, fetched)
                if matrix.mappedGeneration == expected { return answer }
            }
            // A writer is (or was) rewriting rows: wait for it (its lock), then reload.
            ItemMatrix.exclusively(path: itemMatrixPath) {}
            live.withLock { $0.forceReload = true }
        }
        throw MFRecError.reloadFailed("the item matrix kept changing during the query")
    }

    /// The model to answer with. When the live generation moved, one query loads the new model (outside
    /// the lock) while the others keep answering from the old one — unless its mapped rows were rewritten
    /// in place, which only the new model matches; those wait for the load. The swap is one assignment, so
    /// a query sees one model, never a mix.
    private func currentState() throws -> (state: LiveState, matrix: ItemMatrix, generation: Int64) {
        let (state, matrix, generation, _) = try currentState(fetching: { store in
            (try store.read { try store.liveGeneration() }, ())
        })
        return (state, matrix, generation)
    }

    /// What a query does after reading the live generation (see `currentState`).
    private enum StateStep {
        case answer(LiveState, ItemMatrix, Int64)
        case load(LiveState, ItemMatrix)
        /// Wait until `loads` moves past the value given.
        case wait(Int)
    }

    /// Ends a load: `update` runs under the live lock, and the queries waiting for the load wake up.
    private func endLoad(_ update: (inout Live) -> Void) {
        live.withLock { live in
            update(&live)
            live.reloading = false
            live.loads &+= 1
        }
        loaded.lock()
        loaded.broadcast()
        loaded.unlock()
    }

    /// `currentState()`, with the generation (and what the query needs with it) read by `fetch` on a connection of
    /// the pool.
    private func currentState<P>(
        fetching fetch: (Store) throws -> (generation: Int64, fetched: P)
    ) throws -> (state: LiveState, matrix: ItemMatrix, generation: Int64, fetched: P) {
        var lastError: Error?
        var failures = 0
        let deadline = Date().addingTimeInterval(60)
        while failures < 5 {
            let (generation, fetched) = try pool.withConnection(fetch)
            let step = live.withLock { live -> StateStep in
                if generation == live.state.live.generation && !live.forceReload {
                    return .answer(live.state, live.mapped, generation)
                }
                if live.reloading {
                    if live.forceReload { return .wait(live.loads) }
                    return .answer(live.state, live.mapped, live.state.live.generation)
                }
                live.reloading = true
                return .load(live.state, live.mapped)
            }
            switch step {
            case .answer(let state, let matrix, let generation):
                return (state, matrix, generation, fetched)
            case .wait(let loads):
                if Date() >= deadline {
                    throw MFRecError.reloadFailed("the new live model took more than 60 s to load")
                }
                // A load's end is signalled under `loaded` after `loads` moved: checked under it, none is missed.
                loaded.lock()
                while live.withLock({ $0.loads }) == loads && Date() < deadline {
                    _ = loaded.wait(until: min(deadline, Date().addingTimeInterval(1)))
                }
                loaded.unlock()
            case .load(let old, let mapped):
                do {
                    let (fresh, matrix, patched) = try load(after: old, mapped: mapped)
                    endLoad { live in
                        live.spare = patched ? old : nil
                        live.state = fresh
                        live.mapped = matrix
                        live.forceReload = false
                    }
                    return (fresh, matrix, fresh.live.generation, fetched)
                } catch {
                    endLoad { _ in }
                    // A writer may have moved the live model again while this load ran: read again (a load
                    // overtaken by writers is not a failure; the deadline bounds those).
                    lastError = error
                    if !(error is StaleState) { failures += 1 }
                    if Date() >= deadline { break }
                }
            }
        }
        throw MFRecError.reloadFailed("\(lastError.map { "\($0)" } ?? "the live model kept changing")")
    }

    /// The live model after `old`: when only incremental updates happened since (the same snapshot and
    /// overlay base), `old` patched with the rows they wrote; otherwise the live snapshot decoded again.
    /// The item matrix is mapped again when it is another file (new items, another snapshot).
    /// `patched` is true when the new state is `old`'s snapshot with rows applied (then `old` becomes the spare).
    private func load(after old: LiveState, mapped: ItemMatrix) throws -> (LiveState, ItemMatrix, patched: Bool) {
        // The spare (an older state of the same snapshot) is taken out of `live`, so that once no query holds
        // it any more this is its only reference and the rows below are written into its arrays in place.
        var spare = live.withLock { $0.spare.take() }
        if let s = spare?.live,
            !(spare?.snapshot.id == old.snapshot.id && s.baseGeneration == old.live.baseGeneration
                && s.generation <= old.live.generation)
        {
            spare = nil
        }
        // Copy-on-write: `old` (still shared) is copied; the spare is written in place unless a slow query still
        // holds it. A state the live row is behind (a rollback) is not patched but decoded.
        var fresh = spare.take() ?? old
        let patched =
            try pool.read { try ModelReader(store: $0).patch(&fresh) } && fresh.live.generation >= old.live.generation
        if !patched { fresh = try pool.read { try ModelReader(store: $0).liveState() } }
        // Rows updated in place are already visible through the shared mapping (its header then carries the
        // new generation, also after a query saw the rows change under it); anything else (new items,
        // another snapshot, a stale or half-stamped header) means mapping the file again.
        func sameShape() -> Bool {
            mapped.itemCount == fresh.model.itemCount && mapped.snapshotID == UInt64(fresh.snapshot.id)
                && mapped.ranking == fresh.rankingShape
        }
        func sameFile() -> Bool { sameShape() && mapped.mappedGeneration == UInt64(fresh.live.generation) }
        // Rather than map and verify the whole file anew: a writer that committed and has not finished stamping
        // its rows is waited for (its lock), and one that stamped the file past a patched `fresh` meanwhile is
        // followed (the rows written since are applied to `fresh`).
        var tries = 0
        while !sameFile() && sameShape() && tries < (patched ? 9 : 1) {
            tries += 1
            let mappedGeneration = mapped.mappedGeneration
            if patched && mappedGeneration != ItemMatrix.writing && mappedGeneration > UInt64(fresh.live.generation) {
                guard try pool.read({ try ModelReader(store: $0).patch(&fresh) }) else { break }
            } else {
                ItemMatrix.exclusively(path: itemMatrixPath) {}
            }
        }
        let live = fresh.live.generation
        let matrix =
            sameFile()
            ? mapped
            : try QueryEngine.openMatrix(path: itemMatrixPath, state: fresh) {
                try pool.read { try $0.liveGeneration() } == live
            }.0
        return (fresh, matrix, patched)
    }

    /// The items `Recommender.forget(item:)` removed, ascending: no list shows them. Read again (and the item
    /// look-up cache emptied, as it may hold a forgotten key) when the live model's base generation moves, as a
    /// forget moves it; the hot path reads nothing.
    func forgottenItems(_ state: LiveState) throws -> [Int32] {
        try cached(\.forgotten, key: state.live.baseGeneration) {
            caches.withLock { $0.items.removeAll() }
            return try pool.read { try $0.forgottenItemIDs() }
        }
    }

    /// An item's key and title, from memory after the first look-up.
    func item(_ id: Int) throws -> Store.ItemInfo? {
        if let cached = caches.withLock({ $0.items[id] }) { return cached }
        let info = try pool.read { try $0.item(id: id) }
        if let info { caches.withLock { if $0.items.count < 1_000_000 { $0.items[id] = info } } }
        return info
    }

    /// The dense id of a user key, and whether the model has a vector for it.
    func resolveUser(_ key: String, in model: FactorModel) throws -> (id: Int, hasVector: Bool)? {
        guard let id = try pool.read({ try $0.userID(forKey: key) }) else { return nil }
        return (id, model.hasUser(id))
    }

    /// The popular list of the last training, decoded again only when the live snapshot changes (training
    /// writes it with the snapshot it makes live) or a forget rewrites it (it moves the base generation).
    func popularList() throws -> [PopularItem] {
        let key = live.withLock { [Int64($0.state.snapshot.id), $0.state.live.baseGeneration] }
        return try cached(\.popular, key: key) { try pool.read { try ModelReader(store: $0).popularItems() } }
    }

    /// The live ranking model (nil when the live snapshot has none): the snapshot's, with the item rows
    /// incremental updates moved since, followed like the rating model.
    /// - Returns: the model and what validation chose at training time.
    /// - Throws: `MFRecError.reloadFailed` when the live model changed and could not be loaded.
    public func rankingModel() throws -> (RankingModel, RankingChoice)? {
        try currentState().state.ranking.map { ($0.model, $0.choice) }
    }

    /// The precision of the live snapshot's item matrix scan copy (`train --item-precision`; f32 without a copy).
    /// - Returns: the precision.
    /// - Throws: `MFRecError.noModel` before the first `train`; `.reloadFailed` when the live model changed and
    ///   could not be loaded.
    public func itemPrecision() throws -> ItemPrecision {
        try currentState().state.snapshot.options?.itemPrecision ?? .f32
    }

    /// The co-occurrence embedding of the last training (nil when there is none), read again only when
    /// a newer one was stored.
    func cooccurrence() throws -> CooccurrenceEmbedding? {
        guard let version = try pool.read({ try $0.cooccurrenceVersion() }) else { return nil }
        return try cached(\.embedding, key: version) { try pool.read { try ModelReader(store: $0).cooccurrence() } }
    }
}
