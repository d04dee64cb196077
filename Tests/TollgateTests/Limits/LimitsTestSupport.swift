@testable import Tollgate
import TollgateIO

/// Parses a numeric address for tests; traps on a typo.
func host(_ text: String) -> SocketAddress.Host {
    guard let h = SocketAddress.parseHost(text) else { fatalError("bad test address \(text)") }
    return h
}

/// A parsed CIDR for tests; traps on a typo.
func cidr(_ text: String) -> CIDR {
    guard let c = CIDR(parsing: text) else { fatalError("bad test CIDR \(text)") }
    return c
}

/// Rate-limit settings with nginx's `rate=10r/s burst=20` unless told otherwise.
func rateSettings(rate: Double = 10, burst: Int = 20, maxKeys: Int = 100_000) -> RateLimitSettings {
    var s = RateLimitSettings()
    s.ratePerSecond = rate
    s.burst = burst
    s.maxKeys = maxKeys
    return s
}

extension RateDecision {
    /// Whether the request passed.
    var isAllowed: Bool {
        if case .allowed = self { return true }
        return false
    }
}
