import TollgateHTTP

/// The route-policy phase: what a route accepts before anything reaches the upstream.
///
/// Today: the per-route body limit (413 before the body is read, when Content-Length already says too much).
/// Chunked bodies are counted as they stream and stopped at the same limit.
enum RoutePolicy {
    static func check(exchange ex: Exchange) -> ErrorResponse? {
        if ex.bodyLimit > 0, case .length(let n) = ex.body, n > ex.bodyLimit {
            return .tooLarge(limit: ex.bodyLimit)
        }
        return nil
    }
}
