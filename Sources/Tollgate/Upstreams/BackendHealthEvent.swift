/// A change of a backend's health worth one log line.
public enum BackendHealthEvent: Sendable, Equatable {
    /// It failed `health-fails` times in a row and gets no new requests.
    case ejected(name: String, failures: Int)
    /// A check succeeded after an ejection.
    case recovered(name: String)
}
