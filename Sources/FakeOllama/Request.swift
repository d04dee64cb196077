/// A request as the router sees it: the few header values Ollama looks at, and the de-chunked body.
struct Request {
    var method: String
    /// Path without the query string.
    var path: String
    var minorVersion: Int
    var host: String?
    var origin: String?
    var keepAlive: Bool
    var body: [UInt8]

    var isHead: Bool { method == "HEAD" }
}

/// What the router answers; the connection turns it into bytes.
enum Reply {
    /// A complete response with `Content-Length`. `headers` are the handler's (Content-Type etc.), written sorted
    /// by name like Go's `Header.Write`.
    case fixed(status: Int, headers: [(String, String)], body: [UInt8])
    /// A streamed 200 response: `lines` flushes, each its own chunk; `makeLine(i, &buffer)` appends line `i`.
    /// `headers` carry the Content-Type (and CORS headers when the request had an allowed Origin).
    /// `flushing` says whether a line is one chunk or one per server-sent event in it.
    case stream(headers: [(String, String)], lines: Int, flushing: StreamFlushing = .perLine,
                makeLine: (Int, inout [UInt8]) -> Void)

    /// `{"error":"..."}` with Gin's `application/json; charset=utf-8` and no trailing newline.
    static func ollamaError(_ status: Int, _ message: String) -> Reply {
        var w = JSONWriter()
        w.beginObject()
        w.key("error"); w.string(message)
        w.endObject()
        return .json(status, w.bytes)
    }

    /// A Gin `c.JSON` reply.
    static func json(_ status: Int, _ body: [UInt8]) -> Reply {
        .fixed(status: status, headers: [("Content-Type", "application/json; charset=utf-8")], body: body)
    }

    /// A Gin `c.String` reply.
    static func text(_ status: Int, _ body: String) -> Reply {
        .fixed(status: status, headers: [("Content-Type", "text/plain; charset=utf-8")], body: Array(body.utf8))
    }

    /// An empty-bodied `AbortWithStatus` reply (e.g. the Host check's 403).
    static func empty(_ status: Int, headers: [(String, String)] = []) -> Reply {
        .fixed(status: status, headers: headers, body: [])
    }
}

/// Reason phrases for the statuses the fake sends.
func reasonPhrase(_ status: Int) -> String {
    switch status {
    case 100: return "Continue"
    case 200: return "OK"
    case 204: return "No Content"
    case 400: return "Bad Request"
    case 403: return "Forbidden"
    case 404: return "Not Found"
    case 405: return "Method Not Allowed"
    case 413: return "Request Entity Too Large"
    case 431: return "Request Header Fields Too Large"
    case 500: return "Internal Server Error"
    case 501: return "Not Implemented"
    default: return "Status \(status)"
    }
}
