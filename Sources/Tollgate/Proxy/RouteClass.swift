import TollgateHTTP

/// What a request path does to Ollama, which decides its body limit (and, with admission control, who may call it).
public enum RouteClass: Sendable, Equatable {
    /// generate, chat, embed(dings), and the OpenAI/Anthropic-compatible equivalents: hold the GPU.
    case inference
    /// `/`, version, tags, ps, show, `/v1/models`.
    case readOnly
    /// pull, push, create, copy, delete: change models on disk.
    case admin
    /// `/api/blobs/{digest}`: raw model uploads, many gigabytes.
    case blobs
    /// `/api/me`, `/api/signout`, `/api/user/…`, `/api/experimental/…`: never for remote users.
    case account
    /// Anything else.
    case unknown

    /// Classifies a request path (without its query), decoded as Ollama decodes it (`RequestTarget`).
    /// Case-sensitive, as gin's router is: `/API/pull` reaches no Ollama handler, so it is `.unknown` here too.
    public static func of(_ buffer: [UInt8], path: Range<Int>) -> RouteClass {
        func eq(_ s: StaticString) -> Bool { HTTPBytes.equals(buffer, path, s) }
        func prefix(_ s: StaticString) -> Bool { HTTPBytes.hasPrefix(buffer, path, s) }
        if eq("/api/generate") || eq("/api/chat") || eq("/api/embed") || eq("/api/embeddings") ||
            eq("/v1/chat/completions") || eq("/v1/completions") || eq("/v1/responses") || eq("/v1/embeddings") ||
            eq("/v1/messages") {
            return .inference
        }
        if eq("/") || eq("/api/version") || eq("/api/tags") || eq("/api/ps") || eq("/api/show") ||
            eq("/v1/models") || prefix("/v1/models/") {
            return .readOnly
        }
        if eq("/api/pull") || eq("/api/push") || eq("/api/create") || eq("/api/copy") || eq("/api/delete") {
            return .admin
        }
        if prefix("/api/blobs/") { return .blobs }
        if eq("/api/me") || eq("/api/signout") || prefix("/api/user/") || prefix("/api/experimental/") {
            return .account
        }
        return .unknown
    }

    /// The body limit for this class (0: none).
    public func bodyLimit(_ limits: BodyLimits) -> Int {
        switch self {
        case .inference: return limits.inference
        case .blobs: return limits.blobs
        default: return limits.other
        }
    }
}
