import TollgateHTTP

/// The gate on what an inference body asks of the shared server beyond its own generation, after the model gate
/// and before a quota is reserved.
///
/// - Model overrides (`model-overrides`): a runner option in `options` (`num_gpu`, `num_batch`, `use_mmap`, ...),
///   top-level `shift`, a `template` on `/api/generate`, or a `keep_alive` under a second. Each either reloads the
///   model Ollama holds for everyone (its scheduler compares the runner options and the context shift of every
///   request with those of the loaded runner), moves it off the GPU, unloads it, or, for `template`, has Ollama
///   parse and execute a Go `text/template`, whose nested templates expand exponentially. Refused with 400 naming
///   the field and the key unless the user's policy sets `model-overrides=allow`. For the same user, `num_ctx` and
///   any other `keep_alive` are not refused (clients send them on every request) but pinned: to the policy's
///   `max-context` and `keep-alive`, or to the server's defaults (`GenerationLimits.pinned`, set here). Administrators are
///   always allowed; with authentication off (no users to tell apart) everyone is, unless the `*` line says
///   `model-overrides=refuse`. `raw`, `context` and `system` stay allowed: each only changes the user's own
///   prompt, within the body's size.
/// - Ollama's web search (tools whose type starts `web_search` on `/v1/messages` and `/v1/responses`): Ollama runs
///   it through ollama.com with the server's key and generates again with each result. Refused with 403 unless
///   the user may use the cloud (`cloud-models`, as for cloud models).
final class SharedModelGuard: ConnectionPhase {
    let authenticates: Bool
    let admins: Set<String>
    let policies: PolicyTable
    let cloud: CloudModel.Policy

    /// Nil when nothing can be refused: authentication off (everyone may override) with no `*` line refusing
    /// overrides, and the cloud allowed.
    init?(config: ServerConfig, worker: Worker) {
        authenticates = config.users != nil
        admins = config.admins
        policies = config.policies
        cloud = CloudModel.Policy(config)
        guard authenticates || policies.everyone.modelOverrides == .refuse || !cloud.allows(user: nil) else { return nil }
    }

    func run(_ ex: Exchange, head: RequestHead, on c: ClientConnection) -> PhaseOutcome {
        guard ex.route == .inference, let route = ex.inferenceRoute, ex.wholeBody else { return .next }
        if let refusal = check(ex.stagedBody, route: route, user: ex.user) { return .answer(refusal, .rejected) }
        if !mayOverride(user: ex.user, policy: policies.policy(for: ex.user)) {
            var limits = ex.generationLimits ?? GenerationLimits()
            limits.pinned = true
            ex.generationLimits = limits
        }
        return .next
    }

    /// The refusal of `body` on `route` from `user`, or nil.
    func check(_ body: [UInt8], route: InferenceRoute, user: String?) -> ErrorResponse? {
        let policy = policies.policy(for: user)
        let overrides = mayOverride(user: user, policy: policy)
        let webSearch = cloud.allows(user: user)
        switch BodyRewrite.override(in: body, route: route, overrides: overrides, webSearch: webSearch) {
        case .failure(let refusal):
            return ErrorResponse(status: 400, message: refusal.message)
        case .success(nil):
            return nil
        case .success(.modelOverride(let field)?):
            return ErrorResponse(status: 400, message: SharedModelGuard.message(field: field))
        case .success(.webSearch(let type)?):
            return cloud.webSearchRefusal(type, user: user)
        }
    }

    /// Whether `user` may send model overrides.
    func mayOverride(user: String?, policy: UserPolicy) -> Bool {
        if let user, admins.contains(user) { return true }
        switch policy.modelOverrides {
        case .allow?: return true
        case .refuse?: return false
        case nil: return !authenticates
        }
    }

    /// The refusal's message for `field` (`options.num_gpu`, `shift`, `template`).
    static func message(field: String) -> String {
        let what = field == "template"
            ? "is parsed and run by Ollama as a Go template, which can expand without bound"
            : field == "keep_alive"
            ? "under a second unloads the model shared by every user of this server"
            : "changes how the model shared by every user of this server is loaded (reloading or moving it)"
        return "\"\(field)\" \(what); this server refuses it unless the user's policy sets model-overrides=allow"
    }
}
