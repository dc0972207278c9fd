import Foundation
import TestFixtures
import Testing

@testable import MFStore

/// The queries a query engine runs after every incremental update (the live rows changed since its generation)
/// must search the generation index, not scan the table: the tables hold a row for every user and item ever
/// updated, and `mfrec serve` runs them after each posted rating.
@Suite struct QueryPlanTests {
    func plan(_ store: Store, _ sql: String) throws -> String {
        let stmt = try store.db.prepare("EXPLAIN QUERY PLAN " + sql)
        var lines: [String] = []
        while try stmt.step() { lines.append(stmt.string(3) ?? "") }
        return lines.joined(separator: "; ")
    }

    @Test func liveRowsSinceAGenerationSearchTheGenerationIndex() throws {
        let dir = scratchPath("mfrec-plan")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let store = try Store(path: dir.appendingPathComponent("plan.db").path)
        for (sql, index) in [
            (Store.liveRowsSQL(users: true, after: true), "live_users_by_generation"),
            (Store.liveRowsSQL(users: false, after: true), "live_items_by_generation"),
            (Store.liveRankingRowsSQL(after: true), "live_ranking_items_by_generation"),
        ] {
            let text = try plan(store, sql.replacingOccurrences(of: "?", with: "7"))
            #expect(text.contains("USING INDEX \(index)"), "\(sql): \(text)")
        }
    }
}
