import TollgateHTTP

/// Which API a request belongs to, which decides the shape of every error Tollgate answers itself.
public enum APIFamily: Sendable, Equatable {
    /// `/api/*` and `/`: `{"error": "..."}`
    case ollama
    /// `/v1/*`: `{"error": {"message", "type", "param", "code"}}`
    case openAI
    /// `/v1/messages`: `{"type": "error", "error": {"type", "message"}}`
    case anthropic

    /// Classifies a request path.
    public static func of(path: [UInt8], _ range: Range<Int>) -> APIFamily {
        if HTTPBytes.hasPrefixLowercased(path, range, "/v1/messages") { return .anthropic }
        if HTTPBytes.hasPrefixLowercased(path, range, "/v1/") || HTTPBytes.equalsLowercased(path, range, "/v1") {
            return .openAI
        }
        return .ollama
    }
}
