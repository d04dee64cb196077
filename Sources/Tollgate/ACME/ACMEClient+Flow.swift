import TollgateIO

extension ACMEClient {
    /// Finds or creates the account for the key (newAccount, RFC 8555 section 7.3), agreeing to the CA's terms;
    /// later requests are signed with its URL. Returns that URL.
    @discardableResult
    func register(email: String?) throws(ACMEError) -> String {
        let directory = try loadDirectory()
        var payload = "{\"termsOfServiceAgreed\":true"
        if let email, !email.isEmpty { payload += ",\"contact\":[\(DoctorJSON.quoted("mailto:" + email))]" }
        payload += "}"
        let response = try post(directory.newAccount, payload: payload, signer: .jwk)
        guard response.status == 200 || response.status == 201, let location = response.header("Location") else {
            throw Self.failure("newAccount gave no account URL", response)
        }
        accountURL = location
        return location
    }

    /// Uses an account URL saved earlier instead of asking newAccount again.
    func useAccount(_ url: String) {
        accountURL = url
        _ = try? loadDirectory()
    }

    /// Places an order for `domains` (newOrder, RFC 8555 section 7.4).
    func newOrder(domains: [String]) throws(ACMEError) -> Order {
        let directory = try loadDirectory()
        let identifiers = domains.map { "{\"type\":\"dns\",\"value\":\(DoctorJSON.quoted($0))}" }.joined(separator: ",")
        let response = try post(directory.newOrder, payload: "{\"identifiers\":[\(identifiers)]}")
        guard response.status == 201, let url = response.header("Location") else {
            throw Self.failure("newOrder gave no order URL", response)
        }
        return try Self.order(url: url, response)
    }

    /// The order at `url` now (POST-as-GET).
    func fetchOrder(_ url: String) throws(ACMEError) -> Order {
        try Self.order(url: url, try post(url, payload: nil))
    }

    /// The authorization at `url` now (POST-as-GET).
    func fetchAuthorization(_ url: String) throws(ACMEError) -> Authorization {
        let response = try post(url, payload: nil)
        guard let json = DoctorJSON.parse(response.body), let status = json["status"]?.stringValue,
              let domain = json["identifier"]?["value"]?.stringValue else {
            throw Self.failure("the authorization at \(url) is not usable", response)
        }
        let challenges = (json["challenges"]?.arrayValue ?? []).compactMap { c -> Challenge? in
            guard let type = c["type"]?.stringValue, let url = c["url"]?.stringValue else { return nil }
            return Challenge(type: type, url: url, token: c["token"]?.stringValue ?? "",
                             status: c["status"]?.stringValue ?? "")
        }
        return Authorization(domain: domain, status: status, challenges: challenges)
    }

    /// Tells the CA the challenge at `url` is ready to be validated (RFC 8555 section 7.5.1).
    func answerChallenge(_ url: String) throws(ACMEError) {
        _ = try post(url, payload: "{}")
    }

    /// Polls the authorization at `url` until it is no longer pending or processing; throws unless it became valid,
    /// with the challenge's error when the CA gave one.
    func awaitAuthorization(_ url: String) throws(ACMEError) -> Authorization {
        var polls = 0
        while true {
            let response = try post(url, payload: nil)
            guard let json = DoctorJSON.parse(response.body), let status = json["status"]?.stringValue else {
                throw Self.failure("the authorization at \(url) is not usable", response)
            }
            switch status {
            case "valid":
                return try fetchAuthorizationParsed(json, url: url, response)
            case "pending", "processing":
                polls += 1
                guard polls < maxPolls else { throw ACMEError("the authorization at \(url) is still \(status)") }
                wait(Self.retryAfter(response))
                if cancelled() { throw ACMEError("stopped while the authorization at \(url) was \(status)") }
            default:
                // The failed challenge holds the reason (RFC 8555 section 7.1.4: `error` on the challenge).
                let failed = (json["challenges"]?.arrayValue ?? []).first { $0["error"] != nil }?["error"]
                let domain = json["identifier"]?["value"]?.stringValue ?? url
                throw ACMEError(type: failed?["type"]?.stringValue,
                                detail: "the authorization for \(domain) is \(status)"
                                    + (failed?["detail"]?.stringValue.map { ": " + $0 } ?? ""),
                                status: response.status, document: failed?.text ?? "")
            }
        }
    }

    private func fetchAuthorizationParsed(_ json: DoctorJSON, url: String, _ response: ACMEHTTPClient.Response)
        throws(ACMEError) -> Authorization {
        guard let domain = json["identifier"]?["value"]?.stringValue else {
            throw Self.failure("the authorization at \(url) is not usable", response)
        }
        return Authorization(domain: domain, status: "valid", challenges: [])
    }

    /// Polls the order until its status is one of `statuses` (then returns it) or invalid (then throws).
    func awaitOrder(_ order: Order, until statuses: Set<String>) throws(ACMEError) -> Order {
        var current = order
        var polls = 0
        while !statuses.contains(current.status) {
            guard current.status != "invalid" else {
                throw ACMEError("the order \(current.url) became invalid")
            }
            polls += 1
            guard polls < maxPolls else { throw ACMEError("the order \(current.url) is still \(current.status)") }
            let response = try post(current.url, payload: nil)
            current = try Self.order(url: current.url, response)
            if !statuses.contains(current.status) {
                wait(Self.retryAfter(response))
                if cancelled() { throw ACMEError("stopped while the order \(current.url) was \(current.status)") }
            }
        }
        return current
    }

    /// Sends the CSR (DER) to the order's finalize URL (RFC 8555 section 7.4) and waits for the certificate URL.
    func finalize(_ order: Order, csr: [UInt8]) throws(ACMEError) -> Order {
        let response = try post(order.finalize, payload: "{\"csr\":\"\(Base64URL.encode(csr))\"}")
        let after = try Self.order(url: order.url, response)
        let done = try awaitOrder(after, until: ["valid"])
        guard done.certificate != nil else { throw ACMEError("the valid order \(order.url) has no certificate URL") }
        return done
    }

    /// Downloads the certificate chain (PEM, leaf first) from `url`.
    func downloadCertificate(_ url: String) throws(ACMEError) -> [UInt8] {
        let response = try post(url, payload: nil, accept: "application/pem-certificate-chain")
        let text = String(decoding: response.body, as: UTF8.self)
        guard response.status == 200, text.contains("-----BEGIN CERTIFICATE-----") else {
            throw Self.failure("the certificate at \(url) is not a PEM chain", response)
        }
        return response.body
    }

    /// The order an answer describes.
    static func order(url: String, _ response: ACMEHTTPClient.Response) throws(ACMEError) -> Order {
        guard let json = DoctorJSON.parse(response.body), let status = json["status"]?.stringValue,
              let finalize = json["finalize"]?.stringValue else {
            throw failure("the order at \(url) is not usable", response)
        }
        return Order(url: url, status: status,
                     authorizations: (json["authorizations"]?.arrayValue ?? []).compactMap(\.stringValue),
                     finalize: finalize, certificate: json["certificate"]?.stringValue)
    }

    /// Seconds to wait before polling again: the answer's Retry-After in seconds (1 to 60 honoured), else 1.
    static func retryAfter(_ response: ACMEHTTPClient.Response) -> Double {
        guard let text = response.header("Retry-After"), let seconds = Int(text.trimmingSpaces) else { return 1 }
        return Double(min(max(seconds, 1), 60))
    }
}

extension String {
    /// Without leading and trailing spaces and tabs.
    fileprivate var trimmingSpaces: Substring {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" { s.removeFirst() }
        while let l = s.last, l == " " || l == "\t" { s.removeLast() }
        return s
    }
}
