import TollgateIO

/// One configured Ollama backend: `URL[ max=N]` from the `upstream` setting.
public struct BackendSpec: Sendable, Equatable {
    /// Where it listens and the Host header it expects.
    public var address: UpstreamAddress
    /// Inference requests it may have in flight at once, as given by `max=`; nil when not given (then 1 with two
    /// or more backends, unlimited with a single one: see `ServerConfig.backendLimit`).
    public var maxInFlight: Int?

    /// A backend at `address` with an optional `max=`.
    public init(address: UpstreamAddress, maxInFlight: Int? = nil) {
        self.address = address
        self.maxInFlight = maxInFlight
    }

    /// The largest `max=` accepted.
    public static let maxLimit = 100_000

    /// Parses `http://HOST:PORT` optionally followed by blanks and `max=N` (1...100000); a HOST that is a name is
    /// looked up with `resolve` (see `UpstreamAddress.parse`). The error is a message without location, naming what
    /// is wrong.
    static func parse(_ text: String, resolve: HostResolver = SocketAddress.resolve) -> Result<BackendSpec, SettingValueError> {
        let words = text.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        guard let url = words.first else { return .failure(SettingValueError("empty upstream")) }
        let address: UpstreamAddress
        switch UpstreamAddress.parse(url, resolve: resolve) {
        case .success(let a): address = a
        case .failure(let e): return .failure(e)
        }
        var spec = BackendSpec(address: address)
        for option in words.dropFirst() {
            guard option.hasPrefix("max=") else {
                return .failure(SettingValueError("unknown option \(option.debugDescription) after \(url) (only max=N)"))
            }
            guard spec.maxInFlight == nil else {
                return .failure(SettingValueError("max= given twice for \(url)"))
            }
            let value = option.dropFirst(4)
            guard let n = Int(value), (1...maxLimit).contains(n) else {
                return .failure(SettingValueError("max=\(value) for \(url) is not an integer in 1...\(maxLimit)"))
            }
            spec.maxInFlight = n
        }
        return .success(spec)
    }
}
