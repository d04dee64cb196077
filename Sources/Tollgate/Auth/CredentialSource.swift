/// Which header carried the credentials, for logs and metrics.
public enum CredentialSource: Sendable, Equatable {
    /// `Authorization: Basic base64(user:password)` (curl, browsers, httpx, ollama-python).
    case basic
    /// `Authorization: Bearer user:password` (OpenAI SDKs, `OLLAMA_API_KEY`).
    case bearer
    /// `x-api-key: user:password` (Anthropic SDKs).
    case apiKey
}
