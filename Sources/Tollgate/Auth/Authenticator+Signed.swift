extension Authenticator {
    /// A login with an `ollama` key through this process's failed-login throttle: refused without a check when
    /// `login` is throttled (unless `throttle` is false: the fleet's throttle decided), otherwise `verify` runs on
    /// the caller's thread, outside the lock, and its refusal counts as a failed login for the client prefix and
    /// the key's user, as a wrong password does (a full replay cache, or a key over its share of it, does not).
    /// Cheap and non-blocking: call on the event loop.
    func checkSigned(_ login: LoginThrottle.Key, throttle: Bool,
                     verify: () -> SignedLogins.Verdict) -> SignedLogins.Verdict {
        let now = clock()
        if throttle {
            let refusal: Int? = state.withLock { s in
                guard let seconds = s.throttle.retryAfter(login, now: now) else { return nil }
                s.stats.throttled += 1
                return seconds
            }
            if let refusal { return .throttled(retryAfterSeconds: refusal) }
        }
        let verdict = verify()
        var newlyThrottled: (String, Int)?
        state.withLock { s in
            switch verdict {
            case .allowed: s.stats.allowed += 1
            case .refused(.overloaded), .keyOverShare: s.stats.overloaded += 1
            case .refused: newlyThrottled = record(false, login, key: [], now: now, in: &s)
            case .throttled: s.stats.throttled += 1
            }
        }
        if let (subject, seconds) = newlyThrottled { onThrottle?(subject, seconds) }
        return verdict
    }

}
