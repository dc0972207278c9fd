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

    /// The one-query scan (blocks of scores, a threshold check, the excluded rows walked by a cursor) gives the full
    /// sort's list: scores rising with the row id (every row beats the threshold), falling, tied, or random; excluded
    /// rows left out; any part of the rows scanned; n larger than the rows at times.
    @Test(arguments: 0..<24)
    func scanSelectionEqualsFullSort(seed: Int) {
        var rng = SeededGenerator(seed: UInt64(100 + seed))
        let count = 1 + rng.next(below: 3_000)
        let n = 1 + rng.next(below: seed % 3 == 0 ? 150 : 45)
        let scores: [Float] = (0..<count).map { i in
            switch seed % 4 {
            case 0: Float(i)  // rising: every row reaches the threshold
            case 1: Float(count - i)  // falling: almost none does
            case 2: Float(rng.next(below: 7))  // a few values: ties everywhere
            default: rng.nextFloat()
            }
        }
        let stride = 16
        var rows = [Float](repeating: 0, count: count * stride)
        for i in 0..<count { rows[i * stride] = scores[i] }
        var query = [Float](repeating: 0, count: stride)
        query[0] = 1
        let excluded = (0..<count).filter { _ in rng.next(below: 5) == 0 }.map { Int32($0) }
        let lo = rng.next(below: count), hi = lo + rng.next(below: count - lo + 1)
        let inRange = excluded.filter { Int($0) >= lo && Int($0) < hi }
        let top = FloatRows.with(rows) { view in
            view.topN(
                query: query, range: lo..<hi, k: stride, stride: stride, biases: nil, n: n, excluded: inRange[...])
        }
        var expected = Self.oracle(scores, n: count, excluded: Set(excluded)).filter { Int($0) >= lo && Int($0) < hi }
        expected = Array(expected.prefix(n))
        #expect(top.sorted().map(\.item) == expected)
        #expect(top.sorted().map(\.score) == expected.map { scores[Int($0)] })
    }

    @Test func zeroCapacityKeepsNothing() {
        var top = TopN(capacity: 0)
        top.offer(score: 1, item: 1)
        #expect(top.sorted().isEmpty)
    }
}
