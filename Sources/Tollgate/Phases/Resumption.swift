import TollgateIO

/// Where a decision that comes later goes: the exchange's runner, resumed with the waiting phase's reading of the
/// decision. Two references and two functions: building one allocates nothing when `read` captures nothing, so a
/// decision-maker that answers at once costs no more than a direct call.
///
/// Loop thread only, except `loop`.
struct Resumption<Value> {
    /// The exchange waiting for the decision.
    let ex: Exchange
    /// Its connection.
    let host: ClientConnection
    /// The phase's reading of the decision (a function that captures nothing).
    let read: (Exchange, ClientConnection, Value) -> PhaseOutcome
    /// Gives back what a decision brought to an exchange that is gone (a slot, a queue place); nil: nothing to give.
    var giveBack: ((Value) -> Void)?

    /// The loop the exchange runs on: a decision made on another thread hops here before `resume`.
    var loop: EventLoop { host.worker.loop }

    /// The phase's outcome for `answer`: the decision read now, or a wait for `resume`.
    func outcome(_ answer: NowOrLater<Value>) -> PhaseOutcome {
        switch answer {
        case .now(let value): return read(ex, host, value)
        case .later: return .wait
        }
    }

    /// Delivers a decision: the runner goes on from the waiting phase (a decision given while that phase still
    /// runs becomes its outcome). If the exchange no longer waits there, `value` is only evaluated for `giveBack`,
    /// so a decision that has effects (a fallback bucket counting) makes them only for an exchange still waiting.
    func resume(_ value: @autoclosure () -> Value) {
        ex.phases.resume(ex, on: host, ifGone: { if let giveBack { giveBack(value()) } }) { read(ex, host, value()) }
    }
}
