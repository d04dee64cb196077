/// What became of one login with an `ollama` CLI key (the signed form of `OLLAMA_AUTH`): the
/// `tollgate_ollama_key_logins_total` metric's `outcome` label, and the reason a refusal gives.
enum OllamaKeyResult: Int, CaseIterable, Sendable {
    /// The signature verified, fresh, for a key in `authorized-keys`.
    case allowed
    /// The key is not in `authorized-keys` (or no such file is configured).
    case unknownKey
    /// The key's user is disabled in the users file (an unusable or duplicated line).
    case disabledUser
    /// `ts` missing, malformed, or more than the window away from the server's clock.
    case stale
    /// The signature does not verify for this key, method, path and `ts`.
    case badSignature
    /// The signature was already used, from another connection, within the window.
    case replayed
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
        case .stale: return "stale"
        case .badSignature: return "bad_signature"
        case .replayed: return "replayed"
        case .overloaded: return "overloaded"
        case .throttled: return "throttled"
        }
    }

    /// What the 401 (or 503) body says: enough for the user to fix their side, nothing secret.
    var message: String {
        switch self {
        case .allowed: return "ok"
        case .unknownKey: return "this ollama key is not authorized here (add its id_ed25519.pub line to authorized-keys)"
        case .disabledUser: return "the user this ollama key logs in as is disabled"
        case .stale: return "the request's ts is missing or more than 5 minutes off the server's clock (check the client's clock)"
        case .badSignature: return "the ollama key signature does not verify"
        case .replayed: return "this signed request was already used"
        case .overloaded: return "too many signed requests in progress; retry shortly"
        case .throttled: return "too many failed logins"
        }
    }
}
