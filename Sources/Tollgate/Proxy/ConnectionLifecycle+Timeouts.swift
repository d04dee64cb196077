extension ConnectionLifecycle {
    /// The timeouts a connection arms, in nanoseconds (from the `timeouts` settings).
    struct Timeouts: Equatable {
        /// From accept, or from the first byte of a later request, until its head is complete.
        var head: UInt64
        /// A keep-alive connection waiting for its next request.
        var keepAliveIdle: UInt64
        /// Between reads of a request body.
        var clientBodyIdle: UInt64
        /// A client that accepts none of the bytes waiting for it.
        var clientSend: UInt64
    }
}

extension Timeouts {
    /// The ones a client connection arms (`ConnectionLifecycle`), converted as `Worker.seconds` does.
    var connection: ConnectionLifecycle.Timeouts {
        ConnectionLifecycle.Timeouts(head: UInt64(requestHead * 1_000_000_000),
                                     keepAliveIdle: UInt64(keepAliveIdle * 1_000_000_000),
                                     clientBodyIdle: UInt64(clientBodyIdle * 1_000_000_000),
                                     clientSend: UInt64(clientSend * 1_000_000_000))
    }
}
