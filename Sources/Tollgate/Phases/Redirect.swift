import TollgateHTTP

/// The redirect listener's only answer: 301 to the same host and path over https. Other listeners' exchanges go on.
struct Redirect: ConnectionPhase {
    init?(config: ServerConfig, worker: Worker) {
        if config.listenRedirect.isEmpty { return nil }
    }

    var readsHead: Bool { true }

    func run(_ ex: Exchange, head: RequestHead, on c: ClientConnection) -> PhaseOutcome {
        guard c.kind == .redirect else { return .next }
        var host = head.host.map { String(decoding: c.input.bytes[$0], as: UTF8.self) } ?? "localhost"
        if let colon = host.lastIndex(of: ":"), !host.hasSuffix("]") { host = String(host[..<colon]) }
        let port = c.worker.redirectPort
        let location = "https://\(host)\(port == 443 ? "" : ":\(port)")\(String(decoding: c.input.bytes[head.path.lowerBound..<head.target.upperBound], as: UTF8.self))"
        return .reply(PhaseOutcome.Reply(status: 301, headers: [("Location", location)], body: "",
                                         contentType: "text/plain", close: true))
    }
}
