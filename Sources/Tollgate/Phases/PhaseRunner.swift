import TollgateHTTP

/// Runs an exchange through its phases in order, as nginx's `ngx_http_core_run_phases` does: each phase lets the
/// exchange go on, answers it, or waits; a phase that waits never names its successor, its completion calls
/// `resume` and the runner goes on from where the exchange stopped. When every phase has let the exchange through,
/// the host's content handler takes it (`PhaseHost.phasesPassed`).
///
/// The list is built once per configuration and holds only the phases it switches on (nginx builds its phase engine
/// from the handlers its modules registered at configuration time). The position is kept on the exchange
/// (`Exchange.progress`, nginx's `r->phase_handler`), and an exchange keeps the runner it started with, so a reload
/// that rebuilds the list never moves an exchange that waits.
///
/// The phases are called through their protocol, once each per exchange: a witness-table call, nothing allocated
/// per request (the list and its phases are built per configuration). Phases are classes (`ExchangePhase` is
/// class-bound): a struct held in an `any` element is copied out of its box on every call, retaining each reference
/// it holds, which cost more than the phases' own work. A `switch` over an enum of phases would make
/// every new phase touch the runner as well.
///
/// Adding a phase is one file and one line: a type conforming to `ConnectionPhase` in its own file under
/// `Phases/` (its `init?(config:worker:)` returns nil when the configuration switches it off), and its type added
/// to `ConnectionPhases.order` at the place its check belongs. Nothing else names it.
///
/// Loop thread only.
final class PhaseRunner<Host: PhaseHost> {
    let phases: [any ExchangePhase<Host>]
    /// The index of the last phase that reads the request head, or -1: a wait before it holds the head.
    private let lastHeadReader: Int

    init(_ phases: [any ExchangePhase<Host>]) {
        self.phases = phases
        lastHeadReader = phases.lastIndex(where: { $0.readsHead }) ?? -1
    }

    /// Runs `ex`'s phases from the first. `head`'s ranges point into the host's input buffer.
    func run(_ ex: Exchange, head: RequestHead, on host: Host) {
        ex.progress = PhaseProgress()
        drive(ex, head: head, on: host)
    }

    /// Goes on with `ex` once the phase it waits on has decided: `decide` gives the decision and runs only if `ex`
    /// still waits there and is still its host's exchange in progress; otherwise the completion is stale and
    /// `ifGone` runs instead (to give back whatever the completion brought: a slot, a lease). A completion that
    /// arrives while its phase is still running (the decision-maker answered at once) becomes that phase's
    /// decision. `decide` may return `.wait`: the exchange goes on waiting (a queue place instead of a slot).
    func resume(_ ex: Exchange, on host: Host, ifGone: () -> Void = {}, _ decide: () -> PhaseOutcome) {
        let running: Bool
        switch ex.progress.state {
        case .waiting: running = false
        case .running: running = true
        case .notStarted, .decided, .finished:
            ifGone()
            return
        }
        guard host.owns(ex) else {
            ex.progress.state = .finished
            ex.progress.heldHead = nil
            ifGone()
            return
        }
        let outcome = decide()
        if running {
            if case .wait = outcome { return }
            ex.progress.state = .decided
            ex.progress.early = outcome
            return
        }
        switch outcome {
        case .wait:
            return
        case .next:
            let head = ex.progress.heldHead ?? RequestHead.empty
            ex.progress.heldHead = nil
            ex.progress.index += 1
            drive(ex, head: head, on: host)
        case .answer, .reply:
            ex.progress.heldHead = nil
            finish(ex, outcome, on: host)
        }
    }

    /// Runs phases from `ex.progress.index` until one waits or answers, or all have passed.
    private func drive(_ ex: Exchange, head: RequestHead, on host: Host) {
        while ex.progress.index < phases.count {
            let i = ex.progress.index
            ex.progress.state = .running
            var outcome = phases[i].run(ex, head: head, on: host)
            if case .wait = outcome, ex.progress.state == .decided, let early = ex.progress.early {
                outcome = early
                ex.progress.early = nil
            }
            guard host.owns(ex) else {
                // The phase ended the exchange itself (its connection failed while it wrote).
                ex.progress.state = .finished
                return
            }
            switch outcome {
            case .next:
                ex.progress.index = i + 1
            case .wait:
                ex.progress.state = .waiting
                if i < lastHeadReader { ex.progress.heldHead = head }
                host.phasesPaused()
                return
            case .answer, .reply:
                finish(ex, outcome, on: host)
                return
            }
        }
        ex.progress.state = .finished
        host.phasesPassed(ex)
    }

    private func finish(_ ex: Exchange, _ outcome: PhaseOutcome, on host: Host) {
        ex.progress.state = .finished
        switch outcome {
        case .answer(let error, let reason): host.respond(ex, error, reason: reason)
        case .reply(let reply): host.reply(ex, reply)
        case .next, .wait: break
        }
    }
}

extension RequestHead {
    /// An empty head, for phases after the last one that reads the head (they never look at it).
    static let empty = RequestHead()
}
