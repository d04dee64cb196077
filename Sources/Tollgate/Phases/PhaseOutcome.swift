/// What a phase decided about an exchange: nginx's handler return codes, as `PhaseRunner` reads them.
///
/// The two answers are held indirectly (boxed): the outcome is then one word, returned in a register, where
/// inline payloads made it seven, written and read through memory on every phase of every request. Only an
/// answer, which ends the exchange, pays for a box.
enum PhaseOutcome {
    /// This phase lets the exchange go on to the next one (nginx `NGX_DECLINED`/`NGX_OK`).
    case next
    /// The decision is pending (a password check, a shared limit, a slot, the body); its completion calls
    /// `PhaseRunner.resume`, which goes on from here (nginx `NGX_AGAIN`).
    case wait
    /// Refused: the error in the exchange's API family's shape; the exchange ends with `reason`.
    indirect case answer(ErrorResponse, CloseReason)
    /// Answered by Tollgate itself (health, readiness, preflight, metrics, redirect); the exchange ends.
    indirect case reply(Reply)

    /// A response of Tollgate's own, as `ClientConnection.answer` writes it.
    struct Reply {
        var status: Int
        var headers: [(String, String)] = []
        /// nil: no body and no Content-Length (204).
        var body: String?
        var contentType = "application/json; charset=utf-8"
        /// The connection closes after this response, whatever the client asked.
        var close = false
        var reason = CloseReason.completed

        /// A small answer of Tollgate's own (health, readiness, metrics): never cached.
        static func json(_ status: Int, _ body: String, contentType: String = "application/json") -> Reply {
            Reply(status: status, headers: [("Cache-Control", "no-store")], body: body, contentType: contentType)
        }
    }
}
