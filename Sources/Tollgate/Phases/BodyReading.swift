import TollgateHTTP

/// Reads the request body whole where a decision needs it, before any slot or backend is taken: inference bodies
/// (and `/api/show`'s), whose model decides whether they may run at all, as nginx buffers request bodies by default;
/// with several backends every body but a blob upload, so that it can be sent again to another backend. A client
/// trickling its body holds nothing scarce meanwhile: the exchange waits for the body
/// (`ClientConnection.startBuffering`). Other bodies stream to the upstream.
final class BodyReading: ConnectionPhase {
    init?(config: ServerConfig, worker: Worker) {}

    func run(_ ex: Exchange, head: RequestHead, on c: ClientConnection) -> PhaseOutcome {
        if ex.bodyNamesModel && !ex.requestDone && ex.contentEncoded {
            // Ollama decompresses some encoded bodies before it reads their model; Tollgate reads the model of
            // every such body, so it takes them only as sent (HAProxy and nginx do not decode request bodies
            // either).
            return .answer(ErrorResponse(status: 415, message: "request bodies with a Content-Encoding are not accepted on this route; send the body uncompressed"),
                           .rejected)
        }
        guard !ex.requestDone && readsBodyWhole(ex, c.worker) else { return .next }
        return c.startBuffering(ex)
    }

    private func readsBodyWhole(_ ex: Exchange, _ worker: Worker) -> Bool {
        if ex.bodyNamesModel { return true }
        return worker.peers.readsBodyWhole(route: ex.route)
    }
}
