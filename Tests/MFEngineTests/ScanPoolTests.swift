import Dispatch
import Foundation
import Testing

@testable import MFEngine

/// `ScanPool`: every part of every job runs exactly once, on back-to-back jobs (helpers awake), after the helpers
/// have gone to sleep, and when several threads submit jobs at once (one holds the pool, the others fall back).
@Suite struct ScanPoolTests {
    /// Runs one job of `parts` parts that records which parts ran and how often.
    private func runJob(parts: Int) -> [Int] {
        let counts = Locked([Int](repeating: 0, count: parts))
        ScanPool.run(parts: parts) { p in counts.withLock { $0[p] += 1 } }
        return counts.withLock { $0 }
    }

    @Test func everyPartRunsOnceOnBackToBackJobs() {
        for job in 0..<2_000 {
            let parts = 1 + job % 9
            let counts = runJob(parts: parts)
            #expect(counts == [Int](repeating: 1, count: parts), "job \(job)")
            if counts != [Int](repeating: 1, count: parts) { return }
        }
        #expect(runJob(parts: 0).isEmpty)
    }

    @Test func jobsAfterTheHelpersSleepStillRunEveryPart() {
        for round in 0..<5 {
            #expect(runJob(parts: 2) == [1, 1], "round \(round)")
            Thread.sleep(forTimeInterval: 0.002)  // past the helpers' 0.2 ms of spinning: they sleep
        }
    }

    @Test func partsRunOnMoreThanOneThread() {
        // Each part waits (up to 0.5 s) until the other has started: both see it only when they run at the same
        // time. Other suites' scans may hold the pool (the job then goes to `concurrentPerform`, which may run
        // the parts one after the other), so the test retries until the pool itself has run the job.
        for _ in 0..<50 {
            let started = Locked(0)
            let sawOther = Locked(0)
            let byPool = ScanPool.run(parts: 2) { _ in
                started.withLock { $0 += 1 }
                let deadline = Date().addingTimeInterval(0.5)
                while Date() < deadline {
                    if started.withLock({ $0 }) == 2 {
                        sawOther.withLock { $0 += 1 }
                        return
                    }
                }
            }
            if byPool {
                #expect(sawOther.withLock { $0 } == 2, "the pool ran the two parts one after the other")
                return
            }
        }
        Issue.record("the pool was taken by other scans in 50 tries")
    }

    @Test func concurrentCallersEachGetTheirOwnParts() {
        let failures = Locked(0)
        DispatchQueue.concurrentPerform(iterations: 4) { caller in
            for job in 0..<500 {
                let parts = 2 + (job + caller) % 4
                let counts = Locked([Int](repeating: 0, count: parts))
                ScanPool.run(parts: parts) { p in counts.withLock { $0[p] += 1 } }
                if counts.withLock({ $0 }) != [Int](repeating: 1, count: parts) { failures.withLock { $0 += 1 } }
            }
        }
        #expect(failures.withLock { $0 } == 0)
    }
}
