import Foundation

/// Every error MFRec throws of its own (a store error or an engine error passes through as `StoreError` or
/// `EngineError`), one case per thing a caller can act on.
public enum MFRecError: Error, CustomStringConvertible, LocalizedError, Sendable, Equatable {
    case unknownUser(String)
    case coldUser(String)
    case unknownItem(String)
    /// The user has not rated the item (`deleteRating`).
    case noRating(user: String, item: String)
    /// The item is in the database but the model has no vector for it (no ratings it learned from).
    case noItemVector(String)
    case noModel
    case noRankingModel
    /// The live model changed but could not be loaded; the engine does not answer from the old one.
    case reloadFailed(String)
    /// There are no ratings yet (nothing to update or rate against).
    case noRatings
    /// The snapshot was trained on every rating: evaluating it needs a test file.
    case noTestSplit(snapshot: Int)
    /// The test set has no ratings.
    case emptyTestSet
    /// An output file could not be written.
    case cannotWrite(path: String, reason: String)
    /// A model handed to `importModel` does not fit the database (the reason says how).
    case modelMismatch(String)
    /// A genre filter names a genre no item has (the genres the item file gave are listed).
    case unknownGenre(String, known: [String])
    /// Bad input: the file's name, the line when the error is about one, and what is wrong (naming the field).
    case input(file: String, line: Int? = nil, reason: String)
    /// A data set cannot be generated as asked (the reason says why).
    case cannotGenerate(String)

    /// The message the command line prints.
    public var errorDescription: String? { description }

    /// What went wrong, and what to do about it.
    public var description: String {
        switch self {
        case .unknownUser(let key): return "user \(key) is not in the database"
        case .coldUser(let key):
            return
                "user \(key) is cold: no vector in the live model (no ratings when it was trained), or fewer "
                + "ratings than --min-ratings"
        case .unknownItem(let key): return "item \(key) is not in the database"
        case .noRating(let user, let item): return "user \(user) has not rated item \(item); nothing was changed"
        case .noItemVector(let key):
            return "item \(key) has no vector in the model yet (no ratings it was trained or updated on)"
        case .noModel: return "there is no model yet; run `mfrec train` first"
        case .noRankingModel: return "the live snapshot has no ranking model; run `mfrec train` to fit one"
        case .reloadFailed(let why): return "the live model changed but could not be loaded: \(why)"
        case .noRatings: return "there are no ratings yet: ingest a file and train a model before rating incrementally"
        case .noTestSplit(let id):
            return "snapshot \(id) was trained on every rating (no test split); give --test-file FILE"
        case .emptyTestSet: return "the test set is empty"
        case .cannotWrite(let path, let reason): return "cannot write \(path): \(reason)"
        case .input(let file, let line?, let reason): return "\(file):\(line): \(reason)"
        case .input(let file, nil, let reason): return "\(file): \(reason)"
        case .cannotGenerate(let why): return why
        case .modelMismatch(let why): return "the model does not fit this database: \(why); nothing was changed"
        case .unknownGenre(let genre, let known):
            return "no item has the genre \(genre); "
                + (known.isEmpty
                    ? "no genres were ingested (mfrec ingest --items FILE)"
                    : "the genres are: \(known.joined(separator: ", "))")
        }
    }
}
