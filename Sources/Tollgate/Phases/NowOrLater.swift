/// How the request path's decision-makers answer (the per-client rate, the login throttle, inference slots): at
/// once, or later through the `Resumption` they were given. One shape for all of them, whichever implementation
/// (this process's limiters, or the fleet's shared ones) decides.
enum NowOrLater<Value> {
    /// Decided during the call.
    case now(Value)
    /// The decision comes later: the decision-maker calls its resumption's `resume` (possibly before returning).
    case later

    /// The same answer with `transform` applied to a value given now.
    func map<Other>(_ transform: (Value) -> Other) -> NowOrLater<Other> {
        switch self {
        case .now(let value): return .now(transform(value))
        case .later: return .later
        }
    }

    /// Starts a request that answers through a completion: a value given before `start` returns is `.now`; one
    /// given afterwards goes to `later`, and the answer is `.later`. The one place that tells an answer given at once
    /// (a local cache) from one that came later (over the network).
    static func asking(_ start: (@escaping (Value) -> Void) -> Void,
                       later: @escaping (Value) -> Void) -> NowOrLater<Value> {
        var immediate: Value?
        var returned = false
        start { value in
            guard returned else {
                immediate = value
                return
            }
            later(value)
        }
        returned = true
        if let immediate { return .now(immediate) }
        return .later
    }
}
