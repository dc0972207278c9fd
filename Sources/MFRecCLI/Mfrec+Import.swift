import ArgumentParser
import Foundation
import MFRec

extension Mfrec {
    struct Import: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Import a model trained elsewhere as a snapshot.",
            subcommands: [Spark.self])

        struct Spark: ParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Import the output of spark/train_als.py (Spark MLlib ALS) as a new snapshot.",
                discussion: """
                    An explicit ALS model becomes the rating model (--as rating; no biases: a prediction is p·q \
                    clipped to the scale); an implicit one (--model implicit in the Spark job) the ranking model \
                    (--as ranking). The snapshot keeps the live model's other model. Ids the database does not \
                    know are added; users and items without a vector fall back as untrained ones do.
                    """)
            @OptionGroup var database: DatabaseOptions
            @Argument(help: "The Spark job's --output folder.") var folder: String
            @Option(name: .customLong("as"), help: "rating or ranking: which model of the snapshot it becomes.")
            var target: String = "rating"
            @Option(help: "A note to store with the snapshot.") var note: String?
            @Flag(help: "Store the snapshot without making it live (use rollback to switch to it).")
            var noActivate = false

            func validate() throws {
                guard ImportTarget(rawValue: target) != nil else {
                    throw ValidationError("--as is rating or ranking, not \(target)")
                }
                guard !folder.isEmpty else { throw ValidationError("the folder is empty") }
            }

            func run() throws {
                let r = try database.write().importSpark(
                    folder: folder, as: ImportTarget(rawValue: target)!, note: note, activate: !noActivate)
                if let saved = r.savedUpdatesAs {
                    print("saved the live model's unsaved incremental updates as snapshot \(saved)")
                }
                print(
                    "imported a k = \(r.rank) \(r.target.rawValue) model from \(r.files) part files: "
                        + "\(grouped(r.users)) users, \(grouped(r.items)) items "
                        + "(\(grouped(r.newUsers)) users and \(grouped(r.newItems)) items were new to the database; "
                        + "\(grouped(r.usersWithoutVector)) users and \(grouped(r.itemsWithoutVector)) items have no vector)"
                )
                let other = r.target == .rating ? "ranking" : "rating"
                print(
                    "snapshot \(r.snapshotID)\(r.activated ? " is live" : " stored (not live)"); "
                        + (r.keptOtherModel ? "its \(other) model is the live one's" : "it has no \(other) model")
                        + " (\(duration(r.seconds)))")
            }
        }
    }
}
