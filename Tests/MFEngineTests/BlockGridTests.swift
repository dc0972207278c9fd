import Testing

@testable import MFEngine

/// Issue 16 (the path from the database to the trainer): the SGD block grid is built by scattering the
/// ratings into their blocks in input order (a stable counting sort, on two threads from a million ratings):
/// the order must be exactly the reference's, and ratings read user by user stay user by user in a block.
@Suite struct BlockGridTests {
    @Test(arguments: [(1, 5), (3_000, 4), (50_000, 8)])
    func sameOrderAsAStableCountingSortByBlock(count: Int, bins: Int) {
        var data = SeededGenerator(seed: UInt64(count))
        var triples = RatingTriples()
        let userCount = 700, itemCount = 300
        for _ in 0..<count {
            triples.append(
                user: Int32(data.next(below: userCount)), item: Int32(data.next(below: itemCount)),
                rating: Float(1 + data.next(below: 5)))
        }
        var rng = SeededGenerator(seed: 42)
        let grid = BlockGrid(triples, userCount: userCount, itemCount: itemCount, bins: bins, rng: &rng)

        // The earlier construction, kept here as the reference.
        var reference = SeededGenerator(seed: 42)
        var userOrder = Array(0..<userCount), itemOrder = Array(0..<itemCount)
        userOrder.shuffle(using: &reference)
        itemOrder.shuffle(using: &reference)
        var localUser = [Int32](repeating: 0, count: userCount), localItem = [Int32](repeating: 0, count: itemCount)
        for (position, id) in userOrder.enumerated() { localUser[id] = Int32(position) }
        for (position, id) in itemOrder.enumerated() { localItem[id] = Int32(position) }
        func bin(_ local: Int32, _ n: Int) -> Int { Int(local) * bins / max(n, 1) }
        var counts = [Int](repeating: 0, count: bins * bins + 1)
        var blockOf = [Int](repeating: 0, count: count)
        for j in 0..<count {
            blockOf[j] =
                bin(localUser[Int(triples.users[j])], userCount) * bins
                + bin(localItem[Int(triples.items[j])], itemCount)
            counts[blockOf[j] + 1] += 1
        }
        for b in 0..<bins * bins { counts[b + 1] += counts[b] }
        var cursor = counts
        var order = [Int32](repeating: 0, count: count)
        for j in 0..<count {
            order[cursor[blockOf[j]]] = Int32(j)
            cursor[blockOf[j]] += 1
        }

        #expect(grid.offsets == counts)
        #expect(grid.users == order.map { localUser[Int(triples.users[Int($0)])] })
        #expect(grid.items == order.map { localItem[Int(triples.items[Int($0)])] })
        #expect(grid.ratings == order.map { triples.ratings[Int($0)] })
        #expect(rng.next() == reference.next())  // the generator is left where the reference leaves it
    }

    /// Ratings in (user, item) order, as `train` reads them, keep each user's ratings of a block together (the
    /// order the SGD kernel's cache reuse depends on), on one thread and on two (from a million ratings).
    @Test(arguments: [20_000, 1_200_000])
    func ratingsReadUserByUserStayTogetherInEachBlock(count: Int) {
        var data = SeededGenerator(seed: 3)
        let userCount = 5_000, itemCount = 2_000
        var pairs = Set<Int64>()
        while pairs.count < count {
            pairs.insert(Int64(data.next(below: userCount)) << 32 | Int64(data.next(below: itemCount)))
        }
        var triples = RatingTriples()
        for pair in pairs.sorted() {
            triples.append(user: Int32(pair >> 32), item: Int32(pair & 0xFFFF_FFFF), rating: 3)
        }
        var rng = SeededGenerator(seed: 42)
        let grid = BlockGrid(triples, userCount: userCount, itemCount: itemCount, bins: 8, rng: &rng)
        #expect(grid.users.count == count)
        for b in 0..<64 {
            var finished = Set<Int32>()
            var previous: Int32?
            for j in grid.blockRange(b) {
                let u = grid.users[j]
                if u != previous {
                    #expect(!finished.contains(u), "block \(b): user \(u) comes back")
                    if let previous { finished.insert(previous) }
                    previous = u
                }
            }
        }
    }
}
