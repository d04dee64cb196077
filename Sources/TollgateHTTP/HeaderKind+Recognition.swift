extension HeaderKind {
    /// Classifies the header name `buffer[name]`, ignoring ASCII case.
    ///
    /// Dispatches on the length first so that most names cost one or two comparisons.
    public static func recognize(_ buffer: [UInt8], _ name: Range<Int>) -> HeaderKind {
        switch name.count {
        case 2:
            if HTTPBytes.equalsLowercased(buffer, name, "te") { return .te }
        case 4:
            if HTTPBytes.equalsLowercased(buffer, name, "host") { return .host }
        case 6:
            if HTTPBytes.equalsLowercased(buffer, name, "expect") { return .expect }
            if HTTPBytes.equalsLowercased(buffer, name, "origin") { return .origin }
            if HTTPBytes.equalsLowercased(buffer, name, "cookie") { return .cookie }
        case 7:
            if HTTPBytes.equalsLowercased(buffer, name, "trailer") { return .trailer }
            if HTTPBytes.equalsLowercased(buffer, name, "upgrade") { return .upgrade }
            if HTTPBytes.equalsLowercased(buffer, name, "referer") { return .referer }
        case 9:
            if HTTPBytes.equalsLowercased(buffer, name, "x-api-key") { return .xApiKey }
            if HTTPBytes.equalsLowercased(buffer, name, "forwarded") { return .forwarding }
            if HTTPBytes.equalsLowercased(buffer, name, "x-real-ip") { return .forwarding }
        case 10:
            if HTTPBytes.equalsLowercased(buffer, name, "connection") { return .connection }
            if HTTPBytes.equalsLowercased(buffer, name, "keep-alive") { return .keepAlive }
        case 12:
            if HTTPBytes.equalsLowercased(buffer, name, "content-type") { return .contentType }
            if HTTPBytes.equalsLowercased(buffer, name, "x-request-id") { return .xRequestId }
        case 13:
            if HTTPBytes.equalsLowercased(buffer, name, "authorization") { return .authorization }
        case 14:
            if HTTPBytes.equalsLowercased(buffer, name, "content-length") { return .contentLength }
        case 15:
            if HTTPBytes.equalsLowercased(buffer, name, "x-forwarded-for") { return .xForwardedFor }
        case 16:
            if HTTPBytes.equalsLowercased(buffer, name, "proxy-connection") { return .proxyConnection }
            if HTTPBytes.equalsLowercased(buffer, name, "content-encoding") { return .contentEncoding }
        case 17:
            if HTTPBytes.equalsLowercased(buffer, name, "transfer-encoding") { return .transferEncoding }
            if HTTPBytes.equalsLowercased(buffer, name, "x-forwarded-proto") { return .xForwardedProto }
        case 19:
            if HTTPBytes.equalsLowercased(buffer, name, "proxy-authorization") { return .proxyAuthorization }
        default:
            break
        }
        if HTTPBytes.hasPrefixLowercased(buffer, name, "proxy-") { return .proxyOther }
        if HTTPBytes.hasPrefixLowercased(buffer, name, "x-forwarded-") { return .forwarding }
        return .other
    }
}
