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
    /// The first model the server has "pulled"; names not in `model` or `extraModels` get Ollama's 404.
    public var model: String = "mistral:7b"
    /// More pulled models, listed after `model` in /api/tags (fake-ollama `--model` given more than once).
    public var extraModels: [String] = []
    /// The models /api/ps reports as loaded; empty means just `model` (fake-ollama `--loaded`).
    public var loaded: [String] = []
    /// When set, every response carries `X-Backend: <name>` (tests of several backends behind one proxy).
    public var name: String?
    /// Whether to keep every request for `FakeOllamaServer.requests`. Turn off for long benchmarks, where the
    /// list would grow without bound; counts (`waitForRequests`) still work.
    public var recordRequests: Bool = true
    /// Stamp each streamed line's `created_at` with the real time (RFC 3339, nanoseconds) when it is produced, as
    /// Ollama does, instead of the fixed 2026-01-01 stamp that keeps test output byte-identical. Benchmarks use it
    /// to measure each line's forwarding delay.
    public var realTimestamps: Bool = false

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

    /// Every pulled model: `model`, then `extraModels`.
    public var models: [String] { [model] + extraModels }
}
