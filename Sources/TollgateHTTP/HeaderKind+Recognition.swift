extension HeaderKind {
    /// Classifies the header name `buffer[name]`, ignoring ASCII case.
    ///
    /// Dispatches on the length first so that most names cost one or two comparisons.
    public static func recognize(_ buffer: [UInt8], _ name: Range<Int>) -> HeaderKind {
        recognize(buffer.span, name)
    }

    /// `recognize` on the bytes of a buffer already in hand.
    static func recognize(_ bytes: borrowing Span<UInt8>, _ name: Range<Int>) -> HeaderKind {
        switch name.count {
        case 2:
            if named(bytes, name, "te") { return .te }
        case 4:
            if named(bytes, name, "host") { return .host }
        case 6:
            if named(bytes, name, "expect") { return .expect }
            if named(bytes, name, "origin") { return .origin }
            if named(bytes, name, "cookie") { return .cookie }
        case 7:
            if named(bytes, name, "trailer") { return .trailer }
            if named(bytes, name, "upgrade") { return .upgrade }
            if named(bytes, name, "referer") { return .referer }
        case 9:
            if named(bytes, name, "x-api-key") { return .xApiKey }
            if named(bytes, name, "forwarded") { return .forwarding }
            if named(bytes, name, "x-real-ip") { return .forwarding }
        case 10:
            if named(bytes, name, "connection") { return .connection }
            if named(bytes, name, "keep-alive") { return .keepAlive }
        case 12:
            if named(bytes, name, "content-type") { return .contentType }
            if named(bytes, name, "x-request-id") { return .xRequestId }
        case 13:
            if named(bytes, name, "authorization") { return .authorization }
        case 14:
            if named(bytes, name, "content-length") { return .contentLength }
        case 15:
            if named(bytes, name, "x-forwarded-for") { return .xForwardedFor }
        case 16:
            if named(bytes, name, "proxy-connection") { return .proxyConnection }
            if named(bytes, name, "content-encoding") { return .contentEncoding }
        case 17:
            if named(bytes, name, "transfer-encoding") { return .transferEncoding }
            if named(bytes, name, "x-forwarded-proto") { return .xForwardedProto }
        case 19:
            if named(bytes, name, "proxy-authorization") { return .proxyAuthorization }
        default:
            break
        }
        if HTTPBytes.matches(bytes, name, "proxy-", folding: true, prefix: true) { return .proxyOther }
        if HTTPBytes.matches(bytes, name, "x-forwarded-", folding: true, prefix: true) { return .forwarding }
        return .other
    }

    /// Whether the name is `lowercase`, ignoring ASCII case.
    private static func named(_ bytes: borrowing Span<UInt8>, _ name: Range<Int>, _ lowercase: StaticString) -> Bool {
        HTTPBytes.matches(bytes, name, lowercase, folding: true, prefix: false)
    }
}
