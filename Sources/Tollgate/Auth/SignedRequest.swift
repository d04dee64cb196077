/// A signed credential with what it must have signed: `METHOD,PATH?ts=TS` for this request (the method as sent, the
/// path as Ollama decodes it, `ts` as the query carries it).
struct SignedRequest: Sendable {
    var credential: SignedCredential
    /// The bytes the client must have signed.
    var message: [UInt8]
    /// The `ts` query value, nil when the query has none (or more than one, or not plain digits).
    var ts: Int64?

    /// The request's parts as the `ollama` CLI signs them (Ollama's `api/client.go`: `METHOD,PATH?ts=NOW`).
    init(credential: SignedCredential, method: String, path: String, query: ArraySlice<UInt8>) {
        self.credential = credential
        let digits = SignedRequest.timestamp(in: query)
        ts = digits.map { $0.reduce(Int64(0)) { $0 * 10 + Int64($1 - 0x30) } }
        var message = Array(method.utf8)
        message.append(UInt8(ascii: ","))
        message += path.utf8
        message += "?ts=".utf8
        message += digits ?? []
        self.message = message
    }

    /// The digits of the one `ts` parameter of a query (`?a=1&ts=1733350000`, the leading `?` included or not):
    /// plain decimal, at most 12; nil when absent, repeated or anything else. The message is built from the digits
    /// as sent, which are what the client signed.
    static func timestamp(in query: ArraySlice<UInt8>) -> ArraySlice<UInt8>? {
        var found: ArraySlice<UInt8>?
        var seen = false
        for part in query.drop(while: { $0 == UInt8(ascii: "?") }).split(separator: UInt8(ascii: "&")) {
            guard part.starts(with: "ts=".utf8) else { continue }
            if seen { return nil }
            seen = true
            let digits = part.dropFirst(3)
            guard !digits.isEmpty, digits.count <= 12, digits.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
            found = digits
        }
        return found
    }
}
