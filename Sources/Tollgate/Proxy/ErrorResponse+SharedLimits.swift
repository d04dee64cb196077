extension ErrorResponse {
    /// The 503 of a shared limit that cannot answer while its fallback refuses (`closed`).
    static let sharedLimitsUnavailable = ErrorResponse(status: 503, message: "shared limits unavailable",
                                                       headers: [("Retry-After", "1")])
}
