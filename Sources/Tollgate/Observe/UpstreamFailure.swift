/// How an upstream failed an exchange: the `kind` label of `tollgate_upstream_errors_total`, derived from the
/// exchange's `CloseReason` in one place.
enum UpstreamFailure: Int, CaseIterable, Sendable {
    case refused, timeout, closed, invalid

    init?(_ reason: CloseReason) {
        switch reason {
        case .upstreamRefused: self = .refused
        case .upstreamTimeout: self = .timeout
        case .upstreamClosed: self = .closed
        case .upstreamInvalid: self = .invalid
        default: return nil
        }
    }

    var text: String {
        switch self {
        case .refused: return "refused"
        case .timeout: return "timeout"
        case .closed: return "closed"
        case .invalid: return "invalid"
        }
    }
}
