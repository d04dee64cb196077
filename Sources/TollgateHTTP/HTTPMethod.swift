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

    /// Whether sending the request twice has the effect of sending it once (RFC 9110 9.2.2): a proxy may send it
    /// again after a connection failed under it. POST, PATCH, CONNECT and unknown methods are not (nginx's
    /// `non_idempotent` set, Go's transport likewise): once any byte of one went out, it is never sent again.
    public var isIdempotent: Bool {
        switch self {
        case .get, .head, .put, .delete, .options, .trace: return true
        case .post, .patch, .connect, .other: return false
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
