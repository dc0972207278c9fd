import CKernels
import Dispatch

/// Splits one short job (a single user's scan) over cores with a hand-off of about a microsecond.
///
/// Why: `DispatchQueue.concurrentPerform` wakes a sleeping worker, which costs tens of microseconds — as much as
/// half of a 59,047-item scan — so splitting a scan that short did not pay. The pool's helpers (`pool.c`) spin for
/// 0.2 ms after each job and sleep after that: back-to-back scans find them awake, an idle process pays nothing.
/// One job runs at a time: a caller that finds the pool taken (another thread's scan) falls back to
/// `concurrentPerform`, so concurrent callers never wait for each other here.
public enum ScanPool {
    /// Runs `body(p)` for every p in 0..<parts, on the calling thread and helper threads, and returns when all
    /// are done.
    /// - Parameters:
    ///   - parts: how many parts (1: `body(0)` on the calling thread).
    ///   - body: one part's work; parts run at the same time, so each must touch only its own outputs.
    /// - Returns: whether the pool ran them (false: one part, or the pool was taken and `concurrentPerform` did).
    @discardableResult
    public static func run(parts: Int, _ body: @Sendable (Int) -> Void) -> Bool {
        guard parts > 1 else {
            if parts == 1 { body(0) }
            return false
        }
        let ran = withoutActuallyEscaping(body) { escapable -> Bool in
            var job = escapable
            return withUnsafeMutablePointer(to: &job) { pointer in
                mfrec_pool_run(
                    parts,
                    { context, part in
                        context!.assumingMemoryBound(to: (@Sendable (Int) -> Void).self).pointee(Int(part))
                    }, pointer) != 0
            }
        }
        if !ran { DispatchQueue.concurrentPerform(iterations: parts, execute: body) }
        return ran
    }
}
