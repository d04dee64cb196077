import TollgateHTTP

/// The model gate on a body read whole (inference routes and `/api/show`): every reading Ollama makes of the model
/// must pass the allow-list, and cloud models (forwarded by Ollama to ollama.com on the owner's account) only for
/// whom `cloud-models` allows. Sets `ex.model` to the model the handler will act on (for the log, the metrics and
/// backend routing). A user's `policy` line with `models=` replaces the allow-list for that user (`models=*`: any).
/// An API key with a model list (`ex.keyModels`) may name only those models, on top of the rest. A model list
/// request gets its `ModelPermit`, by which the list is filtered (`ModelListFilter`).
final class ModelGate: ConnectionPhase {
    let allowlist: Set<String>
    let cloud: CloudModel.Policy
    let policies: PolicyTable

    init?(config: ServerConfig, worker: Worker) {
        allowlist = config.modelAllowlist
        cloud = CloudModel.Policy(config)
        policies = config.policies
    }

    func run(_ ex: Exchange, head: RequestHead, on c: ClientConnection) -> PhaseOutcome {
        if ex.listsModels {
            let permit = self.permit(ex)
            if permit.restricts { ex.modelPermit = permit }
            return .next
        }
        // `/v1/models/{model}` answers whether a model is there: under an allow-list (or a policy's models=), only
        // for those it allows, as the lists show only those (the key's models and cloud: `CloudModelPath`).
        if ex.path.hasPrefix("/v1/models/") {
            let allowed = allowed(ex)
            let name = String(ex.path.dropFirst("/v1/models/".count))
            if !allowed.isEmpty && !allowed.contains(name) {
                return .answer(ErrorResponse(status: 403, message: "model \"\(name)\" is not available on this server"), .rejected)
            }
            return .next
        }
        guard ex.bodyNamesModel else { return .next }
        if let refusal = check(ex) { return .answer(refusal, .rejected) }
        return .next
    }

    /// The models `ex` may name, for its model list.
    func permit(_ ex: Exchange) -> ModelPermit {
        ModelPermit(allowed: allowed(ex), keyModels: ex.keyModels, refusesCloud: cloud.refuses(user: ex.user))
    }

    /// The allow-list in force for `ex`'s user: its policy's `models=` where it has one, else `model-allow`.
    private func allowed(_ ex: Exchange) -> Set<String> {
        policies.isEmpty ? allowlist : (policies.policy(for: ex.user).models ?? allowlist)
    }

    /// The refusal, or nil with `ex.model` set to the model the handler will act on.
    private func check(_ ex: Exchange) -> ErrorResponse? {
        let allowlist = allowed(ex)
        let gateNeeded = ex.route == .inference && (!allowlist.isEmpty || ex.keyModels != nil)
        guard !ex.stagedBody.isEmpty else {
            // No body: nothing for Ollama to act on (it answers 400 itself), unless the allow-list needs a model.
            return gateNeeded ? ErrorResponse(status: 400, message: "the body names no \"model\" (this server checks the model of every inference request)") : nil
        }
        let reading: BodyModel
        switch BodyModel.read(ex.stagedBody) {
        case .success(let r): reading = r
        case .failure(let invalid):
            return ErrorResponse(status: 400, message: "\(invalid.reason) (this server reads the model of every inference request as Ollama does)")
        }
        if reading.handler == .notString || reading.exactKey == .notString {
            return ErrorResponse(status: 400, message: "\"model\" must be a string")
        }
        if case .string(let name) = reading.handler { ex.model = name }
        var names = reading.names
        // /api/show also accepts the deprecated "name" for its model; it is read as Ollama reads it below.
        if ex.method == .post && ex.path == "/api/show", case .success(let alt) = BodyModel.read(ex.stagedBody, key: "name"),
           case .string(let n) = alt.handler {
            if ex.model == nil || ex.model == "" { ex.model = n }
            if !names.contains(n) { names.append(n) }
        }
        if gateNeeded {
            guard !names.isEmpty else {
                return ErrorResponse(status: 400, message: "the body names no \"model\" (this server checks the model of every inference request)")
            }
            for name in names where !allowlist.isEmpty && !allowlist.contains(name) {
                return ErrorResponse(status: 403, message: "model \"\(name)\" is not available on this server")
            }
        }
        // /api/show answers whether a model is there: only for those the allow-list allows, as the lists show only
        // those.
        if ex.method == .post && ex.path == "/api/show" {
            for name in names where !allowlist.isEmpty && !allowlist.contains(name) {
                return ErrorResponse(status: 403, message: "model \"\(name)\" is not available on this server")
            }
        }
        // An API key's models narrow its user's, in addition to every other limit (never instead of one).
        if let keyModels = ex.keyModels {
            for name in names where !keyModels.contains(name) {
                return ErrorResponse(status: 403, message: "model \"\(name)\" is not allowed for this API key")
            }
        }
        for name in names {
            if let refusal = cloud.refusal(name, user: ex.user) { return refusal }
        }
        return nil
    }
}
