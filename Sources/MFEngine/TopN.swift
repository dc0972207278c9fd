/// The n best (score, item) pairs of a stream, kept in a bounded binary min-heap whose root is the
/// worst of the n kept: a new candidate costs one comparison when it is not better than the root,
/// and O(log n) when it replaces it. A pass over m candidates costs O(m log n).
///
/// Order: a higher score is better; equal scores are broken by the smaller item id, so results are
/// reproducible whatever the scan order.
///
/// ```swift
/// var top = TopN(capacity: 2)
/// top.offer(score: 0.5, item: 7); top.offer(score: 0.9, item: 3); top.offer(score: 0.1, item: 1)
/// top.sorted()  // [(3, 0.9), (7, 0.5)]
/// ```
public struct TopN: Sendable {
    /// n: how many best entries are kept.
    public let capacity: Int
    private var scores: [Float]
    private var items: [Int32]
    /// Entries kept so far.
    public private(set) var count = 0

    /// An empty heap for the `capacity` best entries.
    /// - Parameter capacity: n, the entries kept.
    public init(capacity: Int) {
        precondition(capacity >= 0)
        self.capacity = capacity
        scores = [Float](repeating: 0, count: capacity)
        items = [Int32](repeating: 0, count: capacity)
    }

    /// Whether (a, ai) ranks below (b, bi).
    @inline(__always)
    static func worse(_ a: Float, _ ai: Int32, than b: Float, _ bi: Int32) -> Bool {
        a < b || (a == b && ai > bi)
    }

    /// The score a candidate must beat to enter (−∞ while not full).
    @inline(__always)
    public var threshold: Float { count < capacity ? -.infinity : (capacity == 0 ? .infinity : scores[0]) }

    /// Offers a candidate. - Complexity: O(1) when rejected, O(log n) otherwise.
    /// - Parameters:
    ///   - score: the candidate's score.
    ///   - item: its id (a tie keeps the smaller id).
    @inline(__always)
    public mutating func offer(score: Float, item: Int32) {
        if count < capacity {
            scores[count] = score
            items[count] = item
            count += 1
            siftUp(count - 1)
        } else if capacity > 0 && Self.worse(scores[0], items[0], than: score, item) {
            replaceWorst(score: score, item: item)
        }
    }

    private mutating func siftUp(_ start: Int) {
        var child = start
        while child > 0 {
            let parent = (child - 1) / 2
            guard Self.worse(scores[child], items[child], than: scores[parent], items[parent]) else { return }
            scores.swapAt(child, parent)
            items.swapAt(child, parent)
            child = parent
        }
    }

    /// Puts (score, item) in place of the root (the worst kept entry): the children that rank below it move up
    /// into the hole, and it goes where the hole stops. Through buffer pointers, so that the loop pays neither
    /// bounds checks nor an array uniqueness check per move (it ran for 8–11% of a reduced-precision scan).
    private mutating func replaceWorst(score: Float, item: Int32) {
        let count = self.count
        scores.withUnsafeMutableBufferPointer { s in
            items.withUnsafeMutableBufferPointer { it in
                var hole = 0
                while true {
                    let left = 2 * hole + 1
                    guard left < count else { break }
                    var worst = left
                    let right = left + 1
                    if right < count && Self.worse(s[right], it[right], than: s[left], it[left]) { worst = right }
                    guard Self.worse(s[worst], it[worst], than: score, item) else { break }
                    s[hole] = s[worst]
                    it[hole] = it[worst]
                    hole = worst
                }
                s[hole] = score
                it[hole] = item
            }
        }
    }

    /// Adds every candidate of another heap (to merge per-thread results).
    /// - Parameter other: the other heap.
    public mutating func merge(_ other: TopN) {
        for j in 0..<other.count { offer(score: other.scores[j], item: other.items[j]) }
    }

    /// The kept candidates, best first. - Complexity: O(n log n).
    /// - Returns: (item, score) pairs, best first.
    public func sorted() -> [(item: Int32, score: Float)] {
        (0..<count).map { (items[$0], scores[$0]) }
            .sorted { Self.worse($1.1, $1.0, than: $0.1, $0.0) }
    }
}
