/// What authentication made of one request: the access log's `auth` field and the `outcome` label of
/// `tollgate_auth_total`. Phases set a case; `text` is the one place it becomes log and metric text.
enum AuthResult: Int, CaseIterable, Sendable {
    /// Authentication is switched off (or never ran for this request).
    case off
    /// Refused before an exchange existed (a bad head, a connection cap): logged as `-`, never counted.
    case notReached
    /// A login (or a login this connection verified before) was accepted.
    case allowed
    /// Wrong user or password.
    case denied
    /// No credentials where they are required.
    case missing
    /// Credentials that cannot be read (bad Base64, no colon, an unusable scheme).
    case malformed
    /// More than one credential header, disagreeing.
    case ambiguous
    /// Too many failed logins from this client: refused before any password check.
    case throttled
    /// The password checkers' queue is full.
    case overloaded
    /// The shared failed-login throttle could not answer and `redis-fallback` is closed.
    case unavailable
    /// A public path (health, readiness, configured public paths): served without authentication.
    case `public`
    /// A password where `password-logins` accepts none (API keys only there).
    case passwordRefused

    /// The text the access log and the metric label show.
    var text: String {
        switch self {
        case .off: return "off"
        case .notReached: return "-"
        case .allowed: return "allowed"
        case .denied: return "denied"
        case .missing: return "missing"
        case .malformed: return "malformed"
        case .ambiguous: return "ambiguous"
        case .throttled: return "throttled"
        case .overloaded: return "overloaded"
        case .unavailable: return "unavailable"
        case .public: return "public"
        case .passwordRefused: return "password-refused"
        }
    }

    /// Whether `tollgate_auth_total` counts it: every outcome of an authentication that ran.
    var isCounted: Bool { self != .off && self != .notReached }
}
