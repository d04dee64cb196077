/// The status page's HTML: server-rendered, charts as inline SVG, the style inline, no script and no reference
/// to anything to fetch, so that it reads the same in a browser without JavaScript and passes the strict
/// `Content-Security-Policy` it is served with. Every user-controlled string is escaped (`HTMLText`); the markup is
/// also well-formed XML. Pure: a `StatusNow` and the ledger's answer in, a string out.
public enum StatusPageRenderer {
    /// The header the page is served with: nothing but inline style and `data:` images may load.
    public static let contentSecurityPolicy = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"

    /// What the page says about the ledger's history.
    public enum History: Sendable {
        /// The usage ledger is off (no state database, or `ledger = off`).
        case off
        case answer(StatusHistoryReader.Answer)
    }

    /// Series drawn per chart before the rest are summed as "others".
    static let seriesShown = 8

    /// The whole page.
    public static func render(now: StatusNow, history: History) -> String {
        var html = """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8"/>
            <meta name="viewport" content="width=device-width, initial-scale=1"/>
            <meta http-equiv="refresh" content="60"/>
            <link rel="icon" href="data:,"/>
            <title>Tollgate status</title>
            <style>\(style)</style>
            </head><body>
            <header><h1>Tollgate status</h1><p class="muted">Tollgate \(HTMLText.escape(now.version)) · \
            \(HTMLText.time(millis: now.time)) · reloads every minute</p></header>

            """
        html += nowSection(now)
        html += historySection(history)
        html += quotaSection(now.quotas)
        html += "</body></html>\n"
        return html
    }

    // MARK: now

    static func nowSection(_ now: StatusNow) -> String {
        var s = "<section id=\"now\"><h2>Now</h2><div class=\"tiles\">"
        s += tile("Ollama", now.upstreamUp ? "up" : "down", sub: now.upstreamUp ? nil : now.upstreamDetail,
                  state: now.upstreamUp ? "ok" : "bad")
        if let inFlight = now.inFlight { s += tile("In flight", HTMLText.number(inFlight)) }
        if let queued = now.queued { s += tile("Queued for a slot", HTMLText.number(queued), state: queued > 0 ? "warn" : nil) }
        if let queue = now.backendQueue {
            s += tile("Queued for a backend", HTMLText.number(queue), state: queue > 0 ? "warn" : nil)
        }
        s += tile("Open connections", HTMLText.number(now.openConnections))
        if let expiry = now.certificateExpiry {
            let seconds = expiry - now.time / 1000
            let days = seconds / 86_400
            let text = seconds <= 0 ? "expired" : days == 1 ? "1 day" : "\(days) days"
            let state = seconds <= 3 * 86_400 ? "bad" : seconds <= 14 * 86_400 ? "warn" : "ok"
            s += tile("Certificate", text, sub: "until " + HTMLText.time(millis: expiry * 1000), state: state)
        }
        s += "</div>"
        s += "<h3>Backends</h3><table><thead><tr><th>backend</th><th>health</th><th class=\"n\">in flight</th>"
            + "<th class=\"n\">requests</th><th class=\"n\">ejections</th><th>loaded models</th></tr></thead><tbody>"
        for b in now.backends {
            let health = b.healthy ? "<span class=\"ok\">healthy</span>" : "<span class=\"bad\">ejected</span>"
            let loaded = b.loaded.map { $0.isEmpty ? "none" : $0.map { HTMLText.escape($0) }.joined(separator: ", ") } ?? "–"
            s += "<tr><td>\(HTMLText.escape(b.name))</td><td>\(health)</td><td class=\"n\">\(optional(b.inFlight))</td>"
                + "<td class=\"n\">\(optional(b.requests))</td><td class=\"n\">\(optional(b.ejections))</td>"
                + "<td>\(loaded)</td></tr>"
        }
        s += "</tbody></table>"
        let c = now.requestsByClass + Array(repeating: 0, count: max(0, 5 - now.requestsByClass.count))
        s += "<h3>Since start</h3><table class=\"facts\"><tbody>"
        s += fact("Requests", HTMLText.number(c.reduce(0, +)))
        s += fact("Answered 2xx / 3xx", "\(HTMLText.number(c[1])) / \(HTMLText.number(c[2]))")
        s += fact("Refused or failed 4xx / 5xx", "\(HTMLText.number(c[3])) / \(HTMLText.number(c[4]))")
        s += fact("Mean time to first byte",
                  now.meanTTFBSeconds.map { HTMLText.decimal($0 * 1000, places: 1) + " ms" } ?? "–")
        s += fact("Rate limited", HTMLText.number(now.rateLimited))
        s += fact("Refused by the queue", HTMLText.number(now.queueRejected))
        s += fact("Upstream errors", HTMLText.number(now.upstreamErrors))
        if let written = now.ledgerWritten {
            s += fact("Ledger rows written / dropped", "\(HTMLText.number(written)) / \(optional(now.ledgerDropped))")
        }
        return s + "</tbody></table></section>\n"
    }

    static func tile(_ label: String, _ value: String, sub: String? = nil, state: String? = nil) -> String {
        var s = "<div class=\"tile\(state.map { " " + $0 } ?? "")\"><div class=\"label\">\(label)</div>"
            + "<div class=\"value\">\(value)</div>"
        if let sub, !sub.isEmpty { s += "<div class=\"sub\">\(HTMLText.escape(sub))</div>" }
        return s + "</div>"
    }

    static func fact(_ label: String, _ value: String) -> String {
        "<tr><th>\(label)</th><td class=\"n\">\(value)</td></tr>"
    }

    static func optional(_ n: Int?) -> String { n.map(HTMLText.number) ?? "–" }

    // MARK: history

    static func historySection(_ history: History) -> String {
        var s = "<section id=\"history\"><h2>Last 30 days</h2>"
        switch history {
        case .off:
            return s + "<p class=\"muted\">The usage ledger is off (no <code>state-dir</code>, or <code>ledger = off</code>): "
                + "there is no history to show.</p></section>\n"
        case .answer(.unavailable(let why)):
            return s + "<p class=\"bad\">\(HTMLText.escape(why, limit: 400))</p></section>\n"
        case .answer(.history(let h)):
            if h.isEmpty {
                s += "<p class=\"muted\">The usage ledger has no requests in these days yet.</p>"
            }
            s += charts(h)
            return s + "</section>\n"
        }
    }

    static func charts(_ h: StatusHistory) -> String {
        let days = h.days.map(\.day)
        let range = HTMLText.date(day: h.firstDay) + " to " + HTMLText.date(day: h.lastDay) + " (UTC)"
        var s = ""
        let requests = SVGChart(
            title: "Requests per day, " + range, days: days,
            series: [
                .init(label: "answered", color: "#59a14f",
                      values: h.days.map { Double($0.requests) - Double($0.clientErrors) - Double($0.serverErrors) }),
                .init(label: "4xx", color: "#edc948", values: h.days.map { Double($0.clientErrors) }),
                .init(label: "5xx", color: "#e15759", values: h.days.map { Double($0.serverErrors) }),
            ],
            format: { HTMLText.number(Int(clamping: $0)) + " requests" }, emptyText: "no requests in these days")
        s += figure("Requests per day", requests, legend: requests.legend { HTMLText.number(Int(clamping: $0.values.reduce(0, +))) })
        let ttfb = SVGChart(
            title: "Mean time to first byte per day (ms), " + range, days: days,
            series: [.init(label: "mean", color: "#4e79a7", values: h.days.map { $0.meanTTFBMillis ?? 0 })],
            format: { HTMLText.decimal($0, places: 1) + " ms" }, emptyText: "no answered requests in these days")
        s += figure("Time to first token (mean time to first byte of answered requests, ms)", ttfb, legend: "")
        s += tokenChart("Tokens per day by user", h.tokensByUser, days: days, range: range, unnamed: "(no user)")
        s += tokenChart("Tokens per day by model", h.tokensByModel, days: days, range: range, unnamed: "(no model)")
        return s
    }

    static func tokenChart(_ title: String, _ all: [StatusHistory.Series], days: [Int64], range: String,
                           unnamed: String) -> String {
        let shown = StatusHistory.top(all, limit: seriesShown)
        let series = shown.enumerated().map { i, s in
            SVGChart.Series(label: s.isRest ? "others" : s.name ?? unnamed,
                            color: s.isRest ? SVGChart.restColor : SVGChart.palette[i % SVGChart.palette.count],
                            values: s.values.map(Double.init))
        }
        let chart = SVGChart(title: title + ", " + range, days: days, series: series,
                             format: { HTMLText.number(Int(clamping: $0)) + " tokens" }, emptyText: "no tokens in these days")
        return figure(title, chart, legend: chart.legend { HTMLText.number(Int(clamping: $0.values.reduce(0, +))) + " tokens" })
    }

    static func figure(_ caption: String, _ chart: SVGChart, legend: String) -> String {
        "<figure><figcaption>\(HTMLText.escape(caption))</figcaption>\(chart.render())\(legend)</figure>"
    }

    // MARK: quotas

    static func quotaSection(_ quotas: [StatusNow.QuotaUse]) -> String {
        var s = "<section id=\"quotas\"><h2>Quota use</h2>"
        guard !quotas.isEmpty else {
            return s + "<p class=\"muted\">No <code>policy</code> sets a quota.</p></section>\n"
        }
        s += "<table><thead><tr><th>user</th><th>tokens today</th><th>tokens this month</th><th>requests today</th>"
            + "</tr></thead><tbody>"
        for q in quotas {
            s += "<tr><td>\(HTMLText.escape(q.user))</td>"
                + "<td>\(meter(q.spent.dayTokens, q.limits.tokensPerDay))</td>"
                + "<td>\(meter(q.spent.monthTokens, q.limits.tokensPerMonth))</td>"
                + "<td>\(meter(q.spent.dayRequests, q.limits.requestsPerDay))</td></tr>"
        }
        return s + "</tbody></table><p class=\"muted\">UTC days and months, as the quotas count them.</p></section>\n"
    }

    /// `used` against `limit` as a bar and figures; figures alone without a limit.
    static func meter(_ used: Int, _ limit: Int?) -> String {
        guard let limit else { return "\(HTMLText.number(used)) <span class=\"muted\">(no limit)</span>" }
        let fraction = limit > 0 ? min(1, Double(used) / Double(limit)) : 1
        let color = fraction >= 1 ? "#e15759" : fraction >= 0.8 ? "#edc948" : "#59a14f"
        // Rounded down: 99.7% spent is not yet "100%".
        let percent = limit > 0 ? String(Int(clamping: Double(used) * 100 / Double(limit))) + "%" : "–"
        return "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"meter\" viewBox=\"0 0 100 8\" role=\"img\" "
            + "aria-label=\"\(percent)\"><rect width=\"100\" height=\"8\" fill=\"#e8e8e8\"/>"
            + "<rect width=\"\(HTMLText.decimal(fraction * 100, places: 1))\" height=\"8\" fill=\"\(color)\"/></svg> "
            + "\(HTMLText.number(used)) / \(HTMLText.number(limit)) <span class=\"muted\">\(percent)</span>"
    }

    // MARK: style

    static let style = """
        body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;max-width:980px;\
        padding:12px 20px 40px;color:#222;background:#fff}
        h1{font-size:22px;margin:8px 0 0}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #ddd;\
        padding-bottom:4px}h3{font-size:15px;margin:18px 0 6px}
        .muted{color:#666}.ok{color:#2e7d32}.bad{color:#c62828}.warn{color:#a66a00}
        .tiles{display:flex;flex-wrap:wrap;gap:10px}
        .tile{border:1px solid #ddd;border-radius:6px;padding:8px 12px;min-width:130px}
        .tile .label{font-size:12px;color:#666}.tile .value{font-size:22px;font-weight:600}
        .tile .sub{font-size:12px;color:#666}
        .tile.ok{border-left:5px solid #59a14f}.tile.bad{border-left:5px solid #e15759}\
        .tile.warn{border-left:5px solid #edc948}
        table{border-collapse:collapse;margin:4px 0}th,td{text-align:left;padding:3px 12px 3px 0;\
        border-bottom:1px solid #eee;vertical-align:middle}td.n,th.n{text-align:right}
        table.facts th{font-weight:normal;color:#444}
        figure{margin:14px 0 22px}figcaption{font-weight:600;margin-bottom:4px}
        svg.chart{width:100%;max-width:720px;height:auto;display:block}
        svg.chart .grid{stroke:#ddd;stroke-width:1}svg.chart .axis{font-size:11px;fill:#666}
        svg.chart .empty{font-size:13px;fill:#888}
        svg.meter{width:100px;height:8px;vertical-align:middle}
        ul.legend{list-style:none;padding:0;margin:4px 0;display:flex;flex-wrap:wrap;gap:4px 16px;font-size:13px}
        .swatch{display:inline-block;width:10px;height:10px;margin-right:5px;border-radius:2px}
        code{background:#f4f4f4;padding:0 3px;border-radius:3px}
        """
}
