/// Why the item matrix file cannot be used as it is (all but `io` mean: rebuild it).
public enum ItemMatrixError: Error, CustomStringConvertible, Sendable, Equatable {
    case missing
    case stale
    case corrupt(String)
    case io(String)

    /// What is wrong with the file.
    public var description: String {
        switch self {
        case .missing: return "item matrix file is missing"
        case .stale: return "item matrix file belongs to another model version"
        case .corrupt(let why): return "item matrix file is corrupt: \(why)"
        case .io(let why): return why
        }
    }
}
