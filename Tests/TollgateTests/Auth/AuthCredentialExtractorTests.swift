import Testing
@testable import Tollgate

@Suite struct AuthCredentialExtractorTests {
    private func extract(_ authorization: String?, apiKey: String? = nil) -> CredentialParse {
        CredentialExtractor.extract(authorization: authorization.map { Array($0.utf8)[...] },
                                    apiKey: apiKey.map { Array($0.utf8)[...] })
    }

    private func found(_ user: String, _ password: String, _ source: CredentialSource) -> CredentialParse {
        .found(Credentials(user: user, password: Array(password.utf8)), source)
    }

    @Test func basicBearerAndAPIKey() {
        #expect(extract("Basic YWxpY2U6c2VjcmV0") == found("alice", "secret", .basic))
        #expect(extract("basic YWxpY2U6c2VjcmV0") == found("alice", "secret", .basic))
        #expect(extract("BASIC   YWxpY2U6c2VjcmV0  ") == found("alice", "secret", .basic))
        #expect(extract("Bearer alice:secret") == found("alice", "secret", .bearer))
        #expect(extract("bEaReR alice:secret") == found("alice", "secret", .bearer))
        #expect(extract(nil, apiKey: "alice:secret") == found("alice", "secret", .apiKey))
        #expect(extract(nil, apiKey: " alice:secret ") == found("alice", "secret", .apiKey))
        #expect(extract(nil) == .none)
        // Authorization wins when both are present.
        #expect(extract("Bearer a:b", apiKey: "c:d") == found("a", "b", .bearer))
    }

    @Test func passwordMaySplitOnlyAtTheFirstColon() {
        // base64("alice:pa:ss:") = YWxpY2U6cGE6c3M6
        #expect(extract("Basic YWxpY2U6cGE6c3M6") == found("alice", "pa:ss:", .basic))
        #expect(extract("Bearer alice:pa:ss word") == found("alice", "pa:ss word", .bearer))
        #expect(extract(nil, apiKey: "alice::") == found("alice", ":", .apiKey))
        // base64("alice:") — an empty password is still credentials (it will simply not verify).
        #expect(extract("Basic YWxpY2U6") == found("alice", "", .basic))
        // base64("al:ice:pw") with UTF-8 bytes in the password: YWw6aWNlOnDDqQ== -> user "al", password "ice:pé"
        #expect(extract("Basic YWw6aWNlOnDDqQ==") == found("al", "ice:p\u{e9}", .basic))
    }

    @Test func malformedHeaders() {
        let malformed: [(String?, String?)] = [
            ("Basic YWxpY2U6c2VjcmV0=", nil),    // bad padding
            ("Basic YWxpY2U6c2VjcmV", nil),      // length not a multiple of 4
            ("Basic YWxp!2U6c2VjcmV0", nil),     // not in the alphabet
            ("Basic YWxpY2U6c2VjcmV1", nil),     // fine; control below
            ("Basic YQ==", nil),                 // "a": no colon
            ("Basic YR==", nil),                 // non-zero unused bits
            ("Basic Ol9w", nil),                 // ":_p": empty user
            ("Basic", nil),
            ("Basic ", nil),
            ("Bearer", nil),
            ("Bearer sk-abcdef", nil),           // an OpenAI-style key without user:password
            ("Bearer :secret", nil),
            ("Digest username=\"alice\"", nil),
            ("c3NoLWVkMjU1MTk=:c2ln", nil),     // the ollama CLI's signature, no scheme
            ("", nil),
            (nil, ""),
            (nil, "nocolon"),
            ("Bearer al\u{1}ice:pw", nil),
        ]
        for (authorization, apiKey) in malformed where authorization != "Basic YWxpY2U6c2VjcmV1" {
            guard case .malformed(let reason) = extract(authorization, apiKey: apiKey) else {
                Issue.record("\(String(describing: authorization)) \(String(describing: apiKey)) was accepted")
                continue
            }
            #expect(!reason.isEmpty)
            #expect(!reason.contains("secret"))
        }
        #expect(extract("Basic YWxpY2U6c2VjcmV1") == found("alice", "secreu", .basic))
        #expect(extract("Digest x") == .malformed("unsupported Authorization scheme (expected Basic or Bearer)"))
        #expect(extract("Basic YQ==") == .malformed("Basic credentials have no colon (expected user:password)"))
    }

    @Test func invalidUTF8UserIsMalformed() {
        let parse = CredentialExtractor.extract(authorization: nil, apiKey: [0xC3, 0x28, 0x3A, 0x70][...])
        #expect(parse == .malformed("user name is not valid UTF-8"))
    }
}
