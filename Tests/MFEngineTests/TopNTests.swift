import Testing

@testable import MFEngine

@Suite struct TopNTests {
    /// The oracle: a full sort by (score desc, item asc).
    static func oracle(_ scores: [Float], n: Int, excluded: Set<Int32> = []) -> [Int32] {
        var ids: [Int32] = (0..<scores.count).map { Int32($0) }.filter { !excluded.contains($0) }
        ids.sort { (a: Int32, b: Int32) -> Bool in
            let sa = scores[Int(a)], sb = scores[Int(b)]
            return sa != sb ? sa > sb : a < b
        }
        return Array(ids.prefix(n))
    }

    @Test(arguments: 0..<40)
    func equalsFullSort(seed: Int) {
        var rng = SeededGenerator(seed: UInt64(seed))
        let count = rng.next(below: 300)
        let n = 1 + rng.next(below: 40)  // sometimes larger than the candidate count
        // Few distinct values, so ties are common.
        let scores = (0..<count).map { _ in Float(rng.next(below: 12)) / 4 }
        var top = TopN(capacity: n)
        for (i, s) in scores.enumerated() { top.offer(score: s, item: Int32(i)) }
        #expect(top.sorted().map(\.item) == Self.oracle(scores, n: n))
        #expect(top.sorted().map(\.score) == Self.oracle(scores, n: n).map { scores[Int($0)] })
    }

    @Test func tiesBreakBySmallerItemIdWhateverTheOrder() {
        var forward = TopN(capacity: 2), backward = TopN(capacity: 2)
        for i in 0..<5 { forward.offer(score: 1, item: Int32(i)) }
        for i in (0..<5).reversed() { backward.offer(score: 1, item: Int32(i)) }
        #expect(forward.sorted().map(\.item) == [0, 1])
        #expect(backward.sorted().map(\.item) == [0, 1])
    }

    @Test func mergeOfPartsEqualsWhole() {
        var rng = SeededGenerator(seed: 9)
        let scores = (0..<500).map { _ in rng.nextFloat() }
        var a = TopN(capacity: 7), b = TopN(capacity: 7), whole = TopN(capacity: 7)
        for (i, s) in scores.enumerated() {
            whole.offer(score: s, item: Int32(i))
            if i < 250 { a.offer(score: s, item: Int32(i)) } else { b.offer(score: s, item: Int32(i)) }
        }
        a.merge(b)
        #expect(a.sorted().map(\.item) == whole.sorted().map(\.item))
    }

    @Test func zeroCapacityKeepsNothing() {
        var top = TopN(capacity: 0)
        top.offer(score: 1, item: 1)
        #expect(top.sorted().isEmpty)
    }
}
