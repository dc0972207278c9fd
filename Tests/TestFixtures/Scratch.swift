import Foundation

/// One folder per test process under the temp directory, removed when the process exits: every test's temp
/// files and folders go inside it, so a test run leaves nothing behind (a crashed run leaves this one folder).
public let scratchRoot: URL = {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("mfrec-tests-\(getpid())")
    try! FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
    atexit { try? FileManager.default.removeItem(at: scratchRoot) }
    return root
}()

/// A fresh, unused path inside `scratchRoot` (nothing is created there).
/// - Parameter name: what the path ends with, after a unique prefix.
/// - Returns: the path.
public func scratchPath(_ name: String) -> URL {
    scratchRoot.appendingPathComponent("\(UUID().uuidString)-\(name)")
}

/// A new empty folder inside `scratchRoot`.
/// - Parameter name: what the folder's name ends with.
/// - Returns: the folder.
public func scratchFolder(_ name: String = "folder") -> URL {
    let dir = scratchPath(name)
    try! FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir
}
