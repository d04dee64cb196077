import TollgateHTTP

/// Paths named in `public-paths` are served without authentication (logged as "public").
final class PublicPaths: ConnectionPhase {
    let paths: Set<String>

    init?(config: ServerConfig, worker: Worker) {
        if config.publicPaths.isEmpty { return nil }
        paths = config.publicPaths
    }

    func run(_ ex: Exchange, head: RequestHead, on c: ClientConnection) -> PhaseOutcome {
        if paths.contains(ex.path) {
            ex.isPublic = true
            ex.authResult = .public
        }
        return .next
    }
}
