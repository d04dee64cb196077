import TollgateHTTP

/// One step of the request path, with one job: run by `PhaseRunner` in a fixed order, it lets the exchange go on,
/// answers it, or waits for an asynchronous decision (Hummingbird's one-method middleware, nginx's phase handler).
protocol ExchangePhase<Host>: AnyObject {
    associatedtype Host: PhaseHost

    /// Whether `run` reads `head` (its ranges point into the host's input buffer). The runner keeps the head, and
    /// the buffer under it, through a wait that such a phase still follows.
    var readsHead: Bool { get }

    /// Decides for `ex`. A phase that returns `.wait` has arranged for its completion to call
    /// `PhaseRunner.resume` exactly once (possibly before `run` returns: the runner then takes that decision).
    /// Loop thread only.
    func run(_ ex: Exchange, head: RequestHead, on host: Host) -> PhaseOutcome
}

extension ExchangePhase {
    var readsHead: Bool { false }
}
