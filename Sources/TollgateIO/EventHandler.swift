/// What a registered descriptor wants to hear about.
public struct Interest: OptionSet, Sendable, Hashable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let read = Interest(rawValue: 1)
    public static let write = Interest(rawValue: 2)
    public static let none: Interest = []
}

/// What epoll reported for a descriptor.
public struct ReadyEvents: OptionSet, Sendable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let readable = ReadyEvents(rawValue: 1)
    public static let writable = ReadyEvents(rawValue: 2)
    /// The peer shut down its side (EPOLLRDHUP) or the socket hung up (EPOLLHUP).
    public static let peerClosed = ReadyEvents(rawValue: 4)
    public static let error = ReadyEvents(rawValue: 8)
}

/// An object that owns a registered descriptor and reacts to its readiness on one event loop.
///
/// Every call happens on the loop's thread. `deadline` is read by the loop's periodic sweep: when it is not zero
/// and has passed, `deadlineExpired` is called (and should set a new deadline or zero).
public protocol EventHandler: AnyObject {
    /// Readiness for the registered descriptor.
    func ready(_ events: ReadyEvents)
    /// Monotonic nanoseconds at which `deadlineExpired` fires; zero when no timeout is armed.
    var deadline: UInt64 { get }
    /// The deadline passed.
    func deadlineExpired(now: UInt64)
}
