import TollgateHTTP

/// The model gate's reading of the path: `/v1/models/{model}` names a model in its path, which Ollama's cloud
/// passthrough acts on, so a cloud model there is refused as it would be in a body (`ModelGate`).
struct CloudModelPath: ConnectionPhase {
    let policy: CloudModel.Policy

    init?(config: ServerConfig, worker: Worker) {
        if CloudModel.Policy.anyoneAll(config) { return nil }
        policy = CloudModel.Policy(config)
    }

    func run(_ ex: Exchange, head: RequestHead, on c: ClientConnection) -> PhaseOutcome {
        if ex.path.hasPrefix("/v1/models/"), let refusal = policy.refusal(String(ex.path.dropFirst(11)), user: ex.user) {
            return .answer(refusal, .rejected)
        }
        return .next
    }
}
