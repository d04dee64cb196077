import Glibc

/// Why the fake server could not start.
public enum FakeOllamaError: Error, CustomStringConvertible, Sendable {
    /// The host is neither an IP literal nor a name that resolves.
    case cannotResolve(host: String)
    /// socket/bind/listen failed, e.g. the port is taken (`EADDRINUSE`).
    case cannotListen(host: String, port: UInt16, reason: String)

    public var description: String {
        switch self {
        case .cannotResolve(let host):
            return "cannot resolve listen address \"\(host)\""
        case .cannotListen(let host, let port, let reason):
            let shown = host.contains(":") ? "[\(host)]" : host
            return "cannot listen on \(shown):\(port): \(reason)"
        }
    }
}

/// The text of an errno value, e.g. "Address already in use".
func errnoText(_ code: Int32) -> String {
    String(cString: strerror(code))
}
