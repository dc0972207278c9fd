import Foundation
import MFRec

/// A line chart of train and test MSE per epoch, as a standalone SVG.
struct LossChart {
    let history: [EpochStats]
    let title: String

    func svg() -> String {
        let width = 720.0, height = 420.0
        let left = 70.0, right = 150.0, top = 40.0, bottom = 50.0
        let plotW = width - left - right, plotH = height - top - bottom
        let train = history.map(\.trainMSE)
        let test = history.compactMap { $0.test?.mse }
        let values = train + test
        let lo = max(0, (values.min() ?? 0) * 0.95), hi = (values.max() ?? 1) * 1.02
        let epochs = max(history.count, 2)
        func x(_ epoch: Int) -> Double { left + Double(epoch - 1) / Double(epochs - 1) * plotW }
        func y(_ v: Double) -> Double { top + (1 - (v - lo) / max(hi - lo, 1e-12)) * plotH }
        func fmt(_ v: Double) -> String { String(format: "%.1f", v) }
        var s = """
            <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" viewBox="0 0 \(Int(width)) \(Int(height))" font-family="Helvetica, Arial, sans-serif" font-size="12">
            <rect width="100%" height="100%" fill="white"/>
            <text x="\(fmt(left + plotW / 2))" y="22" text-anchor="middle" font-size="15">\(escape(title))</text>

            """
        // Grid and y ticks.
        for t in 0...5 {
            let v = lo + (hi - lo) * Double(t) / 5
            s +=
                "<line x1=\"\(fmt(left))\" y1=\"\(fmt(y(v)))\" x2=\"\(fmt(left + plotW))\" y2=\"\(fmt(y(v)))\" "
                + "stroke=\"#e5e5e5\"/>\n"
            s +=
                "<text x=\"\(fmt(left - 8))\" y=\"\(fmt(y(v) + 4))\" "
                + "text-anchor=\"end\">\(String(format: "%.3f", v))</text>\n"
        }
        // x ticks.
        let step = max(1, Int((Double(epochs) / 10).rounded(.up)))
        for e in Swift.stride(from: 1, through: history.count, by: step) {
            s +=
                "<line x1=\"\(fmt(x(e)))\" y1=\"\(fmt(top + plotH))\" x2=\"\(fmt(x(e)))\" "
                + "y2=\"\(fmt(top + plotH + 5))\" stroke=\"#333\"/>\n"
            s += "<text x=\"\(fmt(x(e)))\" y=\"\(fmt(top + plotH + 20))\" text-anchor=\"middle\">\(e)</text>\n"
        }
        s +=
            "<line x1=\"\(fmt(left))\" y1=\"\(fmt(top + plotH))\" x2=\"\(fmt(left + plotW))\" "
            + "y2=\"\(fmt(top + plotH))\" stroke=\"#333\"/>\n"
        s +=
            "<line x1=\"\(fmt(left))\" y1=\"\(fmt(top))\" x2=\"\(fmt(left))\" y2=\"\(fmt(top + plotH))\" "
            + "stroke=\"#333\"/>\n"
        s += "<text x=\"\(fmt(left + plotW / 2))\" y=\"\(fmt(height - 10))\" text-anchor=\"middle\">epoch</text>\n"
        s +=
            "<text transform=\"translate(18 \(fmt(top + plotH / 2))) rotate(-90)\" text-anchor=\"middle\">mean "
            + "squared error</text>\n"
        func polyline(_ points: [(Int, Double)], _ color: String, dashed: Bool) -> String {
            let coords = points.map { "\(fmt(x($0.0))),\(fmt(y($0.1)))" }.joined(separator: " ")
            return
                "<polyline fill=\"none\" stroke=\"\(color)\" "
                + "stroke-width=\"2\"\(dashed ? " stroke-dasharray=\"6 4\"" : "") points=\"\(coords)\"/>\n"
        }
        s += polyline(history.map { ($0.epoch, $0.trainMSE) }, "#1f77b4", dashed: false)
        let testPoints = history.compactMap { h in h.test.map { (h.epoch, $0.mse) } }
        if !testPoints.isEmpty { s += polyline(testPoints, "#d62728", dashed: true) }
        // Legend.
        let lx = left + plotW + 20
        s +=
            "<line x1=\"\(fmt(lx))\" y1=\"\(fmt(top + 10))\" x2=\"\(fmt(lx + 24))\" y2=\"\(fmt(top + 10))\" "
            + "stroke=\"#1f77b4\" stroke-width=\"2\"/>"
        s += "<text x=\"\(fmt(lx + 30))\" y=\"\(fmt(top + 14))\">train MSE</text>\n"
        if !testPoints.isEmpty {
            s +=
                "<line x1=\"\(fmt(lx))\" y1=\"\(fmt(top + 30))\" x2=\"\(fmt(lx + 24))\" y2=\"\(fmt(top + 30))\" "
                + "stroke=\"#d62728\" stroke-width=\"2\" stroke-dasharray=\"6 4\"/>"
            s += "<text x=\"\(fmt(lx + 30))\" y=\"\(fmt(top + 34))\">test MSE</text>\n"
        }
        return s + "</svg>\n"
    }

    func write(to path: String) throws { try atomicWrite(Data(svg().utf8), to: path) }

    private func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;")
    }
}
