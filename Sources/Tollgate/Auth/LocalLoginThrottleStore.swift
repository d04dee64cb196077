/// This process's throttle alone: it lives in the password check, atomically with the credential cache, so there
/// is nothing to decide before it and nothing more to count after it.
struct LocalLoginThrottleStore: LoginThrottleStore {
    func gate(_ credentials: Credentials, key: APIKeyToken?, clientIP: String, later: Resumption<LoginVerdict>) -> NowOrLater<LoginVerdict> {
        .now(.check(throttle: true))
    }

    func recordFailure(_ key: LoginThrottle.Key) {}
}
