import TollgateHTTP

/// The redirect listener's only answer: 301 to the same host and path over https. Other listeners' exchanges go on.
final class Redirect: ConnectionPhase {
    init?(config: ServerConfig, worker: Worker) {
        if config.listenRedirect.isEmpty { return nil }
    }

    var readsHead: Bool { true }

    /// Where the CA fetches HTTP-01 answers.
    static let challengePrefix = Array("/.well-known/acme-challenge/".utf8)

    func run(_ ex: Exchange, head: RequestHead, on c: ClientConnection) -> PhaseOutcome {
        guard c.kind == .redirect else { return .next }
        // HTTP-01 (RFC 8555 section 8.3): the key authorization for a pending token, 404 for any other.
        let path = c.input.bytes[head.path]
        if path.starts(with: Self.challengePrefix) {
            let token = String(decoding: path.dropFirst(Self.challengePrefix.count), as: UTF8.self)
            if let answer = HTTP01Challenges.shared.answer(token: token) {
                return .reply(PhaseOutcome.Reply(status: 200, headers: [("Cache-Control", "no-store")], body: answer,
                                                 contentType: "text/plain", close: true))
            }
            return .reply(PhaseOutcome.Reply(status: 404, headers: [("Cache-Control", "no-store")], body: "",
                                             contentType: "text/plain", close: true))
        }
        var host = head.host.map { String(decoding: c.input.bytes[$0], as: UTF8.self) } ?? "localhost"
        if let colon = host.lastIndex(of: ":"), !host.hasSuffix("]") { host = String(host[..<colon]) }
        let port = c.worker.redirectPort
        let location = "https://\(host)\(port == 443 ? "" : ":\(port)")\(String(decoding: c.input.bytes[head.path.lowerBound..<head.target.upperBound], as: UTF8.self))"
        return .reply(PhaseOutcome.Reply(status: 301, headers: [("Location", location)], body: "",
                                         contentType: "text/plain", close: true))
    }
}
