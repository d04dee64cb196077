import TollgateHTTP

/// The optional model allowlist: an inference request's body must name an allowed `model` before anything reaches
/// Ollama. The body is held (not forwarded) only until its `"model"` is seen, at most `modelScanLimit` bytes;
/// clients put it first in practice.
extension ClientConnection {
    static let modelScanLimit = 1 << 20

    /// Starts (or continues) looking for the model; proceeds, waits for more body, or refuses.
    func checkModel(_ ex: Exchange) {
        let allowed = worker.config.modelAllowlist
        var scanner = UsageScanner(model: true)
        var end = inEnd
        if case .length(let remaining) = ex.body { end = min(inEnd, inStart + remaining) }
        scanner.feed(input, inStart..<end)
        if let model = scanner.model {
            ex.awaitingModel = false
            if allowed.contains(model) {
                proceedToSlot(ex)
            } else {
                respond(ex, ErrorResponse(status: 403, message: "model \"\(model)\" is not available on this server"), reason: .rejected)
            }
            return
        }
        let bodyComplete: Bool
        switch ex.body {
        case .none: bodyComplete = true
        case .length(let remaining): bodyComplete = end - inStart >= remaining
        case .chunked: bodyComplete = false
        }
        if bodyComplete || end - inStart >= ClientConnection.modelScanLimit {
            ex.awaitingModel = false
            respond(ex, ErrorResponse(status: 400, message: "the request body must name a \"model\" (within its first MiB)"), reason: .rejected)
            return
        }
        if !ex.awaitingModel {
            ex.awaitingModel = true
            if ex.expectContinue && inStart == inEnd { HTTPWriter.appendRaw("HTTP/1.1 100 Continue\r\n\r\n", to: &out) }
            ex.expectContinue = false
            flush()
        }
    }
}
