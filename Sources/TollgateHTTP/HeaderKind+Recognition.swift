extension HeaderKind {
    /// Classifies the header name `buffer[name]`, ignoring ASCII case.
    ///
    /// Dispatches on the length first so that most names cost one or two comparisons.
    public static func recognize(_ buffer: [UInt8], _ name: Range<Int>) -> HeaderKind {
        precondition(name.lowerBound >= 0 && name.upperBound <= buffer.count, "name outside the buffer")
        return buffer.withUnsafeBufferPointer { recognize($0, name) }
    }

    /// `recognize` on bytes the caller has already checked `name` against.
    static func recognize(_ bytes: UnsafeBufferPointer<UInt8>, _ name: Range<Int>) -> HeaderKind {
        /// Whether the name is `lowercase` ignoring ASCII case; the switch below has matched the lengths.
        func named(_ lowercase: StaticString) -> Bool {
            HTTPBytes.matches(bytes, at: name.lowerBound, lowercase, folding: true)
        }
        switch name.count {
        case 2:
            if named("te") { return .te }
        case 4:
            if named("host") { return .host }
        case 6:
            if named("expect") { return .expect }
            if named("origin") { return .origin }
            if named("cookie") { return .cookie }
        case 7:
            if named("trailer") { return .trailer }
            if named("upgrade") { return .upgrade }
            if named("referer") { return .referer }
        case 9:
            if named("x-api-key") { return .xApiKey }
            if named("forwarded") { return .forwarding }
            if named("x-real-ip") { return .forwarding }
        case 10:
            if named("connection") { return .connection }
            if named("keep-alive") { return .keepAlive }
        case 12:
            if named("content-type") { return .contentType }
            if named("x-request-id") { return .xRequestId }
        case 13:
            if named("authorization") { return .authorization }
        case 14:
            if named("content-length") { return .contentLength }
        case 15:
            if named("x-forwarded-for") { return .xForwardedFor }
        case 16:
            if named("proxy-connection") { return .proxyConnection }
            if named("content-encoding") { return .contentEncoding }
        case 17:
            if named("transfer-encoding") { return .transferEncoding }
            if named("x-forwarded-proto") { return .xForwardedProto }
        case 19:
            if named("proxy-authorization") { return .proxyAuthorization }
        default:
            break
        }
        if name.count >= 6 && named("proxy-") { return .proxyOther }
        if name.count >= 12 && named("x-forwarded-") { return .forwarding }
        return .other
    }
}
