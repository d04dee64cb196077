import TollgateHTTP

/// A failure Tollgate answers itself: it knows its status and renders its body in the caller's API family.
public struct ErrorResponse: Sendable, Equatable {
    public var status: Int
    public var message: String
    /// Extra response headers (Retry-After, WWW-Authenticate, Allow...).
    public var headers: [(String, String)] = []

    public init(status: Int, message: String, headers: [(String, String)] = []) {
        self.status = status
        self.message = message
        self.headers = headers
    }

    public static func == (a: ErrorResponse, b: ErrorResponse) -> Bool {
        a.status == b.status && a.message == b.message && a.headers.elementsEqual(b.headers, by: { $0 == $1 })
    }

    /// The JSON body for a family.
    public func body(for family: APIFamily) -> String {
        let msg = ErrorResponse.jsonString(message)
        switch family {
        case .ollama:
            return "{\"error\":\(msg)}"
        case .openAI:
            let (type, code) = ErrorResponse.openAIType(status)
            return "{\"error\":{\"message\":\(msg),\"type\":\"\(type)\",\"param\":null,\"code\":\(code.map { "\"\($0)\"" } ?? "null")}}"
        case .anthropic:
            return "{\"type\":\"error\",\"error\":{\"type\":\"\(ErrorResponse.anthropicType(status))\",\"message\":\(msg)}}"
        }
    }

    /// Serializes the whole response: status line, headers, JSON body.
    public func serialize(for family: APIFamily, requestID: RequestID?, close: Bool, headOnly: Bool = false, into out: inout [UInt8]) {
        let body = self.body(for: family)
        HTTPWriter.appendStatusLine(status, to: &out)
        HTTPWriter.appendHeader("Content-Type", "application/json; charset=utf-8", to: &out)
        HTTPWriter.appendRaw("Content-Length: ", to: &out)
        HTTPWriter.appendDecimal(body.utf8.count, to: &out)
        HTTPWriter.appendCRLF(to: &out)
        if let requestID {
            HTTPWriter.appendRaw("X-Request-Id: ", to: &out)
            requestID.append(to: &out)
            HTTPWriter.appendCRLF(to: &out)
        }
        for (name, value) in headers { HTTPWriter.appendField(name, value, to: &out) }
        if close { HTTPWriter.appendHeader("Connection", "close", to: &out) }
        HTTPWriter.appendCRLF(to: &out)
        if !headOnly { out.append(contentsOf: body.utf8) }
    }

    static func openAIType(_ status: Int) -> (String, String?) {
        switch status {
        case 401: return ("invalid_request_error", "invalid_api_key")
        case 403: return ("invalid_request_error", "permission_denied")
        case 404: return ("invalid_request_error", "not_found")
        case 429: return ("requests", "rate_limit_exceeded")
        case 400..<500: return ("invalid_request_error", nil)
        default: return ("server_error", nil)
        }
    }

    static func anthropicType(_ status: Int) -> String {
        switch status {
        case 401: return "authentication_error"
        case 403: return "permission_error"
        case 404: return "not_found_error"
        case 413: return "request_too_large"
        case 429: return "rate_limit_error"
        case 400..<500: return "invalid_request_error"
        case 503: return "overloaded_error"
        default: return "api_error"
        }
    }

    /// A JSON string literal with the required escapes.
    static func jsonString(_ s: String) -> String {
        // Most values (paths, model names) are plain printable ASCII: quoted as they are, without a scalar loop.
        if s.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7F && $0 != 0x22 && $0 != 0x5C }) { return "\"" + s + "\"" }
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                // Controls, DEL, C1 controls and the JavaScript line separators: escaped, so no reader of a log
                // line or a body can be made to see a line break or a terminal escape a client wrote.
                if u.value < 0x20 || (u.value >= 0x7F && u.value <= 0x9F) || u.value == 0x2028 || u.value == 0x2029 {
                    let hex = String(u.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        return out + "\""
    }
}

extension ErrorResponse {
    static func badGateway(_ why: String) -> ErrorResponse { ErrorResponse(status: 502, message: "upstream unavailable: \(why)") }
    static func gatewayTimeout(_ why: String) -> ErrorResponse { ErrorResponse(status: 504, message: "upstream timed out: \(why)") }
    static func tooLarge(limit: Int) -> ErrorResponse {
        ErrorResponse(status: 413, message: "request body larger than the \(limit)-byte limit for this route")
    }
    static func fromParse(_ e: HTTPParseError) -> ErrorResponse { ErrorResponse(status: e.status, message: e.reason) }
}

/// "5 s", "0.3 s": a duration for messages.
func seconds(_ s: Double) -> String {
    s == s.rounded() ? "\(Int(s)) s" : "\((s * 1000).rounded() / 1000) s"
}
