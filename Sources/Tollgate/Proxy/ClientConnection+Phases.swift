/// The connection as the host of its exchanges' phases (see `PhaseRunner`).
extension ClientConnection: PhaseHost {
    /// Whether `ex` is this connection's exchange in progress: the one check every late completion goes through
    /// (a password check, a shared limit, a slot, a backend can answer after the client went away).
    func owns(_ ex: Exchange) -> Bool {
        life.phase == .exchange && exchange === ex
    }

    func reply(_ ex: Exchange, _ reply: PhaseOutcome.Reply) {
        answer(ex, status: reply.status, headers: reply.headers, body: reply.body, contentType: reply.contentType,
               close: reply.close, reason: reply.reason)
    }

    func phasesPassed(_ ex: Exchange) {
        proxy(ex)
    }

    func phasesPaused() {
        updateInterest()
    }
}
