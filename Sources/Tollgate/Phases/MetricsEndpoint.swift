/// The metrics listener's only route: `GET /metrics` in Prometheus text format.
extension ClientConnection {
    func serveMetrics(_ ex: Exchange) {
        guard ex.path == "/metrics", ex.method == .get || ex.method == .head, let metrics = worker.metrics else {
            respondJSON(ex, status: 404, body: #"{"error":"the metrics listener serves GET /metrics only"}"#)
            return
        }
        let backends = worker.backends?.prometheusText() ?? ""
        let shared = worker.shared?.status.renderMetrics() ?? ""
        respondJSON(ex, status: 200, body: metrics.render(gauges: worker.gauges()) + backends + shared,
                    contentType: "text/plain; version=0.0.4; charset=utf-8")
    }
}
