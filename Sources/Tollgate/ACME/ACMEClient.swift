import TollgateIO

/// What the ACME client sends requests through; `ACMEHTTPClient` on the wire, a fake in unit tests.
protocol ACMETransport: Sendable {
    /// Sends one request and returns the answer, whatever its status; throws only when no answer came.
    func send(_ method: String, _ url: String, headers: [(String, String)], body: [UInt8]?)
        throws(SocketError) -> ACMEHTTPClient.Response
}

extension ACMEHTTPClient: ACMETransport {}

/// One conversation with an ACME CA (RFC 8555): the directory, nonces, the account, orders, authorizations,
/// challenges, finalization and the certificate's download. Each method blocks until the CA answers: it runs only on
/// the ACME thread. Not thread-safe (it keeps the last nonce).
final class ACMEClient {
    /// The directory's URLs (RFC 8555 section 7.1.1).
    struct Directory: Sendable, Equatable {
        var newNonce: String
        var newAccount: String
        var newOrder: String
        /// The ACME Renewal Information endpoint (RFC 9773), when the CA has one.
        var renewalInfo: String?
    }

    /// An order (RFC 8555 section 7.1.3) and its URL.
    struct Order: Sendable, Equatable {
        var url: String
        var status: String
        var authorizations: [String]
        var finalize: String
        var certificate: String?
    }

    /// One challenge of an authorization.
    struct Challenge: Sendable, Equatable {
        var type: String
        var url: String
        var token: String
        var status: String
    }

    /// An authorization (RFC 8555 section 7.1.4).
    struct Authorization: Sendable, Equatable {
        var domain: String
        var status: String
        var challenges: [Challenge]
    }

    let directoryURL: String
    let transport: any ACMETransport
    let key: AccountKey
    /// Waits the given seconds between polls (a real sleep on the ACME thread; tests pass one that does not wait).
    let wait: @Sendable (Double) -> Void
    /// How many times an order or authorization is polled before the client gives up.
    var maxPolls = 60
    /// Whether the server is stopping: polling ends with an error after the current wait (which ends early too).
    var cancelled: @Sendable () -> Bool = { false }

    private var nonce: String?
    private(set) var directory: Directory?
    /// The account URL once `register` has run: requests are then signed with it (`kid`).
    var accountURL: String?

    init(directoryURL: String, transport: any ACMETransport, key: AccountKey, wait: @escaping @Sendable (Double) -> Void) {
        self.directoryURL = directoryURL
        self.transport = transport
        self.key = key
        self.wait = wait
    }

    // MARK: directory, nonces, signed requests

    /// Reads the directory (once).
    @discardableResult
    func loadDirectory() throws(ACMEError) -> Directory {
        if let directory { return directory }
        let response = try exchange("GET", directoryURL)
        guard response.status == 200, let json = DoctorJSON.parse(response.body),
              let newNonce = json["newNonce"]?.stringValue, let newAccount = json["newAccount"]?.stringValue,
              let newOrder = json["newOrder"]?.stringValue else {
            throw Self.failure("the ACME directory at \(directoryURL) is not usable", response)
        }
        let made = Directory(newNonce: newNonce, newAccount: newAccount, newOrder: newOrder,
                             renewalInfo: json["renewalInfo"]?.stringValue)
        directory = made
        return made
    }

    /// A fresh nonce: the one the last answer carried, else one from newNonce.
    private func takeNonce() throws(ACMEError) -> String {
        if let nonce {
            self.nonce = nil
            return nonce
        }
        let directory = try loadDirectory()
        let response = try exchange("HEAD", directory.newNonce)
        guard let fresh = response.header("Replay-Nonce"), !fresh.isEmpty else {
            throw Self.failure("the CA's newNonce gave no Replay-Nonce", response)
        }
        return fresh
    }

    /// POSTs a JWS of `payload` (nil: POST-as-GET) to `url`, signed with the account URL when known (else the key);
    /// sent again once with the new nonce when the CA answers badNonce. Answers of 400 and above are thrown as
    /// their problem document.
    func post(_ url: String, payload: String?, signer: AccountKey.Signer? = nil, accept: String? = nil)
        throws(ACMEError) -> ACMEHTTPClient.Response {
        let who = signer ?? accountURL.map { .kid($0) } ?? .jwk
        var headers = [("Content-Type", "application/jose+json")]
        if let accept { headers.append(("Accept", accept)) }
        var attempt = 0
        while true {
            let body = key.sign(url: url, nonce: try takeNonce(), payload: payload, as: who)
            let response = try exchange("POST", url, headers: headers, body: body)
            if response.status < 400 { return response }
            let error = Self.failure("the CA refused POST \(url)", response)
            // RFC 8555 section 6.5: a badNonce answer carries a fresh nonce to try again with.
            if error.isBadNonce && attempt == 0 && nonce != nil {
                attempt += 1
                continue
            }
            throw error
        }
    }

    /// Sends one request and keeps the nonce its answer carries.
    private func exchange(_ method: String, _ url: String, headers: [(String, String)] = [], body: [UInt8]? = nil)
        throws(ACMEError) -> ACMEHTTPClient.Response {
        let response: ACMEHTTPClient.Response
        do {
            response = try transport.send(method, url, headers: headers, body: body)
        } catch {
            throw ACMEError("cannot reach the CA at \(url): \(error.description)")
        }
        if let fresh = response.header("Replay-Nonce"), !fresh.isEmpty { nonce = fresh }
        return response
    }

    /// The error for an unexpected answer: its problem document when it has one.
    static func failure(_ what: String, _ response: ACMEHTTPClient.Response) -> ACMEError {
        if let json = DoctorJSON.parse(response.body), case .object = json,
           response.header("Content-Type")?.lowercased().hasPrefix("application/problem+json") ?? (json["type"] != nil) {
            return ACMEError(type: json["type"]?.stringValue,
                             detail: what + ": " + (json["detail"]?.stringValue ?? "no detail"),
                             status: response.status, document: json.text)
        }
        return ACMEError(what, status: response.status)
    }
}
