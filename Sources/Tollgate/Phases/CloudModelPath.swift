import TollgateHTTP

/// The model gate's reading of the path: `/v1/models/{model}` names a model in its path, which Ollama's cloud
/// passthrough acts on, so a cloud model there is refused as it would be in a body (`ModelGate`), and an API key
/// limited to some models may name only those there too.
final class CloudModelPath: ConnectionPhase {
    /// Nil when anyone may use every cloud model (only the key's list is then checked).
    let policy: CloudModel.Policy?

    init?(config: ServerConfig, worker: Worker) {
        let anyoneAll = CloudModel.Policy.anyoneAll(config)
        // Nothing to check: every cloud model allowed, and no API keys (none can be limited to models).
        if anyoneAll && worker.keys == nil { return nil }
        policy = anyoneAll ? nil : CloudModel.Policy(config)
    }

    func run(_ ex: Exchange, head: RequestHead, on c: ClientConnection) -> PhaseOutcome {
        guard ex.path.hasPrefix("/v1/models/") else { return .next }
        let name = String(ex.path.dropFirst(11))
        if let keyModels = ex.keyModels, !keyModels.contains(name) {
            return .answer(ErrorResponse(status: 403, message: "model \"\(name)\" is not allowed for this API key"), .rejected)
        }
        if let refusal = policy?.refusal(name, user: ex.user) { return .answer(refusal, .rejected) }
        return .next
    }
}
