/// What a request may ask of the GPU: the caps `BodyRewrite` applies to an inference body before it is forwarded.
///
/// Set on `Exchange.generationLimits` by whichever phase decides them (a user's policy line, the quota that is left);
/// applied once, right before forwarding (`ClientConnection.rewriteBody`). A nil field leaves that part of the body
/// as the client sent it. Nothing is ever raised: a cap only lowers, or sets a field whose absence means "unbounded".
public struct GenerationLimits: Equatable, Sendable {
    /// The most `options.num_ctx` a request may ask for (routes with options: `/api/generate`, `/api/chat`,
    /// `/api/embed`, `/api/embeddings`). A body without `num_ctx` (or with null) is given the cap: Ollama's own
    /// default is sized from the GPU's memory, up to the model's whole training context, unless the admin pins it
    /// with `OLLAMA_CONTEXT_LENGTH`.
    public var maxContext: Int?
    /// The most tokens a generation may produce, in the field Ollama reads on the route: `options.num_predict` on
    /// `/api/generate` and `/api/chat`, `max_tokens` on `/v1/chat/completions`, `/v1/completions` and `/v1/messages`,
    /// `max_output_tokens` on `/v1/responses`. Absent, null, zero or negative (Ollama's "unlimited") becomes the cap,
    /// except on `/v1/messages`, where Ollama refuses such a body itself. At least 1 (Ollama reads 0 as unlimited,
    /// so a smaller value is written as 1): a quota with nothing left must refuse the request instead.
    public var maxPredict: Int?
    /// The cap on `keep_alive` (routes with it: the four `/api/*` inference routes).
    public var keepAlive: KeepAliveLimit?
    /// The sender may not change how the model every user shares is loaded (`model-overrides` refused): a different
    /// `num_ctx` or a short `keep_alive` would reload or unload it for everyone. So `options.num_ctx` becomes exactly
    /// `maxContext` (raised as well as lowered), or null (the server's default) without one; and a `keep_alive`
    /// becomes the `keepAlive` cap, or null (the server's default) without one. Under a second `keep_alive` is refused
    /// before this (`SharedModelGuard`).
    public var pinned: Bool

    public init(maxContext: Int? = nil, maxPredict: Int? = nil, keepAlive: KeepAliveLimit? = nil, pinned: Bool = false) {
        self.maxContext = maxContext
        self.maxPredict = maxPredict
        self.keepAlive = keepAlive
        self.pinned = pinned
    }

    /// No field is limited.
    public var isEmpty: Bool { maxContext == nil && maxPredict == nil && keepAlive == nil && !pinned }
}

/// How long a request may ask Ollama to keep its model loaded after it (`keep_alive`).
///
/// Ollama reads `keep_alive` as a number of seconds or a Go duration string (`"10m"`, `"1h30m"`); a negative value of
/// either kind means "forever" and counts as infinite here. A value over the cap, or forever, is replaced by the cap
/// (written as a number of seconds).
public struct KeepAliveLimit: Equatable, Sendable {
    /// The cap, in seconds (0: unload as soon as the request ends).
    public var seconds: Int
    /// Also set `keep_alive` when the request has none (or null), so the server's default never applies; otherwise
    /// an absent value is left to the server's default (`OLLAMA_KEEP_ALIVE`, 5 minutes unless the admin changed it).
    public var replaceAbsent: Bool

    public init(seconds: Int, replaceAbsent: Bool = false) {
        self.seconds = seconds
        self.replaceAbsent = replaceAbsent
    }
}

/// One field `BodyRewrite` changed: the field as the route names it, what the client sent (its JSON text; nil when
/// absent or null) and what was sent instead (nil: null, so that the server's default applies). Rendered in the
/// `X-Tollgate-Lowered` response header.
public struct LoweredField: Equatable, Sendable {
    public var field: String
    public var from: String?
    public var to: Int?

    public init(field: String, from: String?, to: Int?) {
        self.field = field
        self.from = from
        self.to = to
    }

    /// The `X-Tollgate-Lowered` value for `fields`: `num_ctx=4096 num_predict=256 keep_alive=default`.
    public static func headerValue(_ fields: [LoweredField]) -> String {
        fields.map { "\($0.field)=\($0.to.map(String.init) ?? "default")" }.joined(separator: " ")
    }
}
