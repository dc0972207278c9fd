import Foundation

/// Console output helpers: results on stdout, progress and notes on stderr.
enum Console {
    static let stderrIsTerminal = isatty(STDERR_FILENO) != 0

    static func note(_ text: String) {
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }

    /// A progress callback drawing a bar on stderr when it is a terminal (nothing otherwise).
    static func progressBar(_ label: String, unit: ProgressUnit = .bytes) -> (@Sendable (Int64, Int64) -> Void)? {
        guard stderrIsTerminal else { return nil }
        let started = Date()
        return { done, total in
            let fraction = total > 0 ? min(1, Double(done) / Double(total)) : 0
            let width = 30
            let filled = Int(fraction * Double(width))
            let rate = Double(done) / max(Date().timeIntervalSince(started), 1e-6)
            let speed = unit == .bytes ? String(format: "%.1f MB/s", rate / 1e6) : "\(grouped(Int(rate)))/s"
            let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
            var line = "\r\(label) [\(bar)] \(Int(fraction * 100))% \(speed)"
            if done >= total { line += "\u{1B}[K\r\u{1B}[K" }
            FileHandle.standardError.write(Data(line.utf8))
        }
    }

    enum ProgressUnit { case bytes, count }
}

/// 1234567 → "1,234,567".
func grouped(_ value: Int) -> String {
    let digits = String(value.magnitude)
    var out = ""
    for (i, c) in digits.enumerated() {
        if i > 0 && (digits.count - i) % 3 == 0 { out.append(",") }
        out.append(c)
    }
    return value < 0 ? "-" + out : out
}

/// 1 → "1 rating", 1234 → "1,234 ratings".
func plural(_ count: Int, _ noun: String) -> String {
    "\(grouped(count)) \(noun)" + (count == 1 ? "" : "s")
}

/// 5.0 → "5", 4.5 → "4.5".
func compact(_ value: Double) -> String {
    value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : String(value)
}

/// Seconds as "0.31 s" or "1 min 3 s".
func duration(_ seconds: Double) -> String {
    seconds < 60
        ? String(format: "%.2f s", seconds) : String(format: "%d min %d s", Int(seconds) / 60, Int(seconds) % 60)
}

/// A plain text table with right-aligned numeric columns.
/// Columns whose header is "title" are dropped when every cell is empty.
func table(_ header: [String], _ rows: [[String]], rightAligned: Set<Int> = []) -> String {
    if let t = header.firstIndex(of: "title"), rows.allSatisfy({ $0[t].isEmpty }) {
        let keep = header.indices.filter { $0 != t }
        return table(
            keep.map { header[$0] }, rows.map { row in keep.map { row[$0] } },
            rightAligned: Set(rightAligned.compactMap { $0 == t ? nil : ($0 > t ? $0 - 1 : $0) }))
    }
    var widths = header.map(\.count)
    for row in rows {
        for (i, cell) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], cell.count) }
    }
    func line(_ cells: [String]) -> String {
        cells.enumerated().map { i, cell in
            let pad = String(repeating: " ", count: max(0, widths[i] - cell.count))
            return rightAligned.contains(i) ? pad + cell : cell + pad
        }.joined(separator: "  ").replacingOccurrences(of: "\\s+$", with: "", options: .regularExpression)
    }
    return ([line(header), line(widths.map { String(repeating: "-", count: $0) })] + rows.map(line)).joined(
        separator: "\n")
}

/// Prints a value as pretty, key-sorted JSON on stdout.
func printJSON<T: Encodable>(_ value: T) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    print(String(decoding: try encoder.encode(value), as: UTF8.self))
}
