/// What became of one login with an `ollama` CLI key (the signed form of `OLLAMA_AUTH`): the
/// `tollgate_ollama_key_logins_total` metric's `outcome` label, and the reason a refusal gives.
enum OllamaKeyResult: Int, CaseIterable, Sendable {
    /// The signature verified, fresh, for a key in `authorized-keys`.
    case allowed
    /// The key is not in `authorized-keys` (or no such file is configured).
    case unknownKey
    /// The key's user is disabled in the users file (an unusable or duplicated line).
    case disabledUser
    /// The key's user is not in the users file (removed, or a typo in `authorized-keys`).
    case unknownUser
    /// `ts` missing, malformed, or more than the window away from the server's clock.
    case stale
    /// The signature does not verify for this key, method, path and `ts`.
    case badSignature
    /// The signature was already used, from another connection, within the window.
    case replayed
    /// The key already holds its share of the replay cache: refused with 429, for this key only.
    case keyOverShare
    /// The replay cache is full of signatures still in the window: refused with 503.
    case overloaded
    /// Too many failed logins from this client: refused before any check.
    case throttled

    /// The metric label.
    var text: String {
        switch self {
        case .allowed: return "allowed"
        case .unknownKey: return "unknown_key"
        case .disabledUser: return "disabled_user"
        case .unknownUser: return "unknown_user"
        case .stale: return "stale"
        case .badSignature: return "bad_signature"
        case .replayed: return "replayed"
        case .keyOverShare: return "key_over_share"
        case .overloaded: return "overloaded"
        case .throttled: return "throttled"
        }
    }

    /// Whether the refusal is a failed login, answered with the one `refusalMessage` (401).
    var isFailedLogin: Bool {
        switch self {
        case .unknownKey, .disabledUser, .unknownUser, .stale, .badSignature, .replayed: return true
        case .allowed, .keyOverShare, .overloaded, .throttled: return false
        }
    }

    /// What every failed signed login's 401 says, whatever the reason: telling them apart would tell a prober
    /// which keys are listed and which users exist. The reason is in the access log (`ollama_key_refused`, the
    /// metric label) and the metrics; the body names what the user can check on their side.
    static let refusalMessage = "ollama key login refused: the key must be authorized here, the request signed "
        + "for this method and path, and the client's clock within 5 minutes of the server's"

    /// What the response body says for a refusal that is not a failed login (429, 503).
    var message: String {
        switch self {
        case .keyOverShare: return "too many signed requests with this ollama key; retry later"
        case .overloaded: return "too many signed requests in progress; retry shortly"
        case .throttled: return "too many failed logins"
        default: return OllamaKeyResult.refusalMessage
        }
    }
}
