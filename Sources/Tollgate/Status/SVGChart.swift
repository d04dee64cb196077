/// Bar charts as inline SVG for the status page: one bar per day, the series stacked, each bar segment titled
/// with its day, series and value (a tooltip without JavaScript). The markup is well-formed XML and names no
/// external resource.
struct SVGChart {
    /// One stacked series: its legend label (escaped here), its colour and a value per day.
    struct Series {
        var label: String
        var color: String
        var values: [Double]
    }

    /// A short accessible description (escaped here).
    var title: String
    /// The days the bars stand for (days since 1970-01-01, UTC), oldest first.
    var days: [Int64]
    var series: [Series]
    /// How a value reads in a tooltip ("1,234 tokens").
    var format: (Double) -> String
    /// Shown across the plot when every value is 0.
    var emptyText = "nothing in these days"

    static let width = 720.0
    static let height = 200.0
    static let left = 52.0
    static let right = 8.0
    static let top = 10.0
    static let bottom = 24.0

    /// A palette that stays readable for the common colour-vision deficiencies (Tableau 10), then grey.
    static let palette = ["#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#76b7b2", "#edc948", "#ff9da7", "#9c755f"]
    static let restColor = "#bab0ac"

    /// The `<svg>` element.
    func render() -> String {
        let w = SVGChart.width, h = SVGChart.height
        let plotW = w - SVGChart.left - SVGChart.right
        let plotH = h - SVGChart.top - SVGChart.bottom
        let n = max(1, days.count)
        var totals = Array(repeating: 0.0, count: n)
        for s in series { for (i, v) in s.values.prefix(n).enumerated() { totals[i] += max(0, v) } }
        let peak = totals.max() ?? 0
        let yMax = SVGChart.niceCeiling(peak)
        var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" viewBox=\"0 0 \(Int(w)) \(Int(h))\" "
            + "role=\"img\" aria-label=\"\(HTMLText.escape(title))\">"
        svg += "<title>\(HTMLText.escape(title))</title>"
        // Grid lines and their labels at 0, half and the top.
        for fraction in [0.0, 0.5, 1.0] {
            let y = SVGChart.top + plotH * (1 - fraction)
            svg += "<line x1=\"\(f(SVGChart.left))\" y1=\"\(f(y))\" x2=\"\(f(w - SVGChart.right))\" y2=\"\(f(y))\" "
                + "class=\"grid\"/>"
            svg += "<text x=\"\(f(SVGChart.left - 6))\" y=\"\(f(y + 4))\" class=\"axis\" text-anchor=\"end\">"
                + "\(HTMLText.compact(yMax * fraction))</text>"
        }
        let slot = plotW / Double(n)
        let barW = max(1, slot * 0.78)
        if peak > 0 {
            for i in 0..<n {
                var base = 0.0
                for s in series {
                    let v = i < s.values.count ? max(0, s.values[i]) : 0
                    guard v > 0 else { continue }
                    let barH = plotH * v / yMax
                    let x = SVGChart.left + slot * Double(i) + (slot - barW) / 2
                    let y = SVGChart.top + plotH * (1 - (base + v) / yMax)
                    base += v
                    let day = i < days.count ? HTMLText.date(day: days[i]) : ""
                    svg += "<rect x=\"\(f(x))\" y=\"\(f(y))\" width=\"\(f(barW))\" height=\"\(f(max(0.5, barH)))\" "
                        + "fill=\"\(s.color)\"><title>\(day) · \(HTMLText.escape(s.label)): "
                        + "\(HTMLText.escape(format(v)))</title></rect>"
                }
            }
        } else {
            svg += "<text x=\"\(f(SVGChart.left + plotW / 2))\" y=\"\(f(SVGChart.top + plotH / 2))\" class=\"empty\" "
                + "text-anchor=\"middle\">\(HTMLText.escape(emptyText))</text>"
        }
        // The first, middle and last days under the axis.
        if !days.isEmpty {
            for i in Set([0, days.count / 2, days.count - 1]).sorted() {
                let x = SVGChart.left + slot * (Double(i) + 0.5)
                let anchor = i == 0 && days.count > 1 ? "start" : i == days.count - 1 && days.count > 1 ? "end" : "middle"
                let ax = anchor == "start" ? x - slot / 2 : anchor == "end" ? x + slot / 2 : x
                svg += "<text x=\"\(f(ax))\" y=\"\(f(h - 6))\" class=\"axis\" text-anchor=\"\(anchor)\">"
                    + "\(HTMLText.date(day: days[i]).dropFirst(5))</text>"
            }
        }
        return svg + "</svg>"
    }

    /// The chart's legend as HTML: a swatch, the label and the series' total, per series.
    func legend(total: (Series) -> String) -> String {
        guard series.count > 1 || !(series.first?.label.isEmpty ?? true) else { return "" }
        var out = "<ul class=\"legend\">"
        for s in series {
            out += "<li><span class=\"swatch\" style=\"background:\(s.color)\"></span>\(HTMLText.escape(s.label))"
                + " <span class=\"muted\">\(HTMLText.escape(total(s)))</span></li>"
        }
        return out + "</ul>"
    }

    /// The smallest of 1, 2, 2.5 or 5 times a power of ten at or above `value` (1 for 0): an axis top that reads
    /// well and leaves the tallest bar below it.
    static func niceCeiling(_ value: Double) -> Double {
        guard value > 0, value.isFinite else { return 1 }
        var power = 1.0
        while power * 10 <= value { power *= 10 }
        while power > value { power /= 10 }
        for step in [1.0, 2.0, 2.5, 5.0, 10.0] where step * power >= value { return step * power }
        return 10 * power
    }

    /// A coordinate with at most one decimal.
    private func f(_ v: Double) -> String { HTMLText.decimal(v, places: 1) }
}
