/// What `PhaseRunner` drives an exchange's phases on: the client connection, or a stand-in in tests.
///
/// Loop thread only.
protocol PhaseHost: AnyObject {
    /// Whether `ex` is still this host's exchange in progress. A completion can arrive after its exchange ended or
    /// its connection closed; the runner asks this before acting on one.
    func owns(_ ex: Exchange) -> Bool
    /// Ends `ex` with an error in its API family's shape.
    func respond(_ ex: Exchange, _ error: ErrorResponse, reason: CloseReason)
    /// Ends `ex` with a response of Tollgate's own.
    func reply(_ ex: Exchange, _ reply: PhaseOutcome.Reply)
    /// Every phase let `ex` through: hand it to the content handler (the upstream).
    func phasesPassed(_ ex: Exchange)
    /// A phase waits: watch the client meanwhile (its bytes wait in the buffer, a disconnect is seen).
    func phasesPaused()
}
