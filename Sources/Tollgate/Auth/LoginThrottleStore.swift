/// The failed-login throttle as the `LoginThrottling` and `Authentication` phases see it: this process's, applied
/// inside the password check (`LocalLoginThrottleStore`), or the fleet's (`SharedLoginThrottleStore`, which falls
/// back to this process's while the fleet's cannot answer). The worker picks one when it builds its phases.
/// Loop thread only.
protocol LoginThrottleStore {
    /// Before the password of `credentials` from `clientIP` is checked: whether the check goes on (and whether it
    /// applies this process's throttle), or the login is refused. `key`: an API key login (`credentials` then
    /// names the user its failures count under, with no password).
    func gate(_ credentials: Credentials, key: APIKeyToken?, clientIP: String, later: Resumption<LoginVerdict>) -> NowOrLater<LoginVerdict>
    /// Counts a failed login beyond this process (the password check has counted it in this process's throttle).
    func recordFailure(_ key: LoginThrottle.Key)
}
