import FakeOllama
import Testing
import Tollgate
import TollgateIO
import TollgateTestSupport

/// The failed-login throttle probed from the network: it must not tell a listed name from an unlisted one, and it
/// must not let a throttled client learn whether a password is right.
struct AuthLoginAttackThrottleTests {
    /// Two failures (the limit) with one spelling of a name, then a wrong password with another: its status. Each
    /// probe comes from an address of its own (X-Forwarded-For), so no probe throttles another's prefix.
    static func probe(_ proxy: Proxy, composed: String, decomposed: String, from address: String) throws -> Int {
        let from = "X-Forwarded-For: \(address)\r\n"
        for _ in 0..<2 {
            #expect(try proxy.fetch(Req.get("/api/tags", from + Credential.basic(decomposed, "guess"))).status == 401)
        }
        return try proxy.fetch(Req.get("/api/tags", from + Credential.basic(composed, "guess"))).status
    }

    /// The fleet's throttle counts a listed name's failures under the users file's spelling and an unlisted name's
    /// under the bytes sent. A client that fails `limit` times with one spelling of a name and then tries another
    /// spelling is refused (429) when the name is listed, and checked (401) when it is not: which names are users
    /// shows in the status code. Both must be answered alike.
    @Test(.enabled(if: RedisServerProcess.available, "redis-server not installed (apt-get install redis-server)"))
    func theFleetThrottleDoesNotTellAListedNameFromAnUnlistedOne() throws {
        let redis = try RedisServerProcess()
        try withProxyAndFake(configure: { config in
            config.users = try! TestUsers.parse("jos\u{E9}:{PLAIN}pw-j\nKim:{PLAIN}pw-k\nre\u{301}my:{PLAIN}pw-r\n")
            config.authSettings = Authenticator.Settings(workers: 1, failureLimit: 2, failureWindowSeconds: 600)
            config.sharedLimits = redis.sharedLimits()
            config.trustedProxies = [CIDR(parsing: "127.0.0.1/32")!]
        }) { proxy, _ in
            let listed = try Self.probe(proxy, composed: "jos\u{E9}", decomposed: "jose\u{301}", from: "198.51.100.1")
            let unlisted = try Self.probe(proxy, composed: "zo\u{E9}", decomposed: "zoe\u{301}", from: "198.51.100.2")
            #expect(listed == unlisted, "a listed name answers \(listed), an unlisted one \(unlisted)")
            // KELVIN SIGN for K, the users file writing the decomposed form: the same.
            let kelvinListed = try Self.probe(proxy, composed: "Kim", decomposed: "\u{212A}im", from: "198.51.100.3")
            let kelvinUnlisted = try Self.probe(proxy, composed: "Kat", decomposed: "\u{212A}at", from: "198.51.100.4")
            #expect(kelvinListed == kelvinUnlisted, "a listed name answers \(kelvinListed), an unlisted one \(kelvinUnlisted)")
            let nfdListed = try Self.probe(proxy, composed: "r\u{E9}my", decomposed: "re\u{301}my", from: "198.51.100.5")
            let nfdUnlisted = try Self.probe(proxy, composed: "r\u{E9}na", decomposed: "re\u{301}na", from: "198.51.100.6")
            #expect(nfdListed == nfdUnlisted, "a listed name answers \(nfdListed), an unlisted one \(nfdUnlisted)")
        }
    }

    /// The same probe against this process's own throttle (no Redis): it compares names as Swift does, for listed
    /// and unlisted names alike, so both spellings share one count either way.
    @Test func theLocalThrottleTreatsEverySpellingAlikeListedOrNot() throws {
        try withProxyAndFake(configure: { config in
            config.users = try! TestUsers.parse("jos\u{E9}:{PLAIN}pw-j\n")
            config.authSettings = Authenticator.Settings(workers: 1, failureLimit: 2, failureWindowSeconds: 600)
            config.trustedProxies = [CIDR(parsing: "127.0.0.1/32")!]
        }) { proxy, _ in
            let listed = try Self.probe(proxy, composed: "jos\u{E9}", decomposed: "jose\u{301}", from: "198.51.100.1")
            let unlisted = try Self.probe(proxy, composed: "zo\u{E9}", decomposed: "zoe\u{301}", from: "198.51.100.2")
            let kelvin = try Self.probe(proxy, composed: "Kim", decomposed: "\u{212A}im", from: "198.51.100.3")
            #expect([listed, unlisted, kelvin] == [429, 429, 429])
        }
    }

    /// Behind a trusted proxy one connection carries many clients. A login remembered on it (`VerifiedLogin`) is
    /// matched before the throttle is consulted, whichever client sends the same header: a client throttled for
    /// guessing alice's password is refused (429) without a check, unless its guess is the password another client
    /// verified on that connection, which then gets 200. The throttle must answer the right guess as it answers a
    /// wrong one (as it does on a connection of the client's own), or the remembered login becomes an unthrottled
    /// password oracle.
    @Test func aThrottledClientBehindATrustedProxyCannotRideAnotherClientsRememberedLogin() throws {
        try withProxyAndFake(configure: { config in
            config.users = try! TestUsers.parse("alice:{PLAIN}pw-a\n")
            config.authSettings = Authenticator.Settings(workers: 1, failureLimit: 2, failureWindowSeconds: 600)
            config.trustedProxies = [CIDR(parsing: "127.0.0.1/32")!]
        }) { proxy, _ in
            let victim = "X-Forwarded-For: 198.51.100.9\r\n"
            let attacker = "X-Forwarded-For: 203.0.113.7\r\n"
            let pooled = try proxy.tls()
            defer { pooled.close() }
            #expect(try pooled.exchange(Req.get("/api/tags", victim + Credential.basic("alice", "pw-a"))).status == 200)
            for guess in ["guess1", "guess2"] {
                #expect(try pooled.exchange(Req.get("/api/tags", attacker + Credential.basic("alice", guess))).status == 401)
            }
            #expect(try pooled.exchange(Req.get("/api/tags", attacker + Credential.basic("alice", "guess3"))).status == 429)
            // On a connection of its own, the right password from the throttled client is refused, unchecked.
            #expect(try proxy.fetch(Req.get("/api/tags", attacker + Credential.basic("alice", "pw-a"))).status == 429)
            // On the shared one it must be too.
            let riding = try pooled.exchange(Req.get("/api/tags", attacker + Credential.basic("alice", "pw-a")))
            #expect(riding.status == 429, "a throttled client's right guess got \(riding.status) on the shared connection")
        }
    }
}
