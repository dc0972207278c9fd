import CKernels
import Testing

@testable import MFEngine

/// `mfrec_read_floats`, the read that `mfrec-bench query` compares the scans with: it must read every float (a
/// bound that skipped bytes would flatter every ratio), with the vector kernel and the portable one.
@Suite(.serialized) struct ReadBoundTests {
    @Test(arguments: [false, true]) func readsEveryFloat(portable: Bool) {
        ItemMatrix.usePortableKernels(portable)
        defer { ItemMatrix.usePortableKernels(false) }
        for count in [0, 1, 7, 255, 256, 257, 1_000, 70_001] {
            // Small integers, so that every order of summing them gives the same exact sum.
            let values = (0..<count).map { Float(($0 * 7 + 3) % 5) }
            let expected = values.reduce(0, +)
            let sum = values.withUnsafeBufferPointer { mfrec_read_floats($0.baseAddress, $0.count) }
            #expect(sum == expected, "count \(count)")
            // A changed last float changes the sum: the tail past the last whole step is read too.
            if count > 0 {
                var changed = values
                changed[count - 1] += 1
                #expect(changed.withUnsafeBufferPointer { mfrec_read_floats($0.baseAddress, $0.count) } == expected + 1)
            }
        }
    }
}
