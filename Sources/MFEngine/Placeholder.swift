public func hello() {}
