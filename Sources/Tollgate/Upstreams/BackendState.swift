/// What the backend set knows about one Ollama backend. Plain value inside `BackendSetState`.
struct BackendState: Sendable {
    /// "10.0.0.5:11434": its Host header, also its name in logs and metric labels.
    let name: String
    /// Inference requests it may have in flight; nil is unlimited.
    let limit: Int?
    /// Inference requests in flight on it now.
    var inFlight = 0
    /// False once ejected (consecutive failures), true again after one successful check.
    var healthy = true
    /// Consecutive failed checks or proxied connection failures.
    var failures = 0
    /// Normalized model names from /api/tags; nil until the first successful poll.
    var models: Set<String>?
    /// The entries of its last readable /api/tags answer, as sent; nil until one was read.
    var listing: [ModelEntry]?
    /// Normalized model names from /api/ps.
    var loaded: Set<String> = []
    /// Requests sent to it (every route).
    var requests = 0
    /// Times it was ejected.
    var ejections = 0

    init(name: String, limit: Int?) {
        self.name = name
        self.limit = limit
    }

    /// Whether one more counted request fits.
    var hasRoom: Bool { limit.map { inFlight < $0 } ?? true }

    /// in-flight / max, for least-loaded selection (an unlimited backend counts its in-flight over a large max).
    var load: Double { Double(inFlight) / Double(limit ?? 1_000_000) }

    /// Whether it may serve `model` (nil: any): the model is in its catalog, or the catalog is not known yet.
    func mayServe(_ model: String?) -> Bool {
        guard let model, let models else { return true }
        return models.contains(model)
    }
}
