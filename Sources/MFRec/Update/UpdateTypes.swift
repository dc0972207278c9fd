import Foundation
import MFEngine

/// A new rating, with the ids of the user's files.
public struct NewRating: Sendable, Equatable {
    /// The user's id (new users are added).
    public var user: String
    /// The item's id (new items are added).
    public var item: String
    /// The rating, within the database's scale.
    public var rating: Double
    /// Seconds since 1970, when known.
    public var timestamp: Int64?

    /// A rating of `item` by `user`.
    /// - Parameters:
    ///   - user: the user's key.
    ///   - item: the item's key.
    ///   - rating: the rating.
    ///   - timestamp: Unix seconds, when known.
    public init(user: String, item: String, rating: Double, timestamp: Int64? = nil) {
        self.user = user
        self.item = item
        self.rating = rating
        self.timestamp = timestamp
    }
}

/// How incremental updates move the live model.
public struct UpdateOptions: Sendable {
    /// SGD steps per new rating. One is best on the ML-100K time-split benchmark (`mfrec-bench
    /// incremental`): it recovers all of a full retrain's gain, where 3 recover 87% and 10 only 14%
    /// (more steps overfit the new rating).
    public var steps = 1
    /// Step size; nil uses the step chosen on validation when the model was trained (else its training's
    /// initial learning rate).
    public var learningRate: Float?
    /// Fold-in prior; nil uses the one chosen on validation when the model was trained (else 2).
    public var foldInPrior: Double?

    /// Options; nil takes the value stored with the live model.
    /// - Parameters:
    ///   - steps: SGD steps per new rating.
    ///   - learningRate: the step's learning rate.
    ///   - foldInPrior: the prior weight of a folded-in user's or item's solve.
    public init(steps: Int = 1, learningRate: Float? = nil, foldInPrior: Double? = nil) {
        self.steps = steps
        self.learningRate = learningRate
        self.foldInPrior = foldInPrior
    }
}

extension UpdateOptions {
    /// The updater these options make for a model trained with `hyper`: nil values take the choices stored
    /// with it. `rate`, `ingest --update` and an anonymous session's fold-in (`QueryEngine.recommend(ratings:)`)
    /// all use it, so a session is ranked as its ratings would be if they were stored.
    func updater(trainedWith hyper: TrainingOptions) -> OnlineUpdater {
        var updater = OnlineUpdater(
            learningRate: learningRate ?? hyper.updateLearningRate ?? hyper.learningRate,
            regularization: hyper.regularization,
            biasRegularization: hyper.biasRegularization, steps: steps, nonnegative: hyper.nonnegative)
        if let prior = foldInPrior ?? hyper.foldInPrior { updater.foldInPrior = prior }
        return updater
    }
}

/// What an incremental update did.
public struct UpdateReport: Sendable {
    /// Ratings applied.
    public var ratings = 0
    /// Users added by them.
    public var newUsers = 0
    /// Items added by them.
    public var newItems = 0
    /// Users and items fitted from their stored ratings because the model had no vector for them.
    public var foldedUsers = 0
    /// Items given a vector by fold-in.
    public var foldedItems = 0
    /// The live model's generation after the update.
    public var generation: Int64 = 0
    /// Wall-clock time of the update.
    public var seconds = 0.0
    /// How the item matrix file followed: rows rewritten in place, or the whole file rewritten.
    public var matrixUpdatedInPlace = false
}
