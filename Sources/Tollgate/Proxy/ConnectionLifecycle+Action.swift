extension ConnectionLifecycle {
    /// What the connection does after an event (see `ConnectionLifecycle`).
    enum Action: Equatable {
        /// Nothing more: carry on.
        case proceed
        /// Close now, logging this reason (a timeout, the drain).
        case close(CloseReason)
        /// Keep-alive: wait for the next request (one already buffered is started).
        case keepAlive
        /// Read no further request: drop what is unread and end once the output is written.
        case closeAfterFlush
        /// The last response is written and nothing more can come: close_notify, then close (`completed`).
        case finish
        /// The last response is written and the client may still be sending: half-close, then read and discard
        /// what comes until the linger deadline (which closes as `completed`).
        case linger
    }
}
