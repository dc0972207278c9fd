import Foundation
import Testing

@testable import MFEngine
@testable import MFRec

/// `train --item-precision f16|i8` end to end: the live snapshot's precision decides the item matrix file's
/// scan copy, every rewrite of the file keeps it, rating updates it in place, and rollback restores the
/// precision of the snapshot it goes back to.
@Suite struct ItemPrecisionServeTests {
    static func inode(_ path: String) -> UInt64 {
        var info = stat()
        return stat(path, &info) == 0 ? UInt64(info.st_ino) : 0
    }

    @Test(arguments: [ItemPrecision.f16, .i8])
    func reducedItemMatricesServeTheF32Lists(precision: ItemPrecision) throws {
        let (rec, _) = try trainedSmallDatabase()
        let first = try rec.store.liveModel().snapshotID!
        let users = (1...40).map(String.init).filter { $0 != "3" }  // user 3 rates below
        func lists() throws -> [[Recommendation]] {
            let engine = try rec.queries()
            return try users.flatMap { user in
                [
                    try engine.recommend(user: user, n: 10).items,
                    try engine.recommend(user: user, n: 10, by: .rating).items,
                ]
            }
        }
        let exact = try lists()
        #expect(try rec.queries().matrix().precision == .f32)
        // The same training with a scan copy: the same models, so the same lists and scores.
        var request = smallTrainRequest()  // trainedSmallDatabase's settings, with a scan copy
        request.options.itemPrecision = precision
        try rec.train(request)
        let second = try rec.store.liveModel().snapshotID!
        #expect(try rec.snapshot(second).options?.itemPrecision == precision)
        let engine = try rec.queries()
        #expect(try engine.matrix().precision == precision)
        #expect(try lists() == exact)
        // A rating rewrites the changed rows of both copies in place (the same file), and the engine reopens it
        // with its checksum verified.
        let before = Self.inode(rec.itemMatrixPath)
        try rec.rate(user: "3", item: "5", rating: 5)
        #expect(Self.inode(rec.itemMatrixPath) == before)
        let generation = try rec.store.liveModel().generation
        let state = try rec.liveState()
        let reopened = try ItemMatrix.open(
            path: rec.itemMatrixPath, generation: UInt64(generation), snapshotID: UInt64(second),
            factors: state.model.factors, itemCount: state.model.itemCount, ranking: state.rankingShape,
            precision: precision)
        #expect(reopened.precision == precision)
        #expect(try engine.matrix().precision == precision)
        // Rollback restores the f32 snapshot's precision with its models.
        try rec.rollback(to: first)
        #expect(try rec.queries().matrix().precision == .f32)
        #expect(try lists() == exact)
    }
}
