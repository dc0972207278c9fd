import Foundation

/// Every error MFEngine throws, one case per thing a caller can act on.
public enum EngineError: Error, CustomStringConvertible, LocalizedError, Sendable, Equatable {
    // Training stopped without a model.
    /// Training diverged (the loss became non-finite or exploded): retry with a smaller learning rate.
    case diverged(epoch: Int, loss: Double, learningRate: Float)
    /// There is nothing to train on.
    case noTrainingRatings
    /// The options or inputs are invalid (the message says which).
    case invalid(String)
    /// Training (or a fit, or tuning) was cancelled; nothing was saved.
    case cancelled

    // The item matrix file cannot be used as it is: every case but `itemMatrixIO` means "rebuild it".
    /// The file does not exist.
    case itemMatrixMissing
    /// The file belongs to another model version.
    case itemMatrixStale
    /// The file is damaged (the reason says how).
    case itemMatrixCorrupt(String)
    /// The file cannot be read or written (an operating-system error).
    case itemMatrixIO(String)

    /// Bytes are not a model this version can read (the reason says why).
    case modelFormat(String)

    /// What happened, and what to try.
    public var description: String {
        switch self {
        case .diverged(let epoch, let loss, let lr):
            return "training diverged at epoch \(epoch) (train loss \(loss)); nothing was saved. "
                + "Try a smaller --learning-rate (it was \(lr); \(lr / 4) is a good next try)"
        case .noTrainingRatings: return "there are no ratings to train on; run `mfrec ingest FILE` first"
        case .invalid(let why): return why
        case .cancelled: return "training was cancelled; nothing was saved"
        case .itemMatrixMissing: return "item matrix file is missing"
        case .itemMatrixStale: return "item matrix file belongs to another model version"
        case .itemMatrixCorrupt(let why): return "item matrix file is corrupt: \(why)"
        case .itemMatrixIO(let why): return why
        case .modelFormat(let why): return why
        }
    }

    /// The description, for `localizedDescription`.
    public var errorDescription: String? { description }

    /// The one cancellation check of every long step (epochs, tuning, fits): throws `.cancelled` when
    /// `isCancelled` answers true.
    /// - Parameter isCancelled: the caller's check; nil never cancels.
    /// - Throws: `EngineError.cancelled`.
    public static func check(_ isCancelled: (() -> Bool)?) throws {
        if isCancelled?() == true { throw EngineError.cancelled }
    }
}
