import Foundation

/// A biased matrix-factorization model: r̂(u, i) = μ + b_u + b_i + p_u·q_i, clipped to the rating scale.
///
/// `P` (users × k) and `Q` (items × k) are the two embedding matrices, stored row-major with each row
/// padded to `stride` floats (a multiple of 8) so SIMD loops have no tail; the padding is always zero.
/// Without biases (`useBias == false`) μ, b_u and b_i are zero: the plain dot-product model.
public struct FactorModel: Sendable, Equatable {
    /// k.
    public let factors: Int
    /// Floats per row (k padded to a multiple of 8).
    public let stride: Int
    /// Users.
    public private(set) var userCount: Int
    /// Items.
    public private(set) var itemCount: Int
    /// Whether biases take part (`--no-bias` turns them off).
    public var useBias: Bool
    /// μ.
    public var globalMean: Float
    /// b_u per user.
    public var userBias: [Float]
    /// b_i per item.
    public var itemBias: [Float]
    /// P: user vectors, `stride` floats per row.
    public var userFactors: [Float]
    /// Q: item vectors, `stride` floats per row.
    public var itemFactors: [Float]
    /// The rating scale predictions are clipped to.
    public var scaleMin: Float
    /// The top of the rating scale (predictions are clipped to it).
    public var scaleMax: Float

    /// Floats per row for k factors.
    /// - Parameter factors: k.
    /// - Returns: k rounded up to a multiple of 8.
    public static func stride(for factors: Int) -> Int { (factors + 7) / 8 * 8 }

    /// A zero model of the given shape.
    /// - Parameters:
    ///   - factors: k.
    ///   - userCount: users.
    ///   - itemCount: items.
    ///   - useBias: whether the model has μ and biases.
    ///   - globalMean: μ.
    ///   - scale: the rating scale predictions are clipped to.
    public init(
        factors: Int, userCount: Int, itemCount: Int, useBias: Bool, globalMean: Float,
        scale: ClosedRange<Float>
    ) {
        self.factors = factors
        self.stride = Self.stride(for: factors)
        self.userCount = userCount
        self.itemCount = itemCount
        self.useBias = useBias
        self.globalMean = globalMean
        self.userBias = [Float](repeating: 0, count: userCount)
        self.itemBias = [Float](repeating: 0, count: itemCount)
        self.userFactors = [Float](repeating: 0, count: userCount * stride)
        self.itemFactors = [Float](repeating: 0, count: itemCount * stride)
        self.scaleMin = scale.lowerBound
        self.scaleMax = scale.upperBound
    }

    /// Grows the model in place to these counts (new rows are zero: no vector yet). The arrays grow
    /// geometrically, so adding users one at a time costs amortized O(k) each, not a copy of the model
    /// (when this model's arrays are not shared with another copy).
    /// - Parameters:
    ///   - userCount: the new user count (a smaller one changes nothing).
    ///   - itemCount: the new item count (likewise).
    public mutating func grow(userCount: Int, itemCount: Int) {
        precondition(userCount >= self.userCount && itemCount >= self.itemCount)
        if userCount > self.userCount {
            userBias.append(contentsOf: repeatElement(0, count: userCount - self.userCount))
            userFactors.append(contentsOf: repeatElement(0, count: (userCount - self.userCount) * stride))
            self.userCount = userCount
        }
        if itemCount > self.itemCount {
            itemBias.append(contentsOf: repeatElement(0, count: itemCount - self.itemCount))
            itemFactors.append(contentsOf: repeatElement(0, count: (itemCount - self.itemCount) * stride))
            self.itemCount = itemCount
        }
    }

    /// A copy with room for more users and items (new rows are zero: no vector yet); see `grow`.
    /// - Parameters:
    ///   - userCount: users of the copy.
    ///   - itemCount: items of the copy.
    /// - Returns: the copy.
    public func resized(userCount: Int, itemCount: Int) -> FactorModel {
        var out = self
        out.grow(userCount: userCount, itemCount: itemCount)
        return out
    }

    /// Whether the user has a vector (a training or incremental update touched it).
    /// - Parameter u: the user's row.
    /// - Returns: whether it has a vector.
    public func hasUser(_ u: Int) -> Bool {
        u >= 0 && u < userCount && (userBias[u] != 0 || userVector(u).contains { $0 != 0 })
    }

    /// Whether the item has a vector.
    /// - Parameter i: the item's row.
    /// - Returns: whether it has a vector.
    public func hasItem(_ i: Int) -> Bool {
        i >= 0 && i < itemCount && (itemBias[i] != 0 || itemVector(i).contains { $0 != 0 })
    }

    /// Zeroes user u's vector and bias: the model then has no vector for them (see `hasUser`).
    /// - Parameter u: the user's row.
    public mutating func clearUser(_ u: Int) {
        guard u >= 0, u < userCount else { return }
        userBias[u] = 0
        for f in 0..<stride { userFactors[u * stride + f] = 0 }
    }

    /// Zeroes item i's vector and bias (see `hasItem`).
    /// - Parameter i: the item's row.
    public mutating func clearItem(_ i: Int) {
        guard i >= 0, i < itemCount else { return }
        itemBias[i] = 0
        for f in 0..<stride { itemFactors[i * stride + f] = 0 }
    }

    /// A copy whose user row j is this model's row `users[j]` (and likewise for items).
    /// - Parameters:
    ///   - users: for each new row, the old user row.
    ///   - items: for each new row, the old item row.
    /// - Returns: the copy.
    public func permuted(users: [Int], items: [Int]) -> FactorModel {
        var out = self
        for (j, u) in users.enumerated() {
            out.userBias[j] = userBias[u]
            for f in 0..<stride { out.userFactors[j * stride + f] = userFactors[u * stride + f] }
        }
        for (j, i) in items.enumerated() {
            out.itemBias[j] = itemBias[i]
            for f in 0..<stride { out.itemFactors[j * stride + f] = itemFactors[i * stride + f] }
        }
        return out
    }

    /// The user's embedding (k values).
    /// - Parameter u: the user's row.
    /// - Returns: k floats.
    public func userVector(_ u: Int) -> ArraySlice<Float> { userFactors[u * stride..<u * stride + factors] }
    /// The item's embedding (k values).
    /// - Parameter i: the item's row.
    /// - Returns: k floats.
    public func itemVector(_ i: Int) -> ArraySlice<Float> { itemFactors[i * stride..<i * stride + factors] }

    /// The unclipped model output.
    /// - Parameters:
    ///   - u: the user's row.
    ///   - i: the item's row.
    /// - Returns: μ + b_u + b_i + p_u · q_i (p_u · q_i without biases).
    public func rawPrediction(user u: Int, item i: Int) -> Float {
        precondition(
            u >= 0 && i >= 0 && u * stride + factors <= userFactors.count && i * stride + factors <= itemFactors.count,
            "FactorModel.rawPrediction: no row \(u) or \(i)")
        // The rows checked once above, then read unchecked (the same sum, in the same order).
        let dot = userFactors.withUnsafeBufferPointer { p in
            itemFactors.withUnsafeBufferPointer { q in
                var dot: Float = 0
                let a = u * stride, b = i * stride
                for f in 0..<factors { dot += p[a + f] * q[b + f] }
                return dot
            }
        }
        return useBias ? globalMean + userBias[u] + itemBias[i] + dot : dot
    }

    /// The predicted rating, clipped to the scale.
    /// - Parameters:
    ///   - u: the user's row.
    ///   - i: the item's row.
    /// - Returns: the rating.
    public func predict(user u: Int, item i: Int) -> Float { clip(rawPrediction(user: u, item: i)) }

    /// `x` clipped to the rating scale.
    /// - Parameter x: a model output.
    /// - Returns: `x` within the scale.
    @inline(__always) public func clip(_ x: Float) -> Float { min(scaleMax, max(scaleMin, x)) }

    /// The fallback for a pair whose user or item the model has not learned: μ plus the bias of
    /// whichever side is known (biases only in a biased model), clipped to the scale.
    /// - Parameters:
    ///   - u: the user's row (read only when known).
    ///   - knownUser: whether the user has a vector.
    ///   - i: the item's row (read only when known).
    ///   - knownItem: whether the item has a vector.
    /// - Returns: the rating.
    public func fallbackPrediction(user u: Int, knownUser: Bool, item i: Int, knownItem: Bool) -> Float {
        var p = globalMean
        if useBias && knownUser { p += userBias[u] }
        if useBias && knownItem { p += itemBias[i] }
        return clip(p)
    }

    /// The prediction when the user (as the caller knows) and the item both have vectors, the fallback otherwise.
    /// - Parameters:
    ///   - u: the user's row.
    ///   - knownUser: whether the user has a vector.
    ///   - i: the item's row.
    /// - Returns: the rating.
    public func predictOrFallback(user u: Int, knownUser: Bool, item i: Int) -> Float {
        let knownItem = hasItem(i)
        return knownUser && knownItem
            ? predict(user: u, item: i)
            : fallbackPrediction(user: u, knownUser: knownUser, item: i, knownItem: knownItem)
    }

    /// The prediction for a user given by a vector and bias rather than a row (an anonymous session's, see
    /// `OnlineUpdater.sessionUser`), by the same arithmetic as `predict`; nil `user` (no vector) or an item
    /// without one gives the fallback.
    /// - Parameters:
    ///   - user: the session user's vector and bias, or nil.
    ///   - i: the item's row.
    /// - Returns: the rating.
    public func predictOrFallback(user: (vector: [Float], bias: Float)?, item i: Int) -> Float {
        guard let user, hasItem(i) else {
            var p = globalMean
            if useBias && user != nil { p += user!.bias }
            if useBias && hasItem(i) { p += itemBias[i] }
            return clip(p)
        }
        var dot: Float = 0
        for f in 0..<factors { dot += user.vector[f] * itemFactors[i * stride + f] }
        return clip(useBias ? globalMean + user.bias + itemBias[i] + dot : dot)
    }

    /// Trainable parameters: the embeddings plus biases (and μ) when the model has them.
    public var parameterCount: Int {
        (userCount + itemCount) * factors + (useBias ? userCount + itemCount + 1 : 0)
    }
}

// MARK: - Binary encoding

extension FactorModel {
    static let magic: UInt32 = 0x4D46_524D  // "MFRM"
    static let version: UInt32 = 1

    /// A compact little-endian encoding (rows unpadded): header, biases, P, Q.
    /// - Returns: the bytes.
    public func encoded() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(48 + 4 * (userCount + itemCount) * (factors + 1))
        func put<T: FixedWidthInteger>(_ v: T) { LittleEndian.append(v, to: &out) }
        func put(_ v: Float) { LittleEndian.append(v, to: &out) }
        put(Self.magic)
        put(Self.version)
        put(UInt32(factors))
        put(UInt64(userCount))
        put(UInt64(itemCount))
        put(UInt32(useBias ? 1 : 0))
        put(globalMean)
        put(scaleMin)
        put(scaleMax)
        LittleEndian.append(floats: userBias, to: &out)
        LittleEndian.append(floats: itemBias, to: &out)
        for u in 0..<userCount { LittleEndian.append(floats: userVector(u), to: &out) }
        for i in 0..<itemCount { LittleEndian.append(floats: itemVector(i), to: &out) }
        return out
    }

    /// Decodes `encoded()`; any inconsistency is an error, never a crash.
    /// - Parameter bytes: the encoding.
    /// - Throws: `EngineError.modelFormat` for bytes that are not a model of this version.
    public init(decoding bytes: [UInt8]) throws {
        var offset = 0
        func take<T: FixedWidthInteger>(_: T.Type) throws -> T {
            guard let v = LittleEndian.integer(T.self, in: bytes, at: offset) else {
                throw EngineError.modelFormat("model data is truncated")
            }
            offset += MemoryLayout<T>.size
            return v
        }
        func float() throws -> Float { Float(bitPattern: try take(UInt32.self)) }
        guard try take(UInt32.self) == Self.magic else {
            throw EngineError.modelFormat("not an mfrec model (bad magic)")
        }
        let version = try take(UInt32.self)
        guard version == Self.version else {
            throw EngineError.modelFormat("model format version \(version) is not supported")
        }
        let k = Int(try take(UInt32.self))
        // A crafted count past Int.max is an error, not a trap (found by `scripts/fuzz.sh snapshot-blob`).
        guard let users = Int(exactly: try take(UInt64.self)), let items = Int(exactly: try take(UInt64.self)) else {
            throw EngineError.modelFormat("model header does not match its size")
        }
        let useBias = try take(UInt32.self) != 0
        let mean = try float(), lo = try float(), hi = try float()
        guard k > 0, k <= 4096, users <= 1 << 40, items <= 1 << 40, lo <= hi,
            bytes.count - offset == 4 * (users + items) * (k + 1)
        else {
            throw EngineError.modelFormat("model header does not match its size")
        }
        self.init(factors: k, userCount: users, itemCount: items, useBias: useBias, globalMean: mean, scale: lo...hi)
        // The size was checked above, so every read below is in bounds.
        let values = LittleEndian.floats(in: bytes, at: offset, count: (users + items) * (k + 1))!
        var p = 0
        for u in 0..<users { userBias[u] = values[p + u] }
        p += users
        for i in 0..<items { itemBias[i] = values[p + i] }
        p += items
        for u in 0..<users { for f in 0..<k { userFactors[u * stride + f] = values[p + u * k + f] } }
        p += users * k
        for i in 0..<items { for f in 0..<k { itemFactors[i * stride + f] = values[p + i * k + f] } }
    }
}
