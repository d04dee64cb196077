/// The two HTTP/1 versions Tollgate speaks; anything else is refused while parsing (505).
public enum HTTPVersion: Sendable, Equatable {
    /// `HTTP/1.0`: connections close after each message unless `Connection: keep-alive` says otherwise.
    case http10
    /// `HTTP/1.1`: persistent connections by default, `Host` required in requests.
    case http11
}
