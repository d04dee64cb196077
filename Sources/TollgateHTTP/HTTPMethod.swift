/// A request method; names are case-sensitive, so `get` is `.other` (RFC 9110 9.1).
public enum HTTPMethod: Sendable, Equatable {
    /// `GET`.
    case get
    /// `HEAD`.
    case head
    /// `POST`.
    case post
    /// `PUT`.
    case put
    /// `DELETE`.
    case delete
    /// `OPTIONS`.
    case options
    /// `PATCH`.
    case patch
    /// `CONNECT`.
    case connect
    /// `TRACE`.
    case trace
    /// Any other token; read its name from `RequestHead.methodRange`.
    case other

    /// The name of a method this enum names, nil for `.other` (read that from `RequestHead.methodRange`).
    public var name: String? {
        switch self {
        case .get: return "GET"
        case .head: return "HEAD"
        case .post: return "POST"
        case .put: return "PUT"
        case .delete: return "DELETE"
        case .options: return "OPTIONS"
        case .patch: return "PATCH"
        case .connect: return "CONNECT"
        case .trace: return "TRACE"
        case .other: return nil
        }
    }

    /// Whether the method only reads (RFC 9110 9.2.1, GET, HEAD, OPTIONS, TRACE): a request with it may be sent
    /// again after a connection failed under it (Go's transport replays only these). PUT and DELETE are idempotent by
    /// the RFC, but a server's DELETE may act and then fail: they are not sent twice.
    public var isSafe: Bool {
        switch self {
        case .get, .head, .options, .trace: return true
        case .post, .put, .delete, .patch, .connect, .other: return false
        }
    }

    /// Classifies the method token `buffer[range]` (exact, case-sensitive match).
    public static func recognize(_ buffer: [UInt8], _ range: Range<Int>) -> HTTPMethod {
        switch range.count {
        case 3:
            if HTTPBytes.equals(buffer, range, "GET") { return .get }
            if HTTPBytes.equals(buffer, range, "PUT") { return .put }
        case 4:
            if HTTPBytes.equals(buffer, range, "POST") { return .post }
            if HTTPBytes.equals(buffer, range, "HEAD") { return .head }
        case 5:
            if HTTPBytes.equals(buffer, range, "PATCH") { return .patch }
            if HTTPBytes.equals(buffer, range, "TRACE") { return .trace }
        case 6:
            if HTTPBytes.equals(buffer, range, "DELETE") { return .delete }
        case 7:
            if HTTPBytes.equals(buffer, range, "OPTIONS") { return .options }
            if HTTPBytes.equals(buffer, range, "CONNECT") { return .connect }
        default:
            break
        }
        return .other
    }
}
