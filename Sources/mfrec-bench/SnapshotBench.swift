import ArgumentParser
import Foundation
import MFEngine
import MFRec

struct SnapshotBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "snapshot",
        abstract: "Snapshot create and rollback time (including the item matrix file) and bytes per snapshot.")

    @Option(help: "Users of the large model.") var users = 162_541
    @Option(help: "Items of the large model.") var items = 59_047
    @Option(help: "k of the large model.") var factors = 64
    @OptionGroup var scale: Scale

    func run() throws {
        let dir = try scale.makeFolder()
        defer { scale.removeFolder(dir) }
        if FileManager.default.fileExists(atPath: sharedML100K) {
            let rec = try Recommender(path: (dir as NSString).appendingPathComponent("ml.db"))
            try rec.ingest(path: sharedML100K)
            var request = TrainRequest()
            request.options.factors = 20
            try rec.train(request)
            try measure(rec, label: "ML-100K model (943 × 1,682, k = 20, trained)")
        }
        let rec = try Recommender(path: (dir as NSString).appendingPathComponent("big.db"))
        var rng = SeededGenerator(seed: 3)
        func model() -> FactorModel {
            var m = FactorModel(
                factors: factors, userCount: users, itemCount: items, useBias: true, globalMean: 3.5, scale: 1...5)
            for j in 0..<m.userFactors.count where j % m.stride < factors {
                m.userFactors[j] = Float(rng.nextGaussian()) * 0.1
            }
            for j in 0..<m.itemFactors.count where j % m.stride < factors {
                m.itemFactors[j] = Float(rng.nextGaussian()) * 0.1
            }
            for u in 0..<users { m.userBias[u] = Float(rng.nextGaussian()) * 0.3 }
            for i in 0..<items { m.itemBias[i] = Float(rng.nextGaussian()) * 0.3 }
            return m
        }
        let (_, importSeconds) = try time { try rec.importModel(model(), note: "a") }
        print("\nimported a \(users) × \(items) × k=\(factors) model (Gaussian values) in \(fmt(importSeconds)) s")
        try rec.importModel(model(), note: "b")
        try measure(
            rec,
            label:
                "\(users) users × \(items) items × k = \(factors) (Gaussian values: the hardest case for compression)")
        print("\npeak memory: \(fmt(peakRSSMegabytes(), 0)) MB")
    }

    func measure(_ rec: Recommender, label: String) throws {
        section(label)
        let ids = try rec.snapshots().map(\.id)
        let (created, createSeconds) = try time { try rec.createSnapshot(note: "bench") }
        let info = try rec.snapshot(created)
        print(
            "snapshot create: \(fmt(createSeconds * 1e3, 1)) ms; \(info.storedBytes) bytes stored, "
                + "\(info.modelBytes) uncompressed "
                + "(\(fmt(100 * Double(info.storedBytes) / Double(info.modelBytes), 1))%)")
        var times: [Double] = []
        for round in 0..<6 {
            let target = round % 2 == 0 ? ids[0] : created
            times.append(try time { try rec.rollback(to: target) }.1)
        }
        times.sort()
        print(
            "rollback (verify checksum, decode, switch, write the item matrix file): p50 "
                + "\(fmt(percentile(times, 0.5) * 1e3, 1)) ms, max \(fmt(times.last! * 1e3, 1)) ms"
        )
        let (_, open) = try time { _ = try rec.queries().recommend(user: "1", n: 5) }
        print(
            "first query after rollback (map + verify the item matrix, load the live model): \(fmt(open * 1e3, 1)) ms")
    }
}
