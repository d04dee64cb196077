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
        // The exact paths by length first: most requests cost one or two comparisons.
        switch path.count {
        case 1: if eq("/") { return .readOnly }
        case 7:
            if eq("/api/ps") { return .readOnly }
            if eq("/api/me") { return .account }
        case 9:
            if eq("/api/chat") { return .inference }
            if eq("/api/tags") || eq("/api/show") { return .readOnly }
            if eq("/api/pull") || eq("/api/push") || eq("/api/copy") { return .admin }
        case 10:
            if eq("/api/embed") { return .inference }
            if eq("/v1/models") { return .readOnly }
        case 11:
            if eq("/api/create") || eq("/api/delete") { return .admin }
        case 12:
            if eq("/v1/messages") { return .inference }
            if eq("/api/version") { return .readOnly }
            if eq("/api/signout") { return .account }
        case 13:
            if eq("/api/generate") || eq("/v1/responses") { return .inference }
        case 14:
            if eq("/v1/embeddings") { return .inference }
        case 15:
            if eq("/api/embeddings") || eq("/v1/completions") { return .inference }
        case 20:
            if eq("/v1/chat/completions") { return .inference }
        default:
            break
        }
        if prefix("/v1/models/") { return .readOnly }
        if prefix("/api/blobs/") { return .blobs }
        if prefix("/api/user/") || prefix("/api/experimental/") { return .account }
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
