/// When a client connection reads and starts its next pipelined request: the output bound per client, with no I/O.
///
/// Every byte queued for a client counts against `outputBound`, whoever produced it (a proxied response or one of
/// Tollgate's own answers). While the queue is at the bound the connection neither reads the client nor starts the
/// next pipelined request, so a client that sends requests and never reads the answers costs at most the bound plus
/// one answer; the requests that had to wait resume once the client has read everything queued.
///
/// `ClientConnection` asks it; `fuzz/targets/connection.swift` drives it inside a model connection, with bytes in
/// any split and readable and writable events in any order.
public struct ClientFlow: Sendable {
    /// Bytes queued for the client at which reading and starting requests stop.
    public var outputBound: Int
    /// A pipelined request is waiting for the queue to drain.
    public private(set) var holding = false

    public init(outputBound: Int) {
        self.outputBound = outputBound
    }

    /// Whether more client bytes may be read while `queued` bytes wait to be written to it.
    @inline(__always)
    public func mayRead(queued: Int) -> Bool { queued < outputBound }

    /// Whether the next pipelined request may start while `queued` bytes wait; when not, it waits (`holding`)
    /// until `drained`.
    @inline(__always)
    public mutating func mayStart(queued: Int) -> Bool {
        if queued < outputBound { return true }
        holding = true
        return false
    }

    /// The client has read everything queued: true when requests waited and must be resumed now.
    @inline(__always)
    public mutating func drained() -> Bool {
        defer { holding = false }
        return holding
    }
}
