import Foundation

/// A value guarded by a lock: mfrec's one lock type. Every access goes through `withLock`, so the value
/// is never touched by two threads at once.
///
/// Invariant (why `@unchecked Sendable` is sound): `value` is private and read or written only inside
/// `withLock`, which holds `lock`; `body` must not let the value (or a class it holds) escape to be used
/// outside the lock by another thread.
public final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value

    /// Guards `value`.
    /// - Parameter value: the initial value.
    public init(_ value: Value) { self.value = value }

    /// Runs `body` with the value while holding the lock.
    /// - Parameter body: reads or changes the value; it must not call `withLock` on the same instance.
    /// - Returns: what `body` returns.
    /// - Throws: what `body` throws.
    public func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}

/// A value handed to `concurrentPerform`'s threads: buffers each thread only reads, or writes only in its own
/// range. Invariant (why `@unchecked Sendable` is sound): the caller keeps the buffers alive for the call and
/// gives no two threads the same writable range.
struct Shared<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}

/// Share `part` of `parts` contiguous shares of 0..<n (what each `concurrentPerform` iteration takes).
func share(_ part: Int, of parts: Int, _ n: Int) -> Range<Int> { (n * part / parts)..<(n * (part + 1) / parts) }

/// Result slots written by `concurrentPerform` iterations, each its own index, read after they end.
public final class ThreadSlots<T>: Sendable {
    private let slots: Locked<[T?]>

    /// `count` empty slots.
    /// - Parameter count: the slots.
    public init(count: Int) { slots = Locked(Array(repeating: nil, count: count)) }

    /// How many slots there are.
    public var count: Int { slots.withLock { $0.count } }

    /// Sets slot `i`.
    /// - Parameters:
    ///   - i: the slot.
    ///   - value: its value.
    public func set(_ i: Int, _ value: T) { slots.withLock { $0[i] = value } }

    /// The value of a slot that was set.
    /// - Parameter i: the slot.
    /// - Returns: its value.
    public func get(_ i: Int) -> T { slots.withLock { $0[i]! } }

    /// The value of a slot, nil when it was never set.
    /// - Parameter i: the slot.
    /// - Returns: its value, or nil.
    public func value(_ i: Int) -> T? { slots.withLock { $0[i] } }
}
