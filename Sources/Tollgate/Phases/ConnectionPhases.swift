/// A phase of the exchanges on client connections, set up from the configuration.
protocol ConnectionPhase: ExchangePhase where Host == ClientConnection {
    /// The phase as `config` sets it up on `worker`, or nil when the configuration switches it off. Holds what it
    /// needs from both (settings, decision-makers), never the worker itself. Loop thread of `worker`.
    init?(config: ServerConfig, worker: Worker)
}

/// The phases of a client connection's exchanges, in the order they decide (see `PhaseRunner`).
enum ConnectionPhases {
    /// Every phase, in nginx's order: rate limit before authentication (so password work per client address is
    /// capped), authentication before the route policy, the model read from the body before a slot is taken.
    /// Adding a phase: its type here, at its place.
    static var order: [any ConnectionPhase.Type] {
        [
            Redirect.self,
            MetricsEndpoint.self,
            RateLimiting.self,
            Preflight.self,
            Health.self,
            CORS.self,
            PublicPaths.self,
            CredentialHeaders.self,
            LoginThrottling.self,
            Authentication.self,
            StatusPage.self,
            RoutePolicy.self,
            UserRate.self,
            CloudModelPath.self,
            BodyReading.self,
            ModelGate.self,
            SharedModelGuard.self,
            Quota.self,
            Concurrency.self,
        ]
    }

    /// The runner for `config` on `worker`: the phases it switches on, in order.
    static func runner(config: ServerConfig, worker: Worker) -> PhaseRunner<ClientConnection> {
        PhaseRunner(order.compactMap { make($0, config: config, worker: worker) })
    }

    private static func make<Phase: ConnectionPhase>(_ type: Phase.Type, config: ServerConfig,
                                                     worker: Worker) -> (any ExchangePhase<ClientConnection>)? {
        Phase(config: config, worker: worker)
    }
}
