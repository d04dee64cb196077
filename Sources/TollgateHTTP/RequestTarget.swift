/// The one path a request is decided on and forwarded as: the path Ollama will route on.
///
/// Ollama is Go: net/http parses the request-target with `url.ParseRequestURI` and gin routes on `URL.Path`, the
/// percent-decoded path (`/api%2Fpull` and `/%61pi/pull` both reach the pull handler). An absolute-form target
/// routes on its path alone. So Tollgate decodes the path exactly as Go does, decides every policy on those bytes,
/// and forwards an origin-form target whose Go decoding is those same bytes. What cannot be made unambiguous is
/// refused with 400 (as HAProxy's `normalize-uri` and nginx's `merge_slashes`/`%2F` handling refuse or rewrite
/// before routing, never after):
/// - an invalid escape (`%`, `%4`, `%zz`), which Go refuses but another reader might not;
/// - an encoded `/` (`%2F`): one hop splits segments on it, another after decoding;
/// - NUL or another control byte once decoded;
/// - a `#` anywhere in the target (a fragment is never sent by a client; Go keeps it in the path).
///
/// Pure: no I/O; allocates only when the target has to be rewritten.
public enum RequestTarget {
    /// What to route on and what to send.
    public enum Canonical: Sendable, Equatable {
        /// Origin-form without `%`: the path is `buffer[head.path]` and the target is forwarded byte for byte.
        case asSent
        /// The decoded path, and the origin-form target (path re-encoded the way Go's `URL.EscapedPath` would,
        /// then the query as sent) to forward instead.
        case rewritten(path: [UInt8], target: [UInt8])
    }

    /// Decides the canonical form of `head`'s request-target, or the error to refuse it with.
    public static func canonicalize(_ buffer: [UInt8], _ head: RequestHead) -> Result<Canonical, HTTPParseError> {
        let target = head.target
        var i = target.lowerBound
        var hasPercent = false
        while i < target.upperBound {
            let b = buffer[i]
            if b == ASCII.hash { return .failure(HTTPParseError(status: 400, reason: "Fragment in request target")) }
            if b == ASCII.percent && i < head.path.upperBound { hasPercent = true }
            i &+= 1
        }
        let originForm = buffer[target.lowerBound] == ASCII.slash
        if originForm && !hasPercent { return .success(.asSent) }
        if buffer[target.lowerBound] == ASCII.star { return .success(.asSent) }

        // Absolute-form without a path (`http://host` or `http://host?q`) routes as "/" in Go.
        let noPath = !originForm && isAuthorityPlaceholder(buffer, head)
        let pathBytes: ArraySlice<UInt8> = noPath ? [ASCII.slash] : buffer[head.path]
        var decoded: [UInt8] = []
        decoded.reserveCapacity(pathBytes.count)
        var k = pathBytes.startIndex
        while k < pathBytes.endIndex {
            let b = pathBytes[k]
            if b == ASCII.percent {
                guard k &+ 2 < pathBytes.endIndex, let hi = hexValue(pathBytes[k &+ 1]), let lo = hexValue(pathBytes[k &+ 2]) else {
                    return .failure(HTTPParseError(status: 400, reason: "Invalid percent-encoding in request target"))
                }
                let byte = hi << 4 | lo
                if byte == ASCII.slash {
                    return .failure(HTTPParseError(status: 400, reason: "Encoded \"/\" in request path"))
                }
                if byte < 0x20 || byte == 0x7F {
                    return .failure(HTTPParseError(status: 400, reason: "Encoded control character in request path"))
                }
                decoded.append(byte)
                k &+= 3
            } else {
                decoded.append(b)
                k &+= 1
            }
        }
        var forward: [UInt8] = []
        forward.reserveCapacity(decoded.count + 16)
        for b in decoded {
            if keepsRaw(b) {
                forward.append(b)
            } else {
                forward.append(ASCII.percent)
                forward.append(upperHex[Int(b >> 4)])
                forward.append(upperHex[Int(b & 0x0F)])
            }
        }
        let queryStart = noPath ? firstQuestion(buffer, target) : head.path.upperBound
        if queryStart < target.upperBound { forward.append(contentsOf: buffer[queryStart..<target.upperBound]) }
        return .success(.rewritten(path: decoded, target: forward))
    }

    /// Absolute-form with no path: the parser points `path` at the second "/" of "://" (one byte before the
    /// authority), which is not the path.
    private static func isAuthorityPlaceholder(_ buffer: [UInt8], _ head: RequestHead) -> Bool {
        let p = head.path
        guard p.count == 1, p.lowerBound > head.target.lowerBound, buffer[head.target.lowerBound] != ASCII.slash else {
            return false
        }
        return buffer[p.lowerBound &- 1] == ASCII.slash && p.lowerBound &- 2 >= head.target.lowerBound
            && buffer[p.lowerBound &- 2] == ASCII.colon
    }

    private static func firstQuestion(_ buffer: [UInt8], _ target: Range<Int>) -> Int {
        var i = target.lowerBound
        while i < target.upperBound && buffer[i] != ASCII.question { i &+= 1 }
        return i
    }

    /// Bytes Go's `shouldEscape(c, encodePath)` leaves as they are: unreserved and `$&+,/:;=@`. Writing exactly
    /// these raw makes the forwarded target equal to Go's own escaping of the path, so `URL.RawPath` stays empty and
    /// gin routes on the decoded path whether or not `UseRawPath` is set.
    @inline(__always)
    static func keepsRaw(_ b: UInt8) -> Bool {
        switch b {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        case UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "~"),
             UInt8(ascii: "$"), UInt8(ascii: "&"), UInt8(ascii: "+"), UInt8(ascii: ","), UInt8(ascii: "/"),
             UInt8(ascii: ":"), UInt8(ascii: ";"), UInt8(ascii: "="), UInt8(ascii: "@"):
            return true
        default:
            return false
        }
    }

    private static let upperHex: [UInt8] = Array("0123456789ABCDEF".utf8)

    @inline(__always)
    static func hexValue(_ b: UInt8) -> UInt8? {
        switch b {
        case 0x30...0x39: return b &- 0x30
        case 0x41...0x46: return b &- 0x41 &+ 10
        case 0x61...0x66: return b &- 0x61 &+ 10
        default: return nil
        }
    }
}
