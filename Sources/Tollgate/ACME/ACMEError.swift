import TollgateIO

/// Why an ACME step failed: the CA's problem document (RFC 8555 section 6.7, RFC 7807) when it sent one, else what
/// went wrong on the way (a connection, a malformed answer).
public struct ACMEError: Error, Sendable, CustomStringConvertible {
    /// The problem's `type` ("urn:ietf:params:acme:error:badNonce"), nil when the CA sent no problem document.
    public var type: String?
    /// The problem's `detail`, or the local reason.
    public var detail: String
    /// The HTTP status, 0 when no answer came.
    public var status: Int
    /// The problem document as sent (compact JSON), for the log; empty when none.
    public var document: String

    /// A failure with no problem document.
    public init(_ detail: String, status: Int = 0) {
        self.type = nil
        self.detail = detail
        self.status = status
        self.document = ""
    }

    /// A failure the CA described.
    public init(type: String?, detail: String, status: Int, document: String) {
        self.type = type
        self.detail = detail
        self.status = status
        self.document = document
    }

    /// Whether the CA refused the request's nonce (RFC 8555 section 6.5): the request may be sent again with a new one.
    public var isBadNonce: Bool { type == "urn:ietf:params:acme:error:badNonce" }

    /// One line for the log: the detail, the status and the problem document.
    public var description: String {
        var text = detail
        if status != 0 { text += " (HTTP \(status))" }
        if !document.isEmpty { text += "; problem: \(document)" }
        return text
    }
}
