import CZlib
import Foundation
import TestFixtures

@testable import MFRec
@testable import MFStore

/// A fresh folder for one test (tests run in parallel).
func tempFolder() -> URL {
    scratchFolder("mfrec-test")
}

/// Writes `bytes` to `name` in `folder`, gzip-compressed when the name ends in .gz.
@discardableResult
func writeFile(_ folder: URL, _ name: String, _ bytes: [UInt8], raw: Bool = false) -> String {
    let path = folder.appendingPathComponent(name).path
    if name.hasSuffix(".gz") && !raw {
        let gz = gzopen(path, "wb")!
        _ = bytes.withUnsafeBytes { gzwrite(gz, $0.baseAddress, UInt32($0.count)) }
        gzclose(gz)
    } else {
        _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
    }
    return path
}

@discardableResult
func writeFile(_ folder: URL, _ name: String, _ text: String) -> String { writeFile(folder, name, Array(text.utf8)) }

/// Everything the database holds, as text, to check that a failed command changed nothing.
func dump(_ store: Store) throws -> String {
    var out = ""
    for sql in [
        "SELECT id, key FROM users ORDER BY id", "SELECT id, key, title, genres FROM items ORDER BY id",
        "SELECT user_id, item_id, rating, ts, seq FROM ratings ORDER BY user_id, item_id",
        "SELECT key, value FROM metadata ORDER BY key", "SELECT id, kind, factors FROM snapshots ORDER BY id",
        "SELECT snapshot_id, generation, dirty FROM live_model",
        "SELECT version, factors, item_count, checksum FROM cooccurrence",
        "SELECT snapshot_id, factors, item_count, checksum FROM ranking_models ORDER BY snapshot_id",
    ] {
        let stmt = try store.db.prepare(sql)
        while try stmt.step() {
            out += (0..<4).map { stmt.string(Int32($0)) ?? "∅" }.joined(separator: "|") + "\n"
        }
        out += "--\n"
    }
    return out
}

let ml100k = Fixtures.uData
let ml100kItems = Fixtures.uItem
