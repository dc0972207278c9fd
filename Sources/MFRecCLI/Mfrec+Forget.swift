import ArgumentParser
import Foundation
import MFRec

extension Mfrec {
    struct Forget: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Delete a user or an item and every trace of them, in the live model and every snapshot.",
            discussion: """
                Their ratings, their id (and an item's title and genres) and their row in every model of every \
                snapshot are removed (rows are zeroed; other ids stay, so snapshots still load and roll back), with \
                SQLite's secure_delete on, and the write-ahead log is checkpointed and truncated, so no byte of the \
                id is left in the database, its -wal file or the item matrix. Aggregates their ratings went into \
                (other items' vectors, the popular list) stay until the next `mfrec train`.
                """,
            subcommands: [User.self, Item.self])

        struct User: ParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Forget a user.")
            @OptionGroup var database: DatabaseOptions
            @Argument(help: "The user's id.") var id: String

            func run() throws { Forget.print(try database.write().forget(user: id), what: "user \(id)") }
        }

        struct Item: ParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Forget an item.")
            @OptionGroup var database: DatabaseOptions
            @Argument(help: "The item's id.") var id: String

            func run() throws { Forget.print(try database.write().forget(item: id), what: "item \(id)") }
        }

        static func print(_ report: ForgetReport, what: String) {
            Swift.print(
                "forgot \(what): deleted \(plural(report.ratings, "rating")), zeroed its row in "
                    + "\(plural(report.snapshots, "snapshot")) (\(duration(report.seconds)))")
            if !report.checkpointed {
                Console.note(
                    "another process is reading the database, so its write-ahead log still holds old pages; the next "
                        + "command that writes finishes the scrub")
            }
        }
    }

    struct Delete: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Delete stored data.", subcommands: [Rating.self])

        struct Rating: ParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Delete one rating; the live model forgets it at once.",
                discussion: """
                    The user's rating-model vector is fitted again from their remaining ratings (the fold-in `rate` \
                    gives a new user); the item's vector stays until the next `mfrec train`. The ranking model's \
                    count of the item falls by one, and its lists for the user no longer count the rating.
                    """)
            @OptionGroup var database: DatabaseOptions
            @Argument(help: "The user's id.") var user: String
            @Argument(help: "The item's id.") var item: String

            func run() throws {
                let report = try database.write().deleteRating(user: user, item: item)
                print("deleted the rating of item \(item) by user \(user) (\(duration(report.seconds)))")
            }
        }
    }
}
