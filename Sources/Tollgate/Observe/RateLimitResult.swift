/// What the per-client rate limit made of one request: the access log's `rate_limit` field. Phases set it;
/// `text` is the one place it becomes log text (`pass`, `rejected:redis`, `unavailable:closed`, …).
struct RateLimitResult: Equatable, Sendable {
    enum Kind: Sendable {
        /// No rate limit is configured (or it never ran for this request).
        case off
        /// Refused before an exchange existed: logged as `-`.
        case notReached
        case pass
        /// The client is on the exempt list.
        case exempt
        /// Over the limit, but `rate-limit-dry-run` let it through.
        case dryRun
        case rejected
        /// The shared limits could not answer and their fallback refuses.
        case unavailable
    }

    /// Who decided, with shared (Redis) limits; nil for this process's own limiter.
    enum Source: Sendable {
        /// Redis answered.
        case redis
        /// A rejection this process remembered from Redis answered at once.
        case cache
        /// Redis was unavailable and the `local` fallback decided.
        case local
        /// Redis was unavailable and the `open` fallback admitted.
        case open
        /// Redis was unavailable and the `closed` fallback refused.
        case closed

        var text: String {
            switch self {
            case .redis: return "redis"
            case .cache: return "cache"
            case .local: return "local"
            case .open: return "open"
            case .closed: return "closed"
            }
        }
    }

    var kind: Kind
    var source: Source?

    init(_ kind: Kind, source: Source? = nil) {
        self.kind = kind
        self.source = source
    }

    static let off = RateLimitResult(.off)
    static let notReached = RateLimitResult(.notReached)

    /// The text the access log shows: the kind, and `:source` when the shared path decided.
    var text: String {
        let base: String
        switch kind {
        case .off: base = "off"
        case .notReached: base = "-"
        case .pass: base = "pass"
        case .exempt: base = "exempt"
        case .dryRun: base = "dry-run"
        case .rejected: base = "rejected"
        case .unavailable: base = "unavailable"
        }
        return source.map { base + ":" + $0.text } ?? base
    }
}
