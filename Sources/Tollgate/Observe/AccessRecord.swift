/// Everything the access log says about one request. Never a password, an Authorization value or a prompt.
struct AccessRecord {
    var requestID: [UInt8]
    var client: [UInt8]
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
    /// "pass", "rejected", "dry-run", "exempt" or "off"; with Redis one of those plus who decided (":redis",
    /// ":cache", ":local", ":open"), or "unavailable:closed".
    var rateLimit: String
    /// "allowed", "denied", "missing", "throttled", "overloaded", "public", "off", or "unavailable" (the shared
    /// failed-login throttle could not answer and `redis-fallback` is closed).
    var auth: String
    var reason: CloseReason
    /// The backend that served it (Host form), with several backends configured; nil otherwise.
    var backend: String? = nil

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
        s += ",\"rate_limit\":\"\(rateLimit)\",\"auth\":\"\(auth)\",\"end\":\"\(reason.rawValue)\"}\n"
        out.append(contentsOf: s.utf8)
    }

    /// One human-readable line.
    func appendText(timestamp: String, to out: inout [UInt8]) {
        var s = "\(timestamp) \(String(decoding: requestID, as: UTF8.self)) \(String(decoding: client, as: UTF8.self)) \(user ?? "-")"
        s += " \"\(method) \(path)\" \(status) in=\(bytesIn) out=\(bytesOut) \(Self.millis(durationNanos))ms"
        s += " ttfb=\(ttfbNanos.map(Self.millis) ?? "-")ms"
        if let model { s += " model=\(model)" }
        if promptTokens != nil || completionTokens != nil {
            s += " tokens=\(promptTokens.map(String.init) ?? "-")/\(completionTokens.map(String.init) ?? "-")"
        }
        if let backend { s += " backend=\(backend)" }
        s += " \(reason.rawValue)\n"
        out.append(contentsOf: s.utf8)
    }

    static func millis(_ nanos: UInt64) -> String {
        let tenths = nanos / 100_000
        return "\(tenths / 10).\(tenths % 10)"
    }
}
