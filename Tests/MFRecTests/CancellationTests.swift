import Foundation
import Testing

@testable import MFRec
@testable import MFStore

/// A task executor of one dedicated thread. The cancellation tests start their task and await it here, so the
/// latency they measure is the operation's: from `cancel()` to the throw, plus one hand-over to an idle thread.
/// On the global executor the awaiting test resumes only when a cooperative thread is free, and on 2 cores the
/// parallel suite's synchronous, CPU-bound tests can hold both for seconds (two clean-clone CI runs measured
/// 1.16 s and 1.23 s that way).
final class DedicatedThreadExecutor: TaskExecutor, @unchecked Sendable {
    static let shared = DedicatedThreadExecutor()
    private let condition = NSCondition()
    private var jobs: [UnownedJob] = []  // guarded by `condition`

    private init() {
        let thread = Thread { [unowned self] in
            while true {
                condition.lock()
                while jobs.isEmpty { condition.wait() }
                let job = jobs.removeFirst()
                condition.unlock()
                job.runSynchronously(on: asUnownedTaskExecutor())
            }
        }
        thread.start()
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        condition.lock()
        jobs.append(job)
        condition.signal()
        condition.unlock()
    }
}

/// The async entry points follow task cancellation: the work stops within a second, the task throws
/// `CancellationError`, and the database is exactly as it was.
@Suite struct CancellationTests {
    /// The issue's bound, 1 s; scripts/sanitizers.sh scales it (MFREC_TIME_SCALE), as ASan and TSan slow the
    /// operation itself down several times.
    static let bound = 1.0 * (ProcessInfo.processInfo.environment["MFREC_TIME_SCALE"].flatMap(Double.init) ?? 1)

    /// Waits (polling) until `flag` is set, for at most `seconds`.
    func waitFor(_ flag: Locked<Bool>, seconds: Double = 60) async throws {
        let deadline = Date().addingTimeInterval(seconds)
        while !flag.withLock({ $0 }) {
            guard Date() < deadline else {
                Issue.record("the operation never got going")
                return
            }
            try await Task.sleep(nanoseconds: 5_000_000)
        }
    }

    @Test func cancellingAnIngestStopsItAndStoresNothing() async throws {
        let (rec, before, dir) = try await ingested(users: 100, items: 80, ratings: 2_000, seed: 1)
        defer { try? FileManager.default.removeItem(at: dir) }
        let big = dir.appendingPathComponent("big.csv").path
        _ = try SyntheticRatings(users: 20_000, items: 5_000, ratings: 3_000_000, seed: 2).write(to: big)
        let started = Locked(false), cancelled = Locked(false)
        let task = Task(executorPreference: DedicatedThreadExecutor.shared) {
            try await rec.ingest(
                path: big,
                progress: { done, _ in
                    guard done > 0 else { return }
                    started.withLock { $0 = true }
                    // Held at its first report until the test has cancelled it, so a loaded machine cannot let
                    // the whole ingest finish before the cancellation arrives (up to 10 s).
                    for _ in 0..<10_000 where !cancelled.withLock({ $0 }) { usleep(1_000) }
                })
        }
        try await cancel(task, after: started, rec: rec, before: before) { cancelled.withLock { $0 = true } }
        #expect(try rec.store.integrityCheck() == "ok")
    }

    /// A database with generated ratings ingested, and its dump before the operation under test.
    func ingested(users: Int, items: Int, ratings: Int, seed: UInt64) async throws -> (Recommender, String, URL) {
        let dir = tempFolder()
        let data = dir.appendingPathComponent("r.csv").path
        _ = try SyntheticRatings(users: users, items: items, ratings: ratings, seed: seed).write(to: data)
        let rec = try Recommender(path: dir.appendingPathComponent("db").path)
        try await rec.ingest(path: data)
        return (rec, try dump(rec.store), dir)
    }

    /// Cancels `task` once `started` is set; expects `CancellationError` within a second and the
    /// database as it was.
    func cancel<R>(
        _ task: Task<R, Error>, after started: Locked<Bool>, delay: UInt64 = 0, rec: Recommender, before: String,
        onCancel: @Sendable () -> Void = {}
    )
        async throws
    {
        try await waitFor(started)
        if delay > 0 { try await Task.sleep(nanoseconds: delay) }
        // Awaited on a dedicated thread (see DedicatedThreadExecutor), so the time is the operation's own.
        let latency = await withTaskExecutorPreference(DedicatedThreadExecutor.shared) {
            let cancelledAt = Date()
            task.cancel()
            onCancel()
            await #expect(throws: CancellationError.self) { try await task.value }
            return Date().timeIntervalSince(cancelledAt)
        }
        #expect(latency < Self.bound, "it took \(latency) s to stop (bound \(Self.bound) s)")
        print("cancellation latency: \(String(format: "%.3f", latency)) s")
        #expect(try dump(rec.store) == before)
    }

    @Test func cancellingTrainingStopsItAndSavesNothing() async throws {
        let (rec, before, dir) = try await ingested(users: 2_000, items: 1_000, ratings: 100_000, seed: 3)
        defer { try? FileManager.default.removeItem(at: dir) }
        var request = TrainRequest()
        request.tune = false
        request.options.epochs = 10_000  // far longer than the test waits
        let started = Locked(false)
        let task = Task(executorPreference: DedicatedThreadExecutor.shared) {
            try await rec.train(request, progress: { _, _, _ in started.withLock { $0 = true } })
        }
        try await cancel(task, after: started, rec: rec, before: before)
        #expect(try rec.snapshots().isEmpty)
    }

    @Test func cancellingWhileTheRankingModelIsTunedStopsToo() async throws {
        let (rec, before, dir) = try await ingested(users: 3_000, items: 2_000, ratings: 150_000, seed: 4)
        defer { try? FileManager.default.removeItem(at: dir) }
        var request = TrainRequest()
        request.tuneRating = false
        request.options.epochs = 2
        let trained = Locked(false)
        // The last epoch's progress comes just before the ranking model is tuned.
        let task = Task(executorPreference: DedicatedThreadExecutor.shared) {
            try await rec.train(
                request, progress: { _, _, stats in if stats.epoch == 2 { trained.withLock { $0 = true } } })
        }
        try await cancel(task, after: trained, delay: 200_000_000, rec: rec, before: before)
    }

    @Test func aCancelledTaskStartsNothing() async throws {
        let dir = tempFolder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let data = dir.appendingPathComponent("r.csv").path
        _ = try SyntheticRatings(users: 100, items: 80, ratings: 2_000, seed: 1).write(to: data)
        let rec = try Recommender(path: dir.appendingPathComponent("db").path)
        let task = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            return try await rec.ingest(path: data)
        }
        await #expect(throws: CancellationError.self) { try await task.value }
        #expect(try rec.catalog().users == 0)
    }
}
