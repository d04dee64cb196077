import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing
@testable import Tollgate

/// The status page's HTML: user-controlled names are escaped, an empty or missing ledger reads plainly, every chart
/// is well-formed SVG (read back with Foundation's XML parser), and the page names nothing to fetch and no script.
@Suite struct StatusPageRendererTests {
    // 2026-03-15 12:00:00 UTC: day 20527.
    static let noon: Int64 = 1_773_576_000_000
    static let today: Int64 = 20_527

    static let hostileUser = "<script>alert(\"u\")</script>&'"
    static let hostileModel = "\"><img src=x onerror=alert(1)>\u{1}"

    static func now(quotas: [StatusNow.QuotaUse] = [], expiry: Int64? = nil) -> StatusNow {
        StatusNow(time: noon, upstreamUp: true,
                  backends: [.init(name: "10.0.0.5:11434", healthy: true, inFlight: 1, requests: 9, ejections: 0,
                                   loaded: [hostileModel]),
                             .init(name: "10.0.0.6:11434", healthy: false, inFlight: 0, requests: 2, ejections: 1,
                                   loaded: [])],
                  backendQueue: 0, inFlight: 1, queued: 2, openConnections: 3, certificateExpiry: expiry,
                  requestsByClass: [0, 10, 0, 2, 1], meanTTFBSeconds: 0.0425, ledgerWritten: 13, ledgerDropped: 0,
                  quotas: quotas)
    }

    /// The history the reader builds from these days, users and models (the renderer's names at most).
    static func history(_ days: [UsageDayTotals], users: [UsageDayTokens] = [],
                        models: [UsageDayTokens] = []) -> StatusPageRenderer.History {
        .answer(.history(StatusHistory(firstDay: today - 29, lastDay: today, days: days, users: users, models: models,
                                       limit: StatusPageRenderer.seriesShown)))
    }

    static let days = [
        UsageDayTotals(day: today - 2, requests: 4, clientErrors: 1, tokens: 400, ttfbMicrosSum: 90_000, ttfbCount: 3),
        UsageDayTotals(day: today, requests: 3, serverErrors: 1, tokens: 50, ttfbMicrosSum: 20_000, ttfbCount: 1),
    ]
    static let users = [UsageDayTokens(day: today - 2, name: "alice", tokens: 400),
                        UsageDayTokens(day: today, name: hostileUser, tokens: 50)]
    static let models = [UsageDayTokens(day: today - 2, name: "mistral:7b", tokens: 400),
                         UsageDayTokens(day: today, name: hostileModel, tokens: 50)]
    static let sample = history(days, users: users, models: models)

    @Test func userAndModelNamesAreEscaped() throws {
        let quota = StatusNow.QuotaUse(user: Self.hostileUser, spent: Spending(dayTokens: 50, monthTokens: 450, dayRequests: 2),
                                       limits: QuotaLimits(tokensPerDay: 100))
        let page = StatusPageRenderer.render(now: Self.now(quotas: [quota]), history: Self.sample)
        #expect(!page.contains("<script"))
        #expect(!page.contains("<img"))
        #expect(!page.contains("alert(\"u\")"))
        #expect(page.contains("&lt;script&gt;alert(&quot;u&quot;)&lt;/script&gt;&amp;&#39;"))
        #expect(page.contains("&quot;&gt;&lt;img src=x onerror=alert(1)&gt;\u{FFFD}"))
        try Self.parseXML(page)
    }

    @Test func longNamesAreCut() {
        #expect(HTMLText.escape(String(repeating: "m", count: 500)) == String(repeating: "m", count: 120) + "…")
        #expect(HTMLText.escape("a<b", limit: 2) == "a&lt;…")
    }

    /// A name that reads as another: a right-to-left override makes `x‮b7:lartsim` read `xmistral:7b`. What is
    /// not seen but changes what is seen is shown by its code; other scripts and emoji are shown as they are.
    @Test func invisibleCharactersAreShownByTheirCode() {
        #expect(HTMLText.escape("x\u{202E}b7:lartsim") == "x[U+202E]b7:lartsim")
        #expect(HTMLText.escape("a\u{200B}b\u{2066}c\u{00AD}d\u{2028}e\u{0085}f\u{FEFF}") ==
                "a[U+200B]b[U+2066]c[U+00AD]d[U+2028]e[U+0085]f[U+FEFF]")
        #expect(HTMLText.escape("qwen2:7b 通义 ÉTÉ 😀") == "qwen2:7b 通义 ÉTÉ 😀")
        // Blanks that draw as nothing, or as a space that is not one.
        #expect(HTMLText.escape("m\u{3164}i\u{2800}s\u{00A0}t\u{034F}r\u{FE0F}a\u{115F}l") ==
                "m[U+3164]i[U+2800]s[U+00A0]t[U+034F]r[U+FE0F]a[U+115F]l")
        #expect(HTMLText.escape("nul\u{0}x") == "nul\u{FFFD}x")
    }

    @Test func anEmptyLedgerSaysSo() throws {
        let page = StatusPageRenderer.render(now: Self.now(), history: Self.history([]))
        #expect(page.contains("The usage ledger has no requests in these days yet."))
        #expect(page.contains("no requests in these days"))
        #expect(page.contains("no tokens in these days"))
        #expect(page.contains("No <code>policy</code> sets a quota."))
        let charts = Self.svgElements(page)
        #expect(charts.count == 4)
        for chart in charts {
            try Self.parseXML(chart)
            #expect(!chart.contains("<rect"), "an empty chart draws no bar")
        }
    }

    @Test func aLedgerThatIsOffOrUnreadableSaysSo() throws {
        let off = StatusPageRenderer.render(now: Self.now(), history: .off)
        #expect(off.contains("The usage ledger is off"))
        #expect(Self.svgElements(off).isEmpty)
        try Self.parseXML(off)
        let failing = StatusPageRenderer.render(now: Self.now(), history: .answer(.unavailable("cannot open <x>")))
        #expect(failing.contains("cannot open &lt;x&gt;"))
        try Self.parseXML(failing)
    }

    @Test func chartsAreWellFormedSVGWithABarPerDayAndSeries() throws {
        let page = StatusPageRenderer.render(now: Self.now(), history: Self.sample)
        let charts = Self.svgElements(page)
        #expect(charts.count == 4)
        for chart in charts { try Self.parseXML(chart) }
        // Requests: day -2 has answered and 4xx, today has answered and 5xx.
        #expect(Self.count("<rect", in: charts[0]) == 4)
        #expect(charts[0].contains("<title>2026-03-13 · answered: 3 requests</title>"))
        #expect(charts[0].contains("<title>2026-03-15 · 5xx: 1 requests</title>"))
        // Time to first byte: the means of the two days with answered requests.
        #expect(Self.count("<rect", in: charts[1]) == 2)
        #expect(charts[1].contains("<title>2026-03-13 · mean: 30.0 ms</title>"))
        // Tokens by user and by model: one bar each day a name used tokens.
        #expect(Self.count("<rect", in: charts[2]) == 2)
        #expect(charts[2].contains("· alice: 400 tokens</title>"))
        #expect(Self.count("<rect", in: charts[3]) == 2)
        #expect(page.contains("mistral:7b <span class=\"muted\">400 tokens</span>"))
        // Axis labels: the first, middle and last day.
        #expect(charts[0].contains(">02-14</text>") && charts[0].contains(">03-15</text>"))
    }

    @Test func thePageNamesNothingToFetchAndNoScript() throws {
        let page = StatusPageRenderer.render(now: Self.now(expiry: Self.noon / 1000 + 40 * 86_400),
                                             history: Self.sample)
        #expect(!page.lowercased().contains("<script"))
        #expect(!page.contains(" src=\""), "no src attribute (the escaped model name has src=x as text)")
        #expect(!page.contains("url("))
        #expect(!page.contains("@import"))
        // Every URL is the SVG namespace's name (never fetched) or the empty data: icon.
        let withoutNamespace = page.replacingOccurrences(of: "xmlns=\"http://www.w3.org/2000/svg\"", with: "")
        #expect(!withoutNamespace.contains("http:") && !withoutNamespace.contains("https:"))
        let hrefs = page.components(separatedBy: "href=\"").dropFirst().map { $0.prefix(while: { $0 != "\"" }) }
        #expect(hrefs == ["data:,"])
        #expect(StatusPageRenderer.contentSecurityPolicy == "default-src 'none'; style-src 'unsafe-inline'; img-src data:")
    }

    @Test func theCertificateTileWarnsAsExpiryNears() {
        func tile(_ days: Int64) -> String {
            StatusPageRenderer.render(now: Self.now(expiry: Self.noon / 1000 + days * 86_400 + 60), history: .off)
        }
        #expect(tile(40).contains("<div class=\"tile ok\"><div class=\"label\">Certificate</div><div class=\"value\">40 days</div>"))
        #expect(tile(10).contains("<div class=\"tile warn\"><div class=\"label\">Certificate</div><div class=\"value\">10 days</div>"))
        #expect(tile(1).contains("<div class=\"tile bad\"><div class=\"label\">Certificate</div><div class=\"value\">1 day</div>"))
        #expect(tile(-2).contains("<div class=\"value\">expired</div>"))
        #expect(!StatusPageRenderer.render(now: Self.now(), history: .off).contains(">Certificate<"))
    }

    @Test func nowShowsTheScrapesFigures() {
        let page = StatusPageRenderer.render(now: Self.now(), history: .off)
        #expect(page.contains("<div class=\"tile ok\"><div class=\"label\">Ollama</div><div class=\"value\">up</div>"))
        #expect(page.contains("<div class=\"label\">In flight</div><div class=\"value\">1</div>"))
        #expect(page.contains("<div class=\"tile warn\"><div class=\"label\">Queued for a slot</div><div class=\"value\">2</div>"))
        #expect(page.contains("<td>10.0.0.6:11434</td><td><span class=\"bad\">ejected</span></td>"))
        #expect(page.contains("<tr><th>Requests</th><td class=\"n\">13</td></tr>"))
        #expect(page.contains("<tr><th>Mean time to first byte</th><td class=\"n\">42.5 ms</td></tr>"))
        var down = Self.now()
        down.upstreamUp = false
        down.upstreamDetail = "connection refused"
        #expect(StatusPageRenderer.render(now: down, history: .off)
            .contains("<div class=\"tile bad\"><div class=\"label\">Ollama</div><div class=\"value\">down</div><div class=\"sub\">connection refused</div>"))
    }

    @Test func quotaMetersShowUseAgainstTheLimit() throws {
        let quotas = [
            StatusNow.QuotaUse(user: "alice", spent: Spending(dayTokens: 900, monthTokens: 10, dayRequests: 3),
                               limits: QuotaLimits(tokensPerDay: 1000, requestsPerDay: 3)),
            StatusNow.QuotaUse(user: "bob", spent: Spending(), limits: QuotaLimits(tokensPerMonth: 5000)),
        ]
        let page = StatusPageRenderer.render(now: Self.now(quotas: quotas), history: .off)
        try Self.parseXML(page)
        #expect(page.contains("<rect width=\"90.0\" height=\"8\" fill=\"#edc948\"/></svg> 900 / 1,000 <span class=\"muted\">90%</span>"))
        #expect(page.contains("<rect width=\"100.0\" height=\"8\" fill=\"#e15759\"/></svg> 3 / 3"))
        #expect(page.contains("<td>bob</td><td>0 <span class=\"muted\">(no limit)</span></td>"))
    }

    @Test func quotaRowsFollowThePolicies() throws {
        let policies = try ServerConfig(resolved: ConfigResolver.resolve(
            flags: ["policy": ["* tokens-per-day=100", "bob requests-per-day=5", "carol models=mistral"]],
            environment: [:], file: nil), cores: 1).policies
        let uses = StatusNow.quotaUses(spent: ["alice": Spending(dayTokens: 7)], policies: policies)
        #expect(uses.map(\.user) == ["alice", "bob", "carol"])
        #expect(uses[1].limits == QuotaLimits(tokensPerDay: 100, requestsPerDay: 5))
        #expect(StatusNow.quotaUses(spent: ["alice": Spending()], policies: PolicyTable()).isEmpty)
    }

    @Test func numbersAndDatesReadWell() {
        #expect(HTMLText.number(1_234_567) == "1,234,567")
        #expect(HTMLText.number(999) == "999")
        #expect(HTMLText.compact(1500) == "1.5k")
        #expect(HTMLText.compact(25_000_000) == "25M")
        #expect(HTMLText.compact(0.5) == "0.5")
        #expect(HTMLText.time(millis: Self.noon + 61_000) == "2026-03-15 12:01:01 UTC")
        #expect(SVGChart.niceCeiling(0) == 1)
        #expect(SVGChart.niceCeiling(7) == 10)
        #expect(SVGChart.niceCeiling(101) == 200)
        #expect(SVGChart.niceCeiling(2400) == 2500)
    }

    // MARK: helpers

    /// Every `<svg …>…</svg>` element of `page`, charts and meters alike, charts (class "chart") only.
    static func svgElements(_ page: String) -> [String] {
        page.components(separatedBy: "<svg ").dropFirst().compactMap { rest -> String? in
            guard rest.hasPrefix("xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\""),
                  let end = rest.range(of: "</svg>") else { return nil }
            return "<svg " + rest[..<end.upperBound]
        }
    }

    static func count(_ needle: String, in text: String) -> Int {
        text.components(separatedBy: needle).count - 1
    }

    /// Parses `text` as XML, failing the test with the parser's error and position.
    static func parseXML(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let parser = XMLParser(data: Data(text.utf8))
        let ok = parser.parse()
        let why = "not well-formed: \(parser.parserError.map { "\($0)" } ?? "?") at line \(parser.lineNumber), "
            + "column \(parser.columnNumber)"
        #expect(ok, Comment(rawValue: why), sourceLocation: sourceLocation)
    }
}
