import TollgateHTTP

/// CORS at the proxy: Ollama refuses origins it does not know, and `Origin` never reaches it. A request from a
/// configured origin gets `Access-Control-Allow-Origin` on its response (preflights are answered by `Preflight`).
/// The status page gets none: it is read by a browser on its own origin, and a configured origin (an application
/// calling the API) has no business reading every user's spending with an administrator's credentials.
final class CORS: ConnectionPhase {
    let origins: [String]

    init?(config: ServerConfig, worker: Worker) {
        if config.corsOrigins.isEmpty { return nil }
        origins = config.corsOrigins
    }

    var readsHead: Bool { true }

    func run(_ ex: Exchange, head: RequestHead, on c: ClientConnection) -> PhaseOutcome {
        guard !CORS.isStatusPage(ex) else { return .next }
        ex.corsOrigin = CORS.allowedOrigin(head, in: c.input.bytes, origins: origins)
        return .next
    }

    /// Whether `ex` is for the status page (`StatusPage.path`), which takes no part in CORS: no headers on its
    /// answers, and a preflight for it goes on as any other request of its method would.
    static func isStatusPage(_ ex: Exchange) -> Bool {
        ex.route == .unknown && ex.path == StatusPage.path
    }

    /// The request's Origin if `origins` allows it, else nil.
    static func allowedOrigin(_ head: RequestHead, in input: [UInt8], origins: [String]) -> String? {
        guard !origins.isEmpty else { return nil }
        for field in head.headers where field.kind == .origin {
            let origin = String(decoding: input[field.value], as: UTF8.self)
            if origins.contains("*") || origins.contains(origin) { return origin }
            return nil
        }
        return nil
    }
}
