/// Which inference route an exchange is: decides which body fields Ollama reads (`BodyRewrite`) and where the
/// token counts are in the response (`UsageScanner`).
public enum InferenceRoute: Sendable, Equatable, CaseIterable {
    case generate, chat, embed, embeddings
    case chatCompletions, completions, openAIEmbeddings, responses
    case messages

    /// The route for a path Ollama routes on (decoded, case-sensitive like gin), nil for any other path.
    public static func of(path: String) -> InferenceRoute? {
        switch path {
        case "/api/generate": return .generate
        case "/api/chat": return .chat
        case "/api/embed": return .embed
        case "/api/embeddings": return .embeddings
        case "/v1/chat/completions": return .chatCompletions
        case "/v1/completions": return .completions
        case "/v1/embeddings": return .openAIEmbeddings
        case "/v1/responses": return .responses
        case "/v1/messages": return .messages
        default: return nil
        }
    }

    /// The body carries Ollama's `options` map and `keep_alive` (the native routes).
    var hasOptions: Bool {
        switch self {
        case .generate, .chat, .embed, .embeddings: return true
        default: return false
        }
    }

    /// The route generates text (embeddings only read their input).
    public var generates: Bool {
        switch self {
        case .embed, .embeddings, .openAIEmbeddings: return false
        default: return true
        }
    }

    /// The OpenAI routes that stream without usage unless asked (`stream_options.include_usage`).
    var streamsWithoutUsage: Bool { self == .chatCompletions || self == .completions }
}

/// Tokens as Ollama counted them for one response: prompt (`prompt_eval_count`, `prompt_tokens`, `input_tokens`)
/// and completion (`eval_count`, `completion_tokens`, `output_tokens`).
public struct TokenUsage: Equatable, Sendable {
    public var prompt: Int
    public var completion: Int

    public init(prompt: Int, completion: Int) {
        self.prompt = prompt
        self.completion = completion
    }

    public var total: Int { prompt + completion }
}
