/// Maps a request to a reply the way Ollama's Gin engine does: CORS origin check, Host check, then the route table
/// (404 "404 page not found" for unknown paths, 405 "405 method not allowed" for known paths with another method).
struct Router {
    let config: FakeOllamaConfig
    /// Ollama only checks `Host` when bound to a loopback address.
    let checksHost: Bool
    let catalog: ModelCatalog

    init(config: FakeOllamaConfig, checksHost: Bool) {
        self.config = config
        self.checksHost = checksHost
        self.catalog = ModelCatalog(model: config.model, extra: config.extraModels, loaded: config.loaded)
    }

    /// The allowed methods per path; `nil` for a path Ollama does not serve.
    static func methods(for path: String) -> [String]? {
        switch path {
        case "/", "/api/version", "/api/tags": return ["GET", "HEAD"]
        case "/api/ps", "/v1/models": return ["GET"]
        case "/api/show", "/api/generate", "/api/chat", "/api/embed", "/api/embeddings", "/api/pull", "/api/push",
             "/api/create", "/api/copy", "/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/responses",
             "/v1/messages":
            return ["POST"]
        case "/api/delete": return ["DELETE"]
        default:
            if path.hasPrefix("/v1/models/") && path.count > "/v1/models/".count { return ["GET"] }
            if path.hasPrefix("/api/blobs/") && path.count > "/api/blobs/".count { return ["HEAD", "POST"] }
            return nil
        }
    }

    /// The reply for `request`.
    func reply(for request: Request) -> Reply {
        var cors: [(String, String)] = []
        if let origin = request.origin, !origin.isEmpty, !isSameOrigin(origin, host: request.host) {
            guard HostCheck.allows(origin: origin) else { return .empty(403) }
            if request.method == "OPTIONS" {
                return .empty(204, headers: [
                    ("Access-Control-Allow-Headers", "Authorization,Content-Type,User-Agent,Accept,X-Requested-With,"
                        + "OpenAI-Beta,x-stainless-arch,x-stainless-async,x-stainless-custom-poll-interval,"
                        + "x-stainless-helper-method,x-stainless-lang,x-stainless-os,x-stainless-package-version,"
                        + "x-stainless-poll-helper,x-stainless-retry-count,x-stainless-runtime,"
                        + "x-stainless-runtime-version,x-stainless-timeout"),
                    ("Access-Control-Allow-Methods", "GET,POST,PUT,PATCH,DELETE,HEAD,OPTIONS"),
                    ("Access-Control-Allow-Origin", origin),
                    ("Access-Control-Max-Age", "43200"),
                    ("Vary", "Origin"), ("Vary", "Access-Control-Request-Method"),
                    ("Vary", "Access-Control-Request-Headers"),
                ])
            }
            cors = [("Access-Control-Allow-Origin", origin), ("Vary", "Origin")]
        }
        if checksHost {
            guard HostCheck.allows(host: request.host) else { return .empty(403) }
            if request.method == "OPTIONS" { return .empty(204) }
        }
        let reply = route(request)
        if cors.isEmpty { return reply }
        switch reply {
        case .fixed(let status, let headers, let body): return .fixed(status: status, headers: headers + cors, body: body)
        case .stream(let headers, let lines, let flushing, let makeLine):
            return .stream(headers: headers + cors, lines: lines, flushing: flushing, makeLine: makeLine)
        }
    }

    private func isSameOrigin(_ origin: String, host: String?) -> Bool {
        guard let host else { return false }
        return origin == "http://" + host || origin == "https://" + host
    }

    private func route(_ request: Request) -> Reply {
        guard let allowed = Self.methods(for: request.path) else {
            return .fixed(status: 404, headers: [("Content-Type", "text/plain")], body: Array("404 page not found".utf8))
        }
        guard allowed.contains(request.method) else {
            return .fixed(status: 405, headers: [("Content-Type", "text/plain")],
                          body: Array("405 method not allowed".utf8))
        }
        let path = request.path
        switch path {
        case "/": return .text(200, "Ollama is running")
        case "/api/version": return version()
        case "/api/tags": return tags()
        case "/api/ps": return ps()
        case "/api/show": return show(request)
        case "/api/generate": return generate(request)
        case "/api/chat": return chat(request)
        case "/api/embed": return embed(request)
        case "/api/embeddings": return embeddings(request)
        case "/api/pull": return pull(request)
        case "/api/push", "/api/create": return adminProgress(request)
        case "/api/copy": return copyModel(request)
        case "/api/delete": return deleteModel(request)
        case "/v1/chat/completions": return openAIChat(request)
        case "/v1/completions": return openAICompletion(request)
        case "/v1/embeddings": return openAIEmbeddings(request)
        case "/v1/models": return openAIModels()
        case "/v1/responses": return openAIResponses(request)
        case "/v1/messages": return anthropicMessages(request)
        default:
            if path.hasPrefix("/v1/models/") { return openAIModel(String(path.dropFirst("/v1/models/".count))) }
            return request.method == "HEAD" ? .empty(404) : .empty(201)  // /api/blobs/:digest
        }
    }
}
