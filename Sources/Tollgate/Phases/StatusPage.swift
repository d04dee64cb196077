import TollgateHTTP
import TollgateIO

/// `GET /status`: the status page (`StatusPageRenderer`). The metrics listener serves it to whoever reaches that
/// listener (loopback by default), through `MetricsEndpoint`; this phase serves it on the client listeners to
/// administrators only, after authentication: 401 without credentials (the `Authentication` phase), 403 for a user
/// who is not in `admin` and for an API key limited to some models. With authentication off the phase is not in the
/// list (there is no one to tell apart, and the page lists every user's spending): `/status` there is no route (404).
///
/// The page waits for the readiness check a scrape makes, then for the ledger's history, which is read on the
/// `StatusHistoryReader`'s thread and rendered there; the loop only gathers the current figures and writes the answer.
final class StatusPage: ConnectionPhase {
    /// The page's path.
    static let path = "/status"

    let admins: Set<String>

    init?(config: ServerConfig, worker: Worker) {
        guard worker.authenticator != nil else { return nil }
        admins = config.admins
    }

    func run(_ ex: Exchange, head: RequestHead, on c: ClientConnection) -> PhaseOutcome {
        // Every other request goes on at the cost of one enum comparison.
        guard ex.route == .unknown, ex.path == StatusPage.path, ex.method == .get || ex.method == .head else {
            return .next
        }
        guard let user = ex.user, admins.contains(user) else {
            return .answer(ErrorResponse(status: 403, message: "\(StatusPage.path) is reserved for administrators"),
                           .rejected)
        }
        if ex.keyModels != nil {
            return .answer(ErrorResponse(status: 403, message: "\(StatusPage.path) shows every user and model; this API "
                                         + "key is limited to some models and cannot use it"), .rejected)
        }
        return StatusPage.serve(ex, on: c, for: .administrator)
    }

    /// Answers `ex` with the page, later: after the readiness check and the ledger's history (asked in `origin`'s
    /// queue).
    static func serve(_ ex: Exchange, on c: ClientConnection, for origin: StatusHistoryReader.Origin) -> PhaseOutcome {
        let worker = c.worker
        let reader = worker.statusHistory
        let loop = worker.loop
        worker.readiness.check { up, detail in
            let now = worker.statusNow(upstreamUp: up, detail: detail)
            guard let reader else {
                ex.phases.resume(ex, on: c) { .reply(reply(StatusPageRenderer.render(now: now, history: .off))) }
                return
            }
            let box = UncheckedBox((c, ex))
            reader.read(from: origin) { answer in
                // On the reader's thread: the page is built here, off the loop.
                let html = StatusPageRenderer.render(now: now, history: .answer(answer))
                loop.execute {
                    let (c, ex) = box.value
                    ex.phases.resume(ex, on: c) { .reply(reply(html)) }
                }
            }
        }
        return .wait
    }

    /// The page as Tollgate's answer: never cached, never framed, nothing loaded but inline style and `data:` images.
    static func reply(_ html: String) -> PhaseOutcome.Reply {
        PhaseOutcome.Reply(status: 200,
                           headers: [("Cache-Control", "no-store"),
                                     ("Content-Security-Policy", StatusPageRenderer.contentSecurityPolicy),
                                     ("X-Content-Type-Options", "nosniff"),
                                     ("X-Frame-Options", "DENY"),
                                     ("Referrer-Policy", "no-referrer")],
                           body: html, contentType: "text/html; charset=utf-8")
    }
}
