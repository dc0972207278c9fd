import Testing

@testable import MFEngine

/// Issue 16 (the path from the database to the trainer): the SGD block grid is built by scattering the
/// ratings into their blocks and shuffling each block in place; the order must be exactly the one the
/// earlier index shuffle and gather gave, so training results do not move.
@Suite struct BlockGridTests {
    @Test(arguments: [(1, 5), (3_000, 4), (50_000, 8)])
    func sameOrderAsShufflingIndicesThenGathering(count: Int, bins: Int) {
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
        for b in 0..<bins * bins { order[counts[b]..<counts[b + 1]].shuffle(using: &reference) }

        #expect(grid.offsets == counts)
        #expect(grid.users == order.map { localUser[Int(triples.users[Int($0)])] })
        #expect(grid.items == order.map { localItem[Int(triples.items[Int($0)])] })
        #expect(grid.ratings == order.map { triples.ratings[Int($0)] })
        #expect(rng.next() == reference.next())  // the generator is left where the old code left it
    }
}
