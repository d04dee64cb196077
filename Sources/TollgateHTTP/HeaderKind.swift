/// Headers the proxy treats specially, recognised once by the parser (case-insensitive name match).
///
/// Every other name is `.other`. Names starting with `Proxy-` that are not `Proxy-Connection` or
/// `Proxy-Authorization` are `.proxyOther`, so the proxy can strip the whole family in one switch.
public enum HeaderKind: UInt8, Sendable {
    /// Any header without a special meaning to the proxy.
    case other
    /// `Host`.
    case host
    /// `Content-Length`.
    case contentLength
    /// `Transfer-Encoding`.
    case transferEncoding
    /// `Connection`.
    case connection
    /// `Keep-Alive`.
    case keepAlive
    /// `Proxy-Connection`.
    case proxyConnection
    /// `Proxy-Authorization`.
    case proxyAuthorization
    /// Any other name starting with `Proxy-`.
    case proxyOther
    /// `TE`.
    case te
    /// `Trailer`.
    case trailer
    /// `Upgrade`.
    case upgrade
    /// `Expect`.
    case expect
    /// `Authorization`.
    case authorization
    /// `Origin`.
    case origin
    /// `Referer`.
    case referer
    /// `X-Forwarded-For`.
    case xForwardedFor
    /// `X-Forwarded-Proto`.
    case xForwardedProto
    /// `X-Request-Id`.
    case xRequestId
    /// `X-Api-Key`.
    case xApiKey
    /// `Content-Type`.
    case contentType
    /// `Content-Encoding`.
    case contentEncoding
    /// `Cookie`: a browser's cookies for the proxy's origin, never meant for Ollama.
    case cookie
    /// `Forwarded`, `X-Real-IP` and `X-Forwarded-*` other than `-For`/`-Proto`: forwarding claims a client wrote.
    case forwarding
}
