import TollgateHTTP

/// Responses Tollgate writes itself (errors, health, metrics, preflights, redirects, model lists): one writer, so
/// each gets the same framing, request id, HSTS, CORS and connection handling.
extension ClientConnection {
    /// Answers `ex` with `status`, `headers` and `body` (nil: no body and no Content-Length, as for 204), then
    /// finishes the exchange. The connection closes afterwards when the request body was not read, the client asked,
    /// the server drains, or `close` is set.
    func answer(_ ex: Exchange, status: Int, headers: [(String, String)] = [], body: String?,
                contentType: String = "application/json; charset=utf-8", close: Bool = false, reason: CloseReason) {
        if let body {
            answer(ex, status: status, headers: headers, bytes: body.utf8, contentType: contentType, close: close,
                   reason: reason)
        } else {
            answer(ex, status: status, headers: headers, bytes: nil as [UInt8]?, contentType: contentType, close: close,
                   reason: reason)
        }
    }

    /// `answer` with a body of bytes (nil: none).
    func answer<Body: Collection<UInt8>>(_ ex: Exchange, status: Int, headers: [(String, String)] = [], bytes body: Body?,
                                         contentType: String = "application/json; charset=utf-8", close: Bool = false,
                                         reason: CloseReason) {
        if let up = ex.upstream {
            ex.upstream = nil
            up.close()
        }
        ex.status = status
        ex.headSent = true
        let closing = close || ex.closeAfter || !ex.requestDone || !ex.clientKeepAlive || worker.draining
        ex.closeAfter = closing
        let before = out.count
        HTTPWriter.appendStatusLine(status, to: &out)
        if let body {
            HTTPWriter.appendHeader("Content-Type", contentType, to: &out)
            HTTPWriter.appendRaw("Content-Length: ", to: &out)
            HTTPWriter.appendDecimal(body.count, to: &out)
            HTTPWriter.appendCRLF(to: &out)
        }
        HTTPWriter.appendRaw("X-Request-Id: ", to: &out)
        ex.requestID.append(to: &out)
        HTTPWriter.appendCRLF(to: &out)
        for (name, value) in headers { HTTPWriter.appendField(name, value, to: &out) }
        if let origin = ex.corsOrigin {
            HTTPWriter.appendHeader("Access-Control-Allow-Origin", origin, to: &out)
            HTTPWriter.appendHeader("Vary", "Origin", to: &out)
            if corsCredentials(ex) && !headers.contains(where: { $0.0 == "Access-Control-Allow-Credentials" }) {
                HTTPWriter.appendHeader("Access-Control-Allow-Credentials", "true", to: &out)
            }
        }
        if let hstsLine { out.append(contentsOf: hstsLine) }
        if closing { HTTPWriter.appendHeader("Connection", "close", to: &out) }
        HTTPWriter.appendCRLF(to: &out)
        if let body, !ex.isHead { out.append(contentsOf: body) }
        ex.bytesOut += out.count - before
        finishExchange(ex, reason: reason)
    }

    /// Answers the exchange with an error in its API family's shape.
    func respond(_ ex: Exchange, _ error: ErrorResponse, reason: CloseReason) {
        answer(ex, status: error.status, headers: error.headers, body: error.body(for: ex.family), reason: reason)
    }

    /// Whether responses to `ex` allow credentials: for origins named in the config, never for the "*" wildcard.
    func corsCredentials(_ ex: Exchange) -> Bool {
        guard let origin = ex.corsOrigin else { return false }
        return worker.config.corsOrigins.contains(origin)
    }
}
