import TollgateHTTP

/// The metrics listener's routes: `GET /metrics` in Prometheus text format, and `GET /status`, the status page
/// (`StatusPage`), for whoever reaches this listener. Other listeners' exchanges go on.
///
/// A scrape first asks `Readiness` whether the upstream accepts requests (the backend set's health, or a connect
/// probe of the single upstream, remembered for a second), so that `tollgate_upstream_up` says whether Ollama is
/// reachable at scrape time even when no request has been sent for hours; the exchange waits for that answer.
struct MetricsEndpoint: ConnectionPhase {
    init?(config: ServerConfig, worker: Worker) {
        if config.metricsListen.isEmpty { return nil }
    }

    func run(_ ex: Exchange, head: RequestHead, on c: ClientConnection) -> PhaseOutcome {
        guard c.kind == .metrics else { return .next }
        let worker = c.worker
        if ex.path == StatusPage.path, ex.method == .get || ex.method == .head {
            return StatusPage.serve(ex, on: c)
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
