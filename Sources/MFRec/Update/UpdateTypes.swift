import Foundation

/// A new rating, with the ids of the user's files.
public struct NewRating: Sendable, Equatable {
    public var user: String
    public var item: String
    public var rating: Double
    public var timestamp: Int64?

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

    public init(steps: Int = 1, learningRate: Float? = nil, foldInPrior: Double? = nil) {
        self.steps = steps
        self.learningRate = learningRate
        self.foldInPrior = foldInPrior
    }
}

/// What an incremental update did.
public struct UpdateReport: Sendable {
    public var ratings = 0
    public var newUsers = 0
    public var newItems = 0
    /// Users and items fitted from their stored ratings because the model had no vector for them.
    public var foldedUsers = 0
    public var foldedItems = 0
    public var generation: Int64 = 0
    public var seconds = 0.0
    /// How the item matrix file followed: rows rewritten in place, or the whole file rewritten.
    public var matrixUpdatedInPlace = false
}
