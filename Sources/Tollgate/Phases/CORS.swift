import TollgateHTTP

/// CORS at the proxy: Ollama refuses origins it does not know, and `Origin` never reaches it. Preflights from a
/// configured origin are answered here without authentication; responses to such origins carry
/// `Access-Control-Allow-Origin`.
extension ClientConnection {
    /// The request's Origin if it is allowed, else nil.
    func allowedOrigin(_ head: RequestHead) -> String? {
        let origins = worker.config.corsOrigins
        guard !origins.isEmpty else { return nil }
        for field in head.headers where field.kind == .origin {
            let origin = String(decoding: input[field.value], as: UTF8.self)
            if origins.contains("*") || origins.contains(origin) { return origin }
            return nil
        }
        return nil
    }

    /// Credentials are allowed for origins named in the config, never for the "*" wildcard.
    func corsCredentials(_ ex: Exchange) -> Bool {
        guard let origin = ex.corsOrigin else { return false }
        return worker.config.corsOrigins.contains(origin)
    }

    /// Answers an OPTIONS preflight; returns false when the request is not one.
    func answerPreflight(_ ex: Exchange, head: RequestHead) -> Bool {
        guard head.method == .options else { return false }
        var requestedMethod: String?
        var requestedHeaders: String?
        var hasOrigin = false
        for field in head.headers {
            if field.kind == .origin { hasOrigin = true }
            if HTTPBytes.equalsLowercased(input, field.name, "access-control-request-method") {
                requestedMethod = String(decoding: input[field.value], as: UTF8.self)
            }
            if HTTPBytes.equalsLowercased(input, field.name, "access-control-request-headers") {
                requestedHeaders = String(decoding: input[field.value], as: UTF8.self)
            }
        }
        guard hasOrigin, requestedMethod != nil else { return false }
        guard let origin = allowedOrigin(head) else {
            respond(ex, ErrorResponse(status: 403, message: "origin not allowed"), reason: .rejected)
            return true
        }
        let headers = [("Access-Control-Allow-Methods", "GET, HEAD, POST, DELETE, OPTIONS"),
                       ("Access-Control-Allow-Headers", requestedHeaders ?? "Authorization, Content-Type"),
                       ("Access-Control-Max-Age", "600")]
        ex.corsOrigin = origin
        answer(ex, status: 204, headers: headers, body: nil, reason: .completed)
        return true
    }
}
