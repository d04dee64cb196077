extension BackendSet {
    /// The per-backend series in Prometheus text format, labelled by backend (its Host form).
    func prometheusText() -> String {
        let backends = snapshot
        var s = ""
        func series(_ name: String, _ type: String, _ help: String, _ value: (Snapshot) -> Int) {
            s += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
            for b in backends { s += "\(name){backend=\(Metrics.label(b.name))} \(value(b))\n" }
        }
        series("tollgate_backend_healthy", "gauge", "1 while the backend gets requests, 0 while it is ejected.") { $0.healthy ? 1 : 0 }
        series("tollgate_backend_in_flight", "gauge", "Inference requests in flight on the backend.") { $0.inFlight }
        series("tollgate_backend_requests_total", "counter", "Requests sent to the backend (every route, failovers included).") { $0.requests }
        series("tollgate_backend_ejections_total", "counter", "Times the backend was ejected after consecutive failures.") { $0.ejections }
        s += "# HELP tollgate_backend_failovers_total Requests sent again to another backend after a failure before any response byte.\n"
        s += "# TYPE tollgate_backend_failovers_total counter\ntollgate_backend_failovers_total \(failovers)\n"
        s += "# HELP tollgate_backend_queued Requests waiting for a backend with room.\n"
        s += "# TYPE tollgate_backend_queued gauge\ntollgate_backend_queued \(queued)\n"
        return s
    }
}
