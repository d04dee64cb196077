/// Everything the access log says about one request. Never a password, an Authorization value or a prompt.
struct AccessRecord {
    var requestID: [UInt8]
    var client: [UInt8]
    /// The authenticated user, or for a refused login the name it tried (`auth` then says how it was refused).
    var user: String?
    var method: String
    var path: String
    var status: Int
    var bytesIn: Int
    var bytesOut: Int
    var durationNanos: UInt64
    var ttfbNanos: UInt64?
    var upstreamNanos: UInt64?
    var model: String?
    var promptTokens: Int?
    var completionTokens: Int?
    /// What the rate limit decided (and, with shared limits, who decided).
    var rateLimit: RateLimitResult
    /// What authentication made of the request.
    var auth: AuthResult
    var reason: CloseReason
    /// The backend that served it (Host form), with several backends configured; nil otherwise.
    var backend: String? = nil
    /// The fingerprint of the `ollama` key the request was signed with (`SHA256:…`), when it was: says the user
    /// logged in with an ollama key, and with which.
    var ollamaKey: String? = nil
    /// The API key the request presented (its public id, never the secret), accepted or not; nil for a password.
    var keyID: String? = nil
    /// Why that key's login was refused (nil when it was not): the one place the reason is told.
    var ollamaKeyResult: OllamaKeyResult? = nil

    /// One JSON object and a newline.
    func appendJSON(timestamp: String, to out: inout [UInt8]) {
        var s = "{\"time\":\"\(timestamp)\",\"request_id\":\"\(String(decoding: requestID, as: UTF8.self))\""
        s += ",\"client\":\"\(String(decoding: client, as: UTF8.self))\",\"user\":\(user.map(ErrorResponse.jsonString) ?? "null")"
        s += ",\"method\":\(ErrorResponse.jsonString(method)),\"path\":\(ErrorResponse.jsonString(path)),\"status\":\(status)"
        s += ",\"bytes_in\":\(bytesIn),\"bytes_out\":\(bytesOut),\"duration_ms\":\(Self.millis(durationNanos))"
        s += ",\"ttfb_ms\":\(ttfbNanos.map(Self.millis) ?? "null"),\"upstream_ms\":\(upstreamNanos.map(Self.millis) ?? "null")"
        s += ",\"model\":\(model.map(ErrorResponse.jsonString) ?? "null")"
        s += ",\"prompt_tokens\":\(promptTokens.map(String.init) ?? "null"),\"completion_tokens\":\(completionTokens.map(String.init) ?? "null")"
        if let backend { s += ",\"backend\":\(ErrorResponse.jsonString(backend))" }
        if let ollamaKey { s += ",\"login\":\"ollama-key\",\"ollama_key\":\(ErrorResponse.jsonString(ollamaKey))" }
        if let keyID { s += ",\"key\":\(ErrorResponse.jsonString(keyID))" }
        if let ollamaKeyResult { s += ",\"ollama_key_refused\":\"\(ollamaKeyResult.text)\"" }
        s += ",\"rate_limit\":\"\(rateLimit.text)\",\"auth\":\"\(auth.text)\",\"end\":\"\(reason.rawValue)\"}\n"
        out.append(contentsOf: s.utf8)
    }

    /// One human-readable line.
    func appendText(timestamp: String, to out: inout [UInt8]) {
        var s = "\(timestamp) \(String(decoding: requestID, as: UTF8.self)) \(String(decoding: client, as: UTF8.self)) \(user.map { Self.escaped($0, quoted: false) } ?? "-")"
        s += " \"\(Self.escaped(method, quoted: true)) \(Self.escaped(path, quoted: true))\" \(status) in=\(bytesIn) out=\(bytesOut) \(Self.millis(durationNanos))ms"
        // No first byte (refused before the upstream, or it never answered): a bare "-", not "-ms".
        s += " ttfb=\(ttfbNanos.map { Self.millis($0) + "ms" } ?? "-")"
        if let model { s += " model=\(Self.escaped(model, quoted: false))" }
        if promptTokens != nil || completionTokens != nil {
            s += " tokens=\(promptTokens.map(String.init) ?? "-")/\(completionTokens.map(String.init) ?? "-")"
        }
        if let backend { s += " backend=\(Self.escaped(backend, quoted: false))" }
        if let ollamaKey { s += " ollama-key=\(Self.escaped(ollamaKey, quoted: false))" }
        if let keyID { s += " key=\(Self.escaped(keyID, quoted: false))" }
        if let ollamaKeyResult { s += " ollama-key-refused=\(ollamaKeyResult.text)" }
        // A name that did not log in is marked as such, with how it was refused.
        if user != nil && auth != .allowed { s += " auth=\(auth.text)" }
        s += " \(reason.rawValue)\n"
        out.append(contentsOf: s.utf8)
    }

    /// A request-derived value made safe for one text line, as nginx's `escape=default` does: `"`, `\\`, controls,
    /// DEL and every byte outside ASCII become `\xHH` (the UTF-8 bytes), and so does a space outside quotes, so a
    /// value can neither end its field nor its line.
    static func escaped(_ value: String, quoted: Bool) -> String {
        let clean = value.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F && $0 != 0x22 && $0 != 0x5C } ||
            (quoted && value.utf8.allSatisfy { $0 >= 0x20 && $0 < 0x7F && $0 != 0x22 && $0 != 0x5C })
        if clean { return value }
        let hex = Array("0123456789ABCDEF".utf8)
        var out: [UInt8] = []
        for b in value.utf8 {
            if b > 0x20 && b < 0x7F && b != 0x22 && b != 0x5C || (quoted && b == 0x20) {
                out.append(b)
            } else {
                out += [0x5C, 0x78, hex[Int(b >> 4)], hex[Int(b & 0x0F)]]
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Paths longer than this are logged cut, with how much was left out: a client sending 8 KB paths costs no more
    /// log than anyone else.
    static let maxLoggedPath = 1024

    /// `path`, or its first `maxLoggedPath` bytes and a note of the rest.
    static func clipped(_ path: String) -> String {
        let count = path.utf8.count
        guard count > maxLoggedPath else { return path }
        return String(decoding: path.utf8.prefix(maxLoggedPath), as: UTF8.self) + "...(\(count - maxLoggedPath) more bytes)"
    }

    /// Attempted user names longer than this are logged cut, with how much was left out.
    static let maxLoggedUser = 128

    /// `user`, or its first `maxLoggedUser` bytes (whole characters) and a note of the rest.
    static func clippedUser(_ user: String) -> String {
        let count = user.utf8.count
        guard count > maxLoggedUser else { return user }
        var kept = 0
        for character in user {
            let size = character.utf8.count
            if kept + size > maxLoggedUser { break }
            kept += size
        }
        return String(decoding: user.utf8.prefix(kept), as: UTF8.self) + "...(\(count - kept) more bytes)"
    }

    static func millis(_ nanos: UInt64) -> String {
        let tenths = nanos / 100_000
        return "\(tenths / 10).\(tenths % 10)"
    }
}
