import Glibc
import TollgateHTTP

/// The metrics listener's routes: `GET /metrics` in Prometheus text format, and `GET /status`, the status page
/// (`StatusPage`), for whoever reaches this listener. Other listeners' exchanges go on.
///
/// A scrape first asks `Readiness` whether the upstream accepts requests (the backend set's health, or a connect
/// probe of the single upstream, remembered for a second), so that `tollgate_upstream_up` says whether Ollama is
/// reachable at scrape time even when no request has been sent for hours; the exchange waits for that answer.
///
/// The status page lists every user's spending, and a browser is what reads it: it is answered only for a Host
/// that names this machine (an IP address, `localhost`, the host's name, an `acme-domain`), else 421. A web page
/// that rebinds its own name to the listener's address (DNS rebinding) reaches the listener from the operator's
/// browser, but with its own name as Host. `/metrics` answers any Host: a Prometheus may scrape by any name.
final class MetricsEndpoint: ConnectionPhase {
    /// The names (lower case) the status page answers for besides IP addresses and `localhost`.
    let names: Set<String>

    init?(config: ServerConfig, worker: Worker) {
        if config.metricsListen.isEmpty { return nil }
        names = Set((config.acmeDomains + [MetricsEndpoint.hostName()].compactMap { $0 }).map { $0.lowercased() })
    }

    func run(_ ex: Exchange, head: RequestHead, on c: ClientConnection) -> PhaseOutcome {
        guard c.kind == .metrics else { return .next }
        let worker = c.worker
        if ex.path == StatusPage.path, ex.method == .get || ex.method == .head {
            let input = c.input.bytes
            let authority = MetricsEndpoint.authority(of: input[head.target])
            for host in [head.host.map { input[$0] }, authority].compactMap({ $0 })
            where !MetricsEndpoint.names(host, thisMachine: names) {
                let shown = String(decoding: host.prefix(100), as: UTF8.self)
                return .answer(ErrorResponse(status: 421, message: "\(StatusPage.path) answers only for this machine's "
                                             + "addresses and names (an IP address, localhost, the host name, an "
                                             + "acme-domain), not for \"\(shown)\": open it by the listener's address"),
                               .rejected)
            }
            return StatusPage.serve(ex, on: c, for: .metricsListener)
        }
        guard ex.path == "/metrics", ex.method == .get || ex.method == .head, worker.metrics != nil else {
            return .reply(.json(404, #"{"error":"the metrics listener serves GET /metrics and GET /status only"}"#))
        }
        worker.readiness.check { up, _ in
            ex.phases.resume(ex, on: c) { MetricsEndpoint.scrape(worker, upstreamUp: up) }
        }
        return .wait
    }

    /// The whole exposition: this server's counters and gauges, the limits', the backends', the ledger's, the
    /// quotas' and the process's.
    static func scrape(_ worker: Worker, upstreamUp: Bool) -> PhaseOutcome {
        guard let metrics = worker.metrics else { return .reply(.json(404, #"{"error":"no metrics"}"#)) }
        var values = worker.scrapeValues()
        values.append(.gauge("tollgate_upstream_up", "Whether Ollama accepts requests at scrape time (1) or not (0): "
                             + "a backend is healthy, or the single upstream accepts a connection.", upstreamUp ? 1 : 0))
        let quotas = worker.quotaBook.map { QuotaMetrics.text(book: $0, policies: worker.config.policies) } ?? ""
        let text = metrics.render(values: values) + worker.limitsMetrics + worker.peers.metricsText()
            + (worker.ledger?.metricsText() ?? "") + quotas + ProcessMetrics.text()
        return .reply(.json(200, text, contentType: "text/plain; version=0.0.4; charset=utf-8"))
    }
}

extension MetricsEndpoint {
    /// Whether `host` (a Host field, or an absolute-form target's authority: a name or address, then an optional
    /// port) names this machine: an IPv4 or bracketed IPv6 address, `localhost` or a name under it, or one of
    /// `names` (lower case; a trailing dot ignored).
    static func names(_ host: ArraySlice<UInt8>, thisMachine names: Set<String>) -> Bool {
        var text = String(decoding: host, as: UTF8.self).lowercased()
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return false }
            let rest = text[text.index(after: close)...]
            guard rest.isEmpty || (rest.hasPrefix(":") && rest.dropFirst().allSatisfy(\.isNumber)) else { return false }
            var address = in6_addr()
            return inet_pton(AF_INET6, String(text[text.index(after: text.startIndex)..<close]), &address) == 1
        }
        if let colon = text.lastIndex(of: ":") {
            guard text[text.index(after: colon)...].allSatisfy(\.isNumber) else { return false }
            text = String(text[..<colon])
        }
        if text.hasSuffix(".") { text.removeLast() }
        var address = in_addr()
        if inet_pton(AF_INET, text, &address) == 1 { return true }
        return text == "localhost" || text.hasSuffix(".localhost") || names.contains(text)
    }

    /// The authority of an absolute-form target (`http://host:port/path`); nil for origin-form.
    static func authority(of target: ArraySlice<UInt8>) -> ArraySlice<UInt8>? {
        guard target.first != UInt8(ascii: "/"), let colon = target.firstIndex(of: UInt8(ascii: ":")),
              target[colon...].starts(with: "://".utf8) else { return nil }
        let start = colon + 3
        let end = target[start...].firstIndex { $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: "?") } ?? target.endIndex
        return target[start..<end]
    }

    /// This machine's host name; nil when it has none.
    static func hostName() -> String? {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return nil }
        let name = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return name.isEmpty ? nil : name
    }
}
