/// What one `policy` line sets for its user (or for everyone, `*`): token and request quotas, the models and cloud
/// models the user may name, per-user concurrency and request rate, and the caps on what a request may ask of the
/// GPU. A key the line does not set is nil: the `*` line's value applies, else the global setting's.
///
/// A value, read once per inference request from the worker's `PolicyTable`.
public struct UserPolicy: Sendable, Equatable {
    /// Tokens (prompt + completion, as Ollama counts them) per UTC calendar day.
    public var tokensPerDay: PolicyLimit?
    /// Tokens per UTC calendar month.
    public var tokensPerMonth: PolicyLimit?
    /// Inference requests per UTC calendar day.
    public var requestsPerDay: PolicyLimit?
    /// The models inference requests may name, instead of `model-allow`; an empty set allows every model.
    public var models: Set<String>?
    /// Inference requests this user may have in flight, instead of `max-inflight-per-user`.
    public var maxInflight: PolicyLimit?
    /// Requests per second for this user, instead of `user-rate` (0: no per-user rate for this user).
    public var rate: Double?
    /// Whether this user may use cloud models, instead of `cloud-models`.
    public var cloudModels: CloudModels?
    /// The most `options.num_ctx` a request may ask for.
    public var maxContext: PolicyLimit?
    /// The most tokens a request may generate (`num_predict`, `max_tokens`, ...).
    public var maxPredict: PolicyLimit?
    /// The longest `keep_alive` a request may ask for, in seconds.
    public var keepAliveSeconds: PolicyLimit?
    /// Whether this user's requests may change how the shared model is loaded or prompted (runner options in
    /// `options`, `shift`, `template`). Unset means refused for everyone but administrators (and allowed with
    /// authentication off, where there are no users to tell apart).
    public var modelOverrides: ModelOverrides?

    /// Nothing set.
    public init() {}

    /// This policy with every key `other` sets replaced by `other`'s value (a user's line over the `*` line).
    public func overridden(by other: UserPolicy) -> UserPolicy {
        var p = self
        if let v = other.tokensPerDay { p.tokensPerDay = v }
        if let v = other.tokensPerMonth { p.tokensPerMonth = v }
        if let v = other.requestsPerDay { p.requestsPerDay = v }
        if let v = other.models { p.models = v }
        if let v = other.maxInflight { p.maxInflight = v }
        if let v = other.rate { p.rate = v }
        if let v = other.cloudModels { p.cloudModels = v }
        if let v = other.maxContext { p.maxContext = v }
        if let v = other.maxPredict { p.maxPredict = v }
        if let v = other.keepAliveSeconds { p.keepAliveSeconds = v }
        if let v = other.modelOverrides { p.modelOverrides = v }
        return p
    }

    /// Whether a quota (tokens or requests) is in force.
    public var hasQuota: Bool {
        tokensPerDay?.value != nil || tokensPerMonth?.value != nil || requestsPerDay?.value != nil
    }

    /// Whether token quotas are in force (a request's generation is then capped by what is left).
    public var hasTokenQuota: Bool { tokensPerDay?.value != nil || tokensPerMonth?.value != nil }

    /// The quota limits this policy sets.
    public var quotaLimits: QuotaLimits {
        QuotaLimits(tokensPerDay: tokensPerDay?.value, tokensPerMonth: tokensPerMonth?.value,
                    requestsPerDay: requestsPerDay?.value)
    }
}

/// A policy's number that may also be switched off for a user (`off`), so that a user's line can lift a limit the
/// `*` line sets.
public enum PolicyLimit: Sendable, Equatable {
    /// No limit (written `off`).
    case off
    /// At most this many.
    case at(Int)

    /// The limit, nil when off.
    public var value: Int? {
        if case .at(let n) = self { return n }
        return nil
    }
}

/// Whether a user's requests may change how the shared model is loaded or prompted for everyone (policy key
/// `model-overrides`): runner options in `options` (`num_gpu`, `num_batch`, `use_mmap`, ...; `num_ctx` where no
/// `max-context` caps it), top-level `shift`, a user-supplied `template`.
public enum ModelOverrides: String, Sendable, Equatable {
    /// Refused with 400 naming the field (the default for users who are not administrators).
    case refuse
    /// Forwarded as sent.
    case allow
}
