/// The quotas one user's policy sets; nil: no such limit.
public struct QuotaLimits: Sendable, Equatable {
    public var tokensPerDay: Int?
    public var tokensPerMonth: Int?
    public var requestsPerDay: Int?

    public init(tokensPerDay: Int? = nil, tokensPerMonth: Int? = nil, requestsPerDay: Int? = nil) {
        self.tokensPerDay = tokensPerDay
        self.tokensPerMonth = tokensPerMonth
        self.requestsPerDay = requestsPerDay
    }

    /// Whether a token limit is in force.
    public var limitsTokens: Bool { tokensPerDay != nil || tokensPerMonth != nil }
}

/// What a request may cost before Ollama has counted it: the prompt (not known until Ollama evaluates it) and the
/// generation (bounded by the cap the request is sent with).
public struct QuotaEstimate: Sendable, Equatable {
    /// Tokens the prompt may take at most.
    public var promptTokens: Int
    /// Whether the request generates (false for embeddings, whose cost is their input alone).
    public var generates: Bool
    /// The most tokens the request may generate whatever the quota (the policy's `max-predict`), nil: no cap.
    public var maxPredict: Int?

    public init(promptTokens: Int, generates: Bool, maxPredict: Int?) {
        self.promptTokens = promptTokens
        self.generates = generates
        self.maxPredict = maxPredict
    }

    /// Tokens a chat template may add to what the body holds (role markers, the model's own system prompt).
    public static let templateOverhead = 256

    /// Tokens one image may become: vision models make a fixed number of tokens of an image whatever its size in
    /// bytes, up to about 3,100 for the largest image Ollama's processors keep (Mistral Small 3's 1540 px in 28 px
    /// patches, plus a break token per row); Gemma 3 makes 256, LLaVA 576, Qwen 2.5 VL at most 1,280.
    public static let tokensPerImage = 4096

    /// The conservative estimate of a prompt sent as `bodyBytes` bytes of JSON carrying `images` images: a tokenizer
    /// never makes more than one token of a byte (byte-level BPE falls back to single bytes; the JSON around the
    /// text only adds bytes), plus `tokensPerImage` for each image and `templateOverhead`. Not bounded by
    /// `max-context`: a body without `num_ctx` runs the server's default context, which may be larger.
    public static func prompt(bodyBytes: Int, images: Int = 0) -> Int {
        bodyBytes + images * tokensPerImage + templateOverhead
    }
}

/// Tokens and requests held back for a request in flight, until `QuotaBook.settle` charges what it really cost.
public struct QuotaReservation: Sendable, Equatable {
    /// Whose balance it is drawn from.
    public let user: String
    /// Tokens held: the prompt estimate plus the generation cap (0 when no token limit is in force).
    public let tokens: Int
    /// The generation cap the quota leaves (what `num_predict` / `max_tokens` must be lowered to), nil when the quota
    /// does not limit this request's generation.
    public let predictCap: Int?
    /// Whether `predictCap` is below what the policy alone allows (the response then says it was capped).
    public let capped: Bool
    /// The windows it was drawn in.
    let day: Int64
    let month: Int64
    /// The Redis hold it is (`SharedQuotas`), settled there; nil: this process's `QuotaBook` holds it.
    var hold: String? = nil
}

/// Which quota refused a request.
public enum QuotaWindow: String, Sendable, Equatable {
    case tokensPerDay = "tokens-day"
    case tokensPerMonth = "tokens-month"
    case requestsPerDay = "requests-day"
}

/// A request refused by a quota: 429 with `Retry-After` and the RateLimit headers of the quota that refused it.
public struct QuotaRefusal: Sendable, Equatable {
    /// The quota that refused.
    public let window: QuotaWindow
    /// Its limit.
    public let limit: Int
    /// What is left of it now (spent and held by requests in flight subtracted).
    public let remaining: Int
    /// Seconds until a retry may pass: the window's reset, or 1 when only requests in flight hold the balance.
    public let retryAfterSeconds: Int
    /// The window's length in seconds (a day, or this month's length).
    public let windowSeconds: Int
    /// The request's own estimate exceeds what is left; nil for a request quota or a balance spent in full.
    public let needed: Int?
    /// Only requests in flight hold what this request needs: it may pass once they settle.
    public let heldByRequestsInFlight: Bool

    /// The 429's message.
    public var message: String {
        let what = window == .requestsPerDay ? "daily request quota" : (window == .tokensPerDay ? "daily token quota" : "monthly token quota")
        if heldByRequestsInFlight {
            return "the \(what) of \(limit) is held by requests in flight: retry in \(retryAfterSeconds) s"
        }
        if let needed {
            return "this request may use up to \(needed) tokens (its prompt estimated from its size), more than the "
                + "\(remaining) left of the \(what) of \(limit): retry in \(retryAfterSeconds) s"
        }
        return "the \(what) of \(limit) is spent: retry in \(retryAfterSeconds) s, when it resets (UTC)"
    }

    /// `Retry-After`, `RateLimit-Policy` and `RateLimit` as the rate limiters write them
    /// (draft-ietf-httpapi-ratelimit-headers-10): `"tokens-day";q=<limit>;w=<window s>` and
    /// `"tokens-day";r=<remaining>;t=<seconds>`.
    public var headers: [(String, String)] {
        [("Retry-After", String(retryAfterSeconds)),
         ("RateLimit-Policy", "\"\(window.rawValue)\";q=\(limit);w=\(windowSeconds)"),
         ("RateLimit", "\"\(window.rawValue)\";r=\(max(0, remaining));t=\(retryAfterSeconds)")]
    }
}

/// What `QuotaBook.reserve` (or the fleet's balances in Redis) decided.
public enum QuotaDecision: Sendable, Equatable {
    case granted(QuotaReservation)
    case refused(QuotaRefusal)
    /// The fleet's balances cannot answer and `redis-fallback` is `closed`: 503.
    case unavailable
}

/// What a finished request is charged.
public enum QuotaCharge: Sendable, Equatable {
    /// Ollama's count: prompt + completion tokens.
    case counted(Int)
    /// No count arrived although Ollama may have worked (cut off mid-response, the client gone): the whole
    /// reservation.
    case reservation
    /// Ollama did no work for it (never sent, or answered with an error): nothing, and the request is not counted.
    case nothing
}

/// What one user spent in the current UTC day and month, as the usage ledger remembers it.
public struct Spending: Sendable, Equatable {
    public var dayTokens: Int
    public var monthTokens: Int
    public var dayRequests: Int

    public init(dayTokens: Int = 0, monthTokens: Int = 0, dayRequests: Int = 0) {
        self.dayTokens = dayTokens
        self.monthTokens = monthTokens
        self.dayRequests = dayRequests
    }
}

/// Where the quota book learns at start-up what was spent before it (the usage ledger), so that a restart forgets
/// no spending.
public protocol SpendingHistory: Sendable {
    /// Per user: tokens (prompt + completion) of the requests that ended at or after `dayStart` and at or after
    /// `monthStart` (Unix seconds, the starts of the current UTC day and month), and the inference requests that
    /// ended at or after `dayStart` and count against `requests-per-day`: those that reached Ollama and were not
    /// answered with an error status (a 429 of Tollgate's, a 502, a 404 for an unknown model do not count; see
    /// `QuotaCharge`). Blocking (reads a database): called once at start-up, before any loop runs.
    func spent(sinceDay dayStart: Int64, sinceMonth monthStart: Int64) throws -> [String: Spending]
}
