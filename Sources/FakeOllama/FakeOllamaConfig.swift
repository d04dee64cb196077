/// How a `FakeOllamaServer` listens and what it generates.
public struct FakeOllamaConfig: Sendable {
    /// Address to listen on: an IPv4/IPv6 literal (brackets optional) or a name such as "localhost".
    /// When it is a loopback address the server applies Ollama's Host check (403 for foreign Host headers).
    public var host: String = "127.0.0.1"
    /// Port to listen on; 0 picks a free one (read it back from `FakeOllamaServer.port`).
    public var port: UInt16 = 11434
    /// Tokens per generation unless the request's `options.num_predict` (or OpenAI `max_tokens`) says otherwise.
    public var tokens: Int = 10
    /// Pause between streamed lines, in milliseconds (0: as fast as possible).
    public var intervalMs: Int = 0
    /// The one model the server has "pulled"; other names get Ollama's 404.
    public var model: String = "mistral:7b"
    /// Whether to keep every request for `FakeOllamaServer.requests`. Turn off for long benchmarks, where the
    /// list would grow without bound; counts (`waitForRequests`) still work.
    public var recordRequests: Bool = true

    /// Memberwise, every parameter defaulted.
    public init(host: String = "127.0.0.1", port: UInt16 = 11434, tokens: Int = 10, intervalMs: Int = 0,
                model: String = "mistral:7b", recordRequests: Bool = true) {
        self.host = host
        self.port = port
        self.tokens = tokens
        self.intervalMs = intervalMs
        self.model = model
        self.recordRequests = recordRequests
    }
}
