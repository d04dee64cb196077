import TollgateHTTP

/// Where an exchange is in its phase list. Kept on the exchange; only `PhaseRunner` changes it.
struct PhaseProgress {
    enum State {
        case notStarted
        /// The phase at `index` is deciding now.
        case running
        /// The phase at `index` waits for its completion.
        case waiting
        /// The phase at `index` is still running, but its completion already decided (it answered at once):
        /// the decision is `early`.
        case decided
        /// Answered, or handed to the content handler: completions that still arrive are stale.
        case finished
    }

    /// The phase running, waited on, or next to run.
    var index = 0
    var state = State.notStarted
    /// The decision of a completion that came while its phase was still running (`state == .decided`). Kept
    /// apart from `state` so that the runner's per-phase state changes store a plain value.
    var early: PhaseOutcome?
    /// The request head, held through a wait that a phase reading it still follows; nil otherwise. While it is
    /// held the connection reads client bytes only into the room after the buffered ones, so that its ranges stay
    /// valid.
    var heldHead: RequestHead?
}
