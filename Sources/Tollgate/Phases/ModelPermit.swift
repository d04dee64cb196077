/// The models one exchange may name, as `ModelGate` decides them: the allow-list (or the user's policy `models=`),
/// the API key's models, and cloud models when the user may not use them. Model lists (`GET /api/tags`,
/// `GET /v1/models`) show such an exchange only these: a key limited to one model, or a user under an allow-list,
/// does not learn what else the server holds, and a chat UI offers no model that would be refused.
struct ModelPermit: Equatable {
    /// The models allowed by the allow-list or the user's policy; empty: any.
    let allowed: Set<String>
    /// The API key's models; nil: the login was not a key limited to models.
    let keyModels: Set<String>?
    /// Whether cloud models (`…:cloud`, `…-cloud`) are refused to this user.
    let refusesCloud: Bool

    /// Whether anything is kept from this exchange (only then are lists filtered).
    var restricts: Bool { !allowed.isEmpty || keyModels != nil || refusesCloud }

    /// Whether only cloud models are kept from it: a list it cannot read would disclose nothing the exchange may
    /// not know (every local model is its to name, and a cloud model is refused when named), so it is passed.
    var keepsOnlyCloud: Bool { allowed.isEmpty && keyModels == nil }

    /// Whether a request naming `name` would pass the model gate (the same exact-name checks).
    func permits(_ name: String) -> Bool {
        if !allowed.isEmpty && !allowed.contains(name) { return false }
        if let keyModels, !keyModels.contains(name) { return false }
        if refusesCloud && CloudModel.isCloud(name) { return false }
        return true
    }

    /// Whether a listed model may be shown: one of the names it is listed by would pass.
    func permits(_ listed: ModelListScanner.ListedNames) -> Bool {
        [listed.name, listed.model, listed.id].contains { $0.map { !$0.isEmpty && permits($0) } ?? false }
    }
}
