import Testing
@testable import Tollgate

/// The key format, how requests carry keys, and how a key is stored and compared.
@Suite struct KeysTokenTests {
    /// A random source that counts up: every draw is known.
    private func counting() -> (Int) -> [UInt8] {
        var next: UInt8 = 0
        return { n in
            (0..<n).map { _ in
                defer { next &+= 1 }
                return next
            }
        }
    }

    @Test func generatedKeysHaveTheDocumentedShape() throws {
        let token = APIKeyToken.generate(random: counting())
        #expect(token.id == "abcdefghijkl")
        #expect(token.secretText == "tg_abcdefghijkl_mnopqrstuvwxyz234567abcdefghijkl")
        #expect(token.secretText.utf8.count == APIKeyToken.length)
        // The id is public; the secret never appears in the description.
        #expect(token.description == "tg_abcdefghijkl_…")
        #expect(APIKeyToken.parse(token.secretText) == token)
        // 32 characters of 5 bits each from the kernel: at least 128 bits.
        #expect(APIKeyToken.secretLength * 5 >= 128)
        let a = APIKeyToken.generate(), b = APIKeyToken.generate()
        #expect(a != b && a.id != b.id)
        #expect(APIKeyToken.parse(a.secretText)?.id == a.id)
    }

    @Test func parseRefusesAnythingButTheExactShape() {
        let good = "tg_abcdefghijkl_mnopqrstuvwxyz234567abcdefghijkl"
        #expect(APIKeyToken.parse(good) != nil)
        for bad in ["", "tg_", "tg_abcdefghijkl", good + "a", String(good.dropLast()), good.uppercased(),
                    "tx_abcdefghijkl_mnopqrstuvwxyz234567abcdefghijkl",
                    "tg_abcdefghijkl-mnopqrstuvwxyz234567abcdefghijkl",
                    "tg_abcdefghijk1_mnopqrstuvwxyz234567abcdefghijkl",
                    "tg_abcdefghijkl_mnopqrstuvwxyz234567abcdefghijk:"] {
            #expect(APIKeyToken.parse(bad) == nil, "\(bad)")
        }
        #expect(APIKeyToken.isValidID("abcdefghijkl"))
        #expect(!APIKeyToken.isValidID("abcdefghijk"))
        #expect(!APIKeyToken.isValidID("abcdefghijk1"))
    }

    private func extract(_ authorization: String?, apiKey: String? = nil) -> CredentialParse {
        CredentialExtractor.extract(authorization: authorization.map { Array($0.utf8)[...] },
                                    apiKey: apiKey.map { Array($0.utf8)[...] })
    }

    private static let key = "tg_abcdefghijkl_mnopqrstuvwxyz234567abcdefghijkl"
    private static let token = APIKeyToken.parse(key)!

    private func base64(_ s: String) -> String {
        let table = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
        var out: [UInt8] = []
        let bytes = Array(s.utf8)
        var i = 0
        while i < bytes.count {
            let n = min(3, bytes.count - i)
            var v = 0
            for j in 0..<3 { v = v << 8 | (j < n ? Int(bytes[i + j]) : 0) }
            for j in 0..<4 { out.append(j <= n ? table[(v >> (18 - 6 * j)) & 63] : UInt8(ascii: "=")) }
            i += 3
        }
        return String(decoding: out, as: UTF8.self)
    }

    @Test func keysAreAcceptedWhereverAPasswordIs() {
        let key = KeysTokenTests.key, token = KeysTokenTests.token
        // OpenAI SDKs and OLLAMA_API_KEY: Bearer; Anthropic SDKs: x-api-key.
        #expect(extract("Bearer \(key)") == .key(token, claimedUser: nil, .bearer))
        #expect(extract(nil, apiKey: key) == .key(token, claimedUser: nil, .apiKey))
        // Basic with the key as the password, with or without a user part; Bearer user:key too.
        #expect(extract("Basic \(base64("alice:\(key)"))") == .key(token, claimedUser: "alice", .basic))
        #expect(extract("Basic \(base64(":\(key)"))") == .key(token, claimedUser: nil, .basic))
        #expect(extract("Bearer alice:\(key)") == .key(token, claimedUser: "alice", .bearer))
        // Passwords are unchanged, one that merely starts with tg_ included.
        #expect(extract("Bearer alice:tg_short") == .found(Credentials(user: "alice", password: Array("tg_short".utf8)), .bearer))
        // Something that claims to be a key and is not one is refused, without quoting it.
        guard case .malformed(let why) = extract("Bearer tg_nope") else {
            Issue.record("tg_nope was not refused")
            return
        }
        #expect(why.contains("API key") && !why.contains("nope"))
    }

    @Test func storedHashBindsTheIdAndComparesInConstantTime() {
        let token = KeysTokenTests.token
        let stored = token.hash
        #expect(stored.count == 32)
        #expect(KeyHash.matches(token.bytes, stored: stored))
        // The same secret under another id, or one character off, does not match.
        let otherID = Array("tg_abcdefghijkm_mnopqrstuvwxyz234567abcdefghijkl".utf8)
        #expect(!KeyHash.matches(otherID, stored: stored))
        var flipped = token.bytes
        flipped[flipped.count - 1] = UInt8(ascii: "a")
        #expect(!KeyHash.matches(flipped, stored: stored))
        // A truncated stored value never matches (lengths differ).
        #expect(!KeyHash.matches(token.bytes, stored: Array(stored.prefix(16))))
    }

    @Test func expiryReadsLifetimesAndDatesAndRefusesThePast() throws {
        let now: Int64 = 1_800_000_000
        #expect(try KeyExpiry.parse("90d", now: now).get() == now + 90 * 86_400)
        #expect(try KeyExpiry.parse("12h", now: now).get() == now + 12 * 3600)
        #expect(try KeyExpiry.parse("2w", now: now).get() == now + 14 * 86_400)
        #expect(try KeyExpiry.parse("2030-01-01", now: now).get() == 1_893_456_000)
        #expect(try KeyExpiry.parse("2028-02-29", now: now).get() == 1_835_395_200)
        #expect(try KeyExpiry.parse("2000-02-29", now: 0).get() == 951_782_400)
        guard case .failure(let invalid) = KeyExpiry.parse("2027-02-31", now: now) else { return }
        #expect(invalid.description.contains("not a valid date"))
        for bad in ["0d", "-1d", "2001-01-01", "90", "d", "90y", "2030-13-01", "1000000000000w",
                    // Days that do not exist are refused, never rolled over into the next month.
                    "2027-02-31", "2027-02-29", "2027-04-31", "2100-02-29"] {
            #expect((try? KeyExpiry.parse(bad, now: now).get()) == nil, "\(bad)")
        }
    }

    @Test func passwordLoginsSaysWhereAPasswordIsAccepted() {
        #expect(PasswordLogins.everywhere.accepts(.bearer) && PasswordLogins.everywhere.accepts(.apiKey))
        #expect(PasswordLogins.basic.accepts(.basic) && !PasswordLogins.basic.accepts(.bearer)
            && !PasswordLogins.basic.accepts(.apiKey))
        #expect(!PasswordLogins.nowhere.accepts(.basic))
    }
}

/// The access log names a key by its id, in both formats, and never carries its secret.
@Suite struct KeysAccessLogTests {
    @Test func theKeyIdIsLoggedNeverTheSecret() {
        var record = AccessRecord(
            requestID: Array("r1".utf8), client: Array("203.0.113.9".utf8), user: "alice", method: "GET",
            path: "/api/tags", status: 200, bytesIn: 1, bytesOut: 2, durationNanos: 3_000_000, ttfbNanos: nil,
            upstreamNanos: nil, model: nil, promptTokens: nil, completionTokens: nil,
            rateLimit: RateLimitResult(.pass), auth: .allowed, reason: .completed)
        record.keyID = "abcdefghijkl"
        var json: [UInt8] = [], text: [UInt8] = []
        record.appendJSON(timestamp: "T", to: &json)
        record.appendText(timestamp: "T", to: &text)
        #expect(String(decoding: json, as: UTF8.self).contains(#","key":"abcdefghijkl""#))
        #expect(String(decoding: text, as: UTF8.self).contains(" key=abcdefghijkl "))
        record.keyID = nil
        json = []
        record.appendJSON(timestamp: "T", to: &json)
        #expect(!String(decoding: json, as: UTF8.self).contains("\"key\""))
    }
}
