import Glibc
import TollgateIO

/// ACME Renewal Information (RFC 9773): the CA's suggested window for renewing a certificate, which may come early
/// (a revocation ahead, a mis-issuance), and when to ask again.
public struct RenewalWindow: Sendable, Equatable {
    /// The window, seconds since the epoch; `end` > `start`.
    public var start: Int64
    public var end: Int64
    /// When to ask again: the answer's Retry-After in seconds, nil without one.
    public var retryAfter: Int64?
    /// A page explaining why the window moved, when the CA gives one.
    public var explanationURL: String?

    public init(start: Int64, end: Int64, retryAfter: Int64? = nil, explanationURL: String? = nil) {
        self.start = start
        self.end = end
        self.retryAfter = retryAfter
        self.explanationURL = explanationURL
    }

    /// A time in the window: `start` plus `random` (0..<1) of its length (the RFC's advice: a uniform choice, so
    /// that the CA's clients do not all come at once).
    public func chosen(random: Double) -> Int64 {
        start + Int64(Double(end - start) * min(max(random, 0), 1))
    }

    /// The certificate's identifier for the renewalInfo URL (RFC 9773 section 4.1): base64url of its Authority Key
    /// Identifier, a dot, base64url of its serial number's DER content octets. nil without an AKI keyIdentifier.
    public static func certificateID(_ certificate: TLSCertificate) -> String? {
        guard let parts = certificate.renewalInfoParts, !parts.keyIdentifier.isEmpty, !parts.serial.isEmpty else {
            return nil
        }
        return Base64URL.encode(parts.keyIdentifier) + "." + Base64URL.encode(parts.serial)
    }

    /// Seconds since the epoch of an RFC 3339 date-time ("2025-01-02T04:00:00Z", fractions and offsets allowed);
    /// nil for anything else.
    public static func parseTime(_ text: String) -> Int64? {
        let b = Array(text.utf8)
        func number(_ from: Int, _ count: Int) -> Int? {
            guard from + count <= b.count else { return nil }
            var n = 0
            for c in b[from..<(from + count)] {
                guard c >= 48 && c <= 57 else { return nil }
                n = n * 10 + Int(c - 48)
            }
            return n
        }
        guard b.count >= 20, b[4] == 45, b[7] == 45, b[10] == 84 || b[10] == 116, b[13] == 58, b[16] == 58,
              let year = number(0, 4), let month = number(5, 2), let day = number(8, 2), let hour = number(11, 2),
              let minute = number(14, 2), let second = number(17, 2),
              (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second < 61 else { return nil }
        var i = 19
        if b[i] == 46 {   // fraction: ignored
            i += 1
            let digits = i
            while i < b.count, b[i] >= 48 && b[i] <= 57 { i += 1 }
            guard i > digits else { return nil }
        }
        var offset = 0
        guard i < b.count else { return nil }
        if b[i] == 90 || b[i] == 122 {
            i += 1
        } else if b[i] == 43 || b[i] == 45, let h = number(i + 1, 2), i + 3 < b.count, b[i + 3] == 58,
                  let m = number(i + 4, 2), h < 24, m < 60 {
            offset = (h * 3600 + m * 60) * (b[i] == 43 ? 1 : -1)
            i += 6
        } else {
            return nil
        }
        guard i == b.count else { return nil }
        var t = tm()
        t.tm_year = Int32(year - 1900)
        t.tm_mon = Int32(month - 1)
        t.tm_mday = Int32(day)
        t.tm_hour = Int32(hour)
        t.tm_min = Int32(minute)
        t.tm_sec = Int32(min(second, 59))
        return Int64(timegm(&t)) - Int64(offset)
    }
}

extension ACMEClient {
    /// The CA's renewal window for the certificate `certificateID` names (RFC 9773 section 4.2: an unauthenticated
    /// GET); nil when the CA has no renewalInfo endpoint. An answer that is not a window is an error.
    func renewalInfo(certificateID: String) throws(ACMEError) -> RenewalWindow? {
        guard let base = try loadDirectory().renewalInfo else { return nil }
        let url = (base.hasSuffix("/") ? base : base + "/") + certificateID
        let response: ACMEHTTPClient.Response
        do {
            response = try transport.send("GET", url, headers: [], body: nil)
        } catch {
            throw ACMEError("cannot reach the CA at \(url): \(error.description)")
        }
        guard response.status == 200 else { throw Self.failure("the CA's renewal information for the certificate", response) }
        guard let json = DoctorJSON.parse(response.body), let window = json["suggestedWindow"],
              let startText = window["start"]?.stringValue, let endText = window["end"]?.stringValue,
              let start = RenewalWindow.parseTime(startText), let end = RenewalWindow.parseTime(endText), end > start else {
            throw ACMEError("the CA's renewal information at \(url) holds no suggestedWindow with a start before its end")
        }
        let retry = response.header("Retry-After").flatMap { Int64($0.filter { $0 != " " && $0 != "\t" }) }
        return RenewalWindow(start: start, end: end, retryAfter: retry, explanationURL: json["explanationURL"]?.stringValue)
    }
}
