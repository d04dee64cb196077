import Synchronization
import Testing
import TollgateIO
@testable import Tollgate

/// The ACME client's nonce and error handling against a scripted CA (no sockets).
@Suite struct ACMEClientTests {
    /// Answers requests from a script, in order, and records them.
    final class ScriptedCA: ACMETransport, @unchecked Sendable {
        let answers: Mutex<[ACMEHTTPClient.Response]>
        let sent = Mutex<[(method: String, url: String, body: [UInt8])]>([])

        init(_ answers: [ACMEHTTPClient.Response]) { self.answers = Mutex(answers) }

        func send(_ method: String, _ url: String, headers: [(String, String)], body: [UInt8]?)
            throws(SocketError) -> ACMEHTTPClient.Response {
            sent.withLock { $0.append((method, url, body ?? [])) }
            guard let next = answers.withLock({ $0.isEmpty ? nil : $0.removeFirst() }) else {
                throw SocketError("connection refused")
            }
            return next
        }
    }

    static let directory = ACMEHTTPClient.Response(
        status: 200, headers: [("Content-Type", "application/json")],
        body: Array(#"{"newNonce":"https://ca/nonce","newAccount":"https://ca/acct","newOrder":"https://ca/order"}"#.utf8))

    static func nonce(_ value: String) -> ACMEHTTPClient.Response {
        ACMEHTTPClient.Response(status: 200, headers: [("Replay-Nonce", value)], body: [])
    }

    static func badNonce(_ fresh: String) -> ACMEHTTPClient.Response {
        ACMEHTTPClient.Response(
            status: 400, headers: [("Content-Type", "application/problem+json"), ("Replay-Nonce", fresh)],
            body: Array(#"{"type":"urn:ietf:params:acme:error:badNonce","detail":"JWS has an invalid anti-replay nonce"}"#.utf8))
    }

    static func account(_ nonce: String) -> ACMEHTTPClient.Response {
        ACMEHTTPClient.Response(status: 201, headers: [("Location", "https://ca/acct/7"), ("Replay-Nonce", nonce)],
                                body: Array(#"{"status":"valid"}"#.utf8))
    }

    private func nonceOf(_ body: [UInt8]) -> String? {
        guard let jws = DoctorJSON.parse(body), let protected = jws["protected"]?.stringValue,
              let header = Base64URL.decode(protected).flatMap(DoctorJSON.parse) else { return nil }
        return header["nonce"]?.stringValue
    }

    @Test func badNonceIsRetriedOnceWithTheNonceFromTheError() throws {
        let ca = ScriptedCA([Self.directory, Self.nonce("n1"), Self.badNonce("n2"), Self.account("n3")])
        let client = ACMEClient(directoryURL: "https://ca/dir", transport: ca, key: AccountKey(P256Key())) { _ in }
        #expect(try client.register(email: "admin@example.com") == "https://ca/acct/7")
        let sent = ca.sent.withLock { $0 }
        #expect(sent.map(\.method) == ["GET", "HEAD", "POST", "POST"])
        #expect(nonceOf(sent[2].body) == "n1")
        #expect(nonceOf(sent[3].body) == "n2")
        let payload = try #require(DoctorJSON.parse(sent[3].body)?["payload"]?.stringValue.flatMap(Base64URL.decode))
        #expect(String(decoding: payload, as: UTF8.self).contains("mailto:admin@example.com"))
        #expect(client.accountURL == "https://ca/acct/7")
    }

    @Test func aSecondBadNonceIsTheError() throws {
        let ca = ScriptedCA([Self.directory, Self.nonce("n1"), Self.badNonce("n2"), Self.badNonce("n3")])
        let client = ACMEClient(directoryURL: "https://ca/dir", transport: ca, key: AccountKey(P256Key())) { _ in }
        do {
            try client.register(email: nil)
            Issue.record("registered despite two badNonce answers")
        } catch {
            #expect(error.isBadNonce)
            #expect(error.status == 400)
            #expect(error.document.contains("badNonce"))
        }
        #expect(ca.sent.withLock { $0.count } == 4)
    }

    @Test func problemDocumentsAreKept() throws {
        let refusal = ACMEHTTPClient.Response(
            status: 403, headers: [("Content-Type", "application/problem+json")],
            body: Array(#"{"type":"urn:ietf:params:acme:error:unauthorized","detail":"no"}"#.utf8))
        let ca = ScriptedCA([Self.directory, Self.nonce("n1"), refusal])
        let client = ACMEClient(directoryURL: "https://ca/dir", transport: ca, key: AccountKey(P256Key())) { _ in }
        #expect(throws: ACMEError.self) { try client.register(email: nil) }
        do { try client.register(email: nil) } catch {
            #expect(error.type == nil) // the script is spent: no answer at all
            #expect(error.description.contains("connection refused"))
        }
    }

    @Test func pollingHonoursRetryAfter() throws {
        let waits = Mutex<[Double]>([])
        func order(_ status: String, retryAfter: String? = nil) -> ACMEHTTPClient.Response {
            var headers = [("Replay-Nonce", "n")]
            if let retryAfter { headers.append(("Retry-After", retryAfter)) }
            return ACMEHTTPClient.Response(status: 200, headers: headers, body: Array(
                "{\"status\":\"\(status)\",\"authorizations\":[],\"finalize\":\"https://ca/fin\",\"certificate\":\"https://ca/cert\"}".utf8))
        }
        let ca = ScriptedCA([Self.directory, Self.nonce("n0"), order("processing", retryAfter: "3"),
                             order("processing", retryAfter: "999"), order("valid")])
        let client = ACMEClient(directoryURL: "https://ca/dir", transport: ca, key: AccountKey(P256Key())) { seconds in
            waits.withLock { $0.append(seconds) }
        }
        client.useAccount("https://ca/acct/1")
        let start = ACMEClient.Order(url: "https://ca/o/1", status: "processing", authorizations: [],
                                     finalize: "https://ca/fin", certificate: nil)
        let done = try client.awaitOrder(start, until: ["valid"])
        #expect(done.certificate == "https://ca/cert")
        #expect(waits.withLock { $0 } == [3, 60])
    }

    /// An authorization for a name the order did not ask for (a CA gone wrong, or whoever answers in its place) is
    /// refused before anything is presented: the name would go into a challenge certificate.
    @Test func anAuthorizationForAnotherNameIsRefused() throws {
        final class Recorder: ChallengeResponder, @unchecked Sendable {
            let presented = Mutex(0)
            var challengeTypes: [String] { ["tls-alpn-01", "http-01"] }
            func present(_ answer: ChallengeAnswer) { presented.withLock { $0 += 1 } }
            func withdraw(_ answer: ChallengeAnswer) {}
        }
        let order = ACMEHTTPClient.Response(
            status: 201, headers: [("Location", "https://ca/o/1"), ("Replay-Nonce", "n1")], body: Array(
                #"{"status":"pending","authorizations":["https://ca/authz/1"],"finalize":"https://ca/fin"}"#.utf8))
        let authorization = ACMEHTTPClient.Response(status: 200, headers: [("Replay-Nonce", "n2")], body: Array(
            (#"{"status":"pending","identifier":{"type":"dns","value":"gpu.example.net,DNS:other.example"},"#
             + #""challenges":[{"type":"tls-alpn-01","url":"https://ca/ch/1","token":"abc","status":"pending"}]}"#).utf8))
        let ca = ScriptedCA([Self.directory, Self.nonce("n0"), order, authorization])
        let client = ACMEClient(directoryURL: "https://ca/dir", transport: ca, key: AccountKey(P256Key())) { _ in }
        client.useAccount("https://ca/acct/1")
        let responder = Recorder()
        do {
            _ = try client.issue(domains: ["gpu.example.net"], email: nil, responder: responder)
            Issue.record("answered an authorization for a name the order did not name")
        } catch {
            #expect(error.description.contains("which this order did not name (gpu.example.net)"), "\(error)")
        }
        #expect(responder.presented.withLock { $0 } == 0)
        #expect(ca.sent.withLock { $0.count } == 4, "nothing posted after the authorization was read")
    }

    /// A stop while the order is still processing ends the conversation at the next wait, with an error, instead of
    /// polling on.
    @Test func aStopEndsPollingAtTheNextWait() throws {
        let stopped = Atomic<Bool>(false)
        let order = ACMEHTTPClient.Response(status: 200, headers: [("Replay-Nonce", "n"), ("Retry-After", "1")], body: Array(
            #"{"status":"processing","authorizations":[],"finalize":"https://ca/fin"}"#.utf8))
        let ca = ScriptedCA([Self.directory, Self.nonce("n0"), order, order, order])
        let client = ACMEClient(directoryURL: "https://ca/dir", transport: ca, key: AccountKey(P256Key())) { _ in
            stopped.store(true, ordering: .relaxed)   // the server stops during this wait
        }
        client.cancelled = { stopped.load(ordering: .relaxed) }
        client.useAccount("https://ca/acct/1")
        let start = ACMEClient.Order(url: "https://ca/o/1", status: "processing", authorizations: [],
                                     finalize: "https://ca/fin", certificate: nil)
        #expect(throws: ACMEError.self) { _ = try client.awaitOrder(start, until: ["valid"]) }
        #expect(ca.sent.withLock { $0.count } == 3, "one poll, then the stop")
    }

    @Test func httpsURLs() {
        let le = HTTPSURL("https://acme-v02.api.letsencrypt.org/directory")
        #expect(le?.host == "acme-v02.api.letsencrypt.org")
        #expect(le?.port == 443)
        #expect(le?.target == "/directory")
        #expect(le?.authority == "acme-v02.api.letsencrypt.org")
        #expect(HTTPSURL("https://127.0.0.1:14000/dir")?.port == 14000)
        #expect(HTTPSURL("https://[::1]:14000")?.host == "::1")
        #expect(HTTPSURL("https://[::1]:14000")?.target == "/")
        #expect(HTTPSURL("http://example.com/") == nil)
        #expect(HTTPSURL("https://user@example.com/") == nil)
        #expect(HTTPSURL("https://example.com:0/") == nil)
        #expect(HTTPSURL("https://example.com:x/") == nil)
    }
}
