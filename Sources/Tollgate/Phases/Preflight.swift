import TollgateHTTP

/// CORS preflights (OPTIONS with Origin and Access-Control-Request-Method) are answered here, before
/// authentication: 204 for a configured origin, 403 for any other (with no origins configured, every one). The
/// status page's path is not answered here (`CORS.isStatusPage`): its OPTIONS goes on like any other request, to
/// authentication (401 without credentials, which a preflight never carries) and the route policy (no such route).
final class Preflight: ConnectionPhase {
    let origins: [String]

    init?(config: ServerConfig, worker: Worker) {
        origins = config.corsOrigins
    }

    var readsHead: Bool { true }

    func run(_ ex: Exchange, head: RequestHead, on c: ClientConnection) -> PhaseOutcome {
        guard head.method == .options, !CORS.isStatusPage(ex) else { return .next }
        let input = c.input.bytes
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
        guard hasOrigin, requestedMethod != nil else { return .next }
        guard let origin = CORS.allowedOrigin(head, in: input, origins: origins) else {
            return .answer(ErrorResponse(status: 403, message: "origin not allowed"), .rejected)
        }
        let headers = [("Access-Control-Allow-Methods", "GET, HEAD, POST, DELETE, OPTIONS"),
                       ("Access-Control-Allow-Headers", requestedHeaders ?? "Authorization, Content-Type"),
                       ("Access-Control-Max-Age", "600")]
        ex.corsOrigin = origin
        return .reply(PhaseOutcome.Reply(status: 204, headers: headers, body: nil))
    }
}
