import TollgateHTTP

/// The metrics listener's only route: `GET /metrics` in Prometheus text format. Other listeners' exchanges go on.
struct MetricsEndpoint: ConnectionPhase {
    init?(config: ServerConfig, worker: Worker) {
        if config.metricsListen.isEmpty { return nil }
    }

    func run(_ ex: Exchange, head: RequestHead, on c: ClientConnection) -> PhaseOutcome {
        guard c.kind == .metrics else { return .next }
        let worker = c.worker
        guard ex.path == "/metrics", ex.method == .get || ex.method == .head, let metrics = worker.metrics else {
            return .reply(.json(404, #"{"error":"the metrics listener serves GET /metrics only"}"#))
        }
        let backends = worker.peers.metricsText()
        let text = metrics.render(values: worker.scrapeValues()) + worker.limitsMetrics + backends
            + (worker.ledger?.metricsText() ?? "") + ProcessMetrics.text()
        return .reply(.json(200, text, contentType: "text/plain; version=0.0.4; charset=utf-8"))
    }
}
