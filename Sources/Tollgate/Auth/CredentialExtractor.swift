/// Finds the user name and password, or the API key, in a request's authentication headers.
///
/// Pure and allocation-light: runs on the event loop for every request.
public enum CredentialExtractor {
    /// From the raw header values (bytes as received, nil when the header is absent):
    /// `Authorization: Basic base64(user:password)` (RFC 7617, strict base64),
    /// `Authorization: Bearer user:password` (OpenAI SDKs, `OLLAMA_API_KEY`) or
    /// `x-api-key: user:password` (Anthropic SDKs). Scheme names are case-insensitive; `Authorization` wins
    /// when both are present. The password may contain `:` (the split is at the first colon). The `ollama` CLI's
    /// signed form (`Authorization: <base64 key>:<base64 signature>`, no scheme) is `.signed`. Any other scheme
    /// or a malformed value is `.malformed(reason)`; the reason never quotes the header.
    ///
    /// An API key (`tg_<id>_<secret>`) is accepted wherever a password is: alone as the Bearer token or x-api-key
    /// (OpenAI and Anthropic SDKs' `api_key=`, ollama-python's `OLLAMA_API_KEY`), or as the password of
    /// `user:key` in any of the three (`curl -u alice:tg_…`, or `-u :tg_…` with no user): `.key`.
    public static func extract(authorization: ArraySlice<UInt8>?, apiKey: ArraySlice<UInt8>?) -> CredentialParse {
        if let authorization {
            return fromAuthorization(trimmed(authorization))
        }
        if let apiKey {
            let value = trimmed(apiKey)
            guard !value.isEmpty else { return .malformed("empty x-api-key header") }
            return keyOrSplit(value, source: .apiKey)
        }
        return .none
    }

    private static func fromAuthorization(_ value: ArraySlice<UInt8>) -> CredentialParse {
        guard !value.isEmpty else { return .malformed("empty Authorization header") }
        let schemeEnd = value.firstIndex { $0 == 0x20 || $0 == 0x09 } ?? value.endIndex
        let scheme = value[value.startIndex..<schemeEnd]
        let rest = value[schemeEnd...].drop { $0 == 0x20 || $0 == 0x09 }
        if equalsIgnoringCase(scheme, basic) {
            guard !rest.isEmpty else { return .malformed("Basic without credentials") }
            guard let decoded = Base64.decode(rest) else { return .malformed("Basic credentials are not valid base64") }
            return keyOrSplit(decoded[...], source: .basic)
        }
        if equalsIgnoringCase(scheme, bearer) {
            guard !rest.isEmpty else { return .malformed("Bearer without a token") }
            return keyOrSplit(rest, source: .bearer)
        }
        // The ollama CLI's signed form, OLLAMA_AUTH (CredentialExtractor+Signed.swift).
        if let signed = signed(value) { return signed }
        return .malformed("unsupported Authorization scheme (expected Basic or Bearer)")
    }

    // MARK: API keys (begin)

    /// An API key alone or as the password of `user:key`; anything else is `user:password` (`split`).
    private static func keyOrSplit(_ bytes: ArraySlice<UInt8>, source: CredentialSource) -> CredentialParse {
        guard let colon = bytes.firstIndex(of: UInt8(ascii: ":")) else {
            guard APIKeyToken.looksLikeKey(bytes) else { return split(bytes, source: source) }
            guard let token = APIKeyToken.parse(bytes) else { return .malformed("malformed API key (expected tg_<id>_<secret>)") }
            return .key(token, claimedUser: nil, source)
        }
        let password = bytes[(colon + 1)...]
        guard APIKeyToken.looksLikeKey(password), let token = APIKeyToken.parse(password) else {
            return split(bytes, source: source)
        }
        let userBytes = bytes[bytes.startIndex..<colon]
        if userBytes.isEmpty { return .key(token, claimedUser: nil, source) }
        guard !userBytes.contains(where: { $0 < 0x20 || $0 == 0x7F }),
              let user = String(validating: userBytes, as: UTF8.self) else {
            return .malformed("control character or invalid UTF-8 in the user name")
        }
        return .key(token, claimedUser: user, source)
    }

    // MARK: API keys (end)

    /// `user:password` → credentials; the user must be non-empty UTF-8 without control characters.
    private static func split(_ bytes: ArraySlice<UInt8>, source: CredentialSource) -> CredentialParse {
        guard let colon = bytes.firstIndex(of: UInt8(ascii: ":")) else {
            return .malformed("\(name(of: source)) credentials have no colon (expected user:password)")
        }
        let userBytes = bytes[bytes.startIndex..<colon]
        guard !userBytes.isEmpty else { return .malformed("\(name(of: source)) credentials have an empty user") }
        guard !userBytes.contains(where: { $0 < 0x20 || $0 == 0x7F }) else {
            return .malformed("control character in the user name")
        }
        guard let user = String(validating: userBytes, as: UTF8.self) else {
            return .malformed("user name is not valid UTF-8")
        }
        return .found(Credentials(user: user, password: Array(bytes[(colon + 1)...])), source)
    }

    private static func name(of source: CredentialSource) -> String {
        switch source {
        case .basic: return "Basic"
        case .bearer: return "Bearer"
        case .apiKey: return "x-api-key"
        }
    }

    private static func trimmed(_ value: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        var v = value.drop { $0 == 0x20 || $0 == 0x09 }
        while let last = v.last, last == 0x20 || last == 0x09 { v = v.dropLast() }
        return v
    }

    /// ASCII case-insensitive comparison with a lowercase literal.
    private static func equalsIgnoringCase(_ bytes: ArraySlice<UInt8>, _ lower: [UInt8]) -> Bool {
        guard bytes.count == lower.count else { return false }
        return zip(bytes, lower).allSatisfy { b, l in (b >= 0x41 && b <= 0x5A ? b | 0x20 : b) == l }
    }

    private static let basic = Array("basic".utf8)
    private static let bearer = Array("bearer".utf8)
}
