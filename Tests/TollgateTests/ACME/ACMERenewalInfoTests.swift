import Foundation
import Glibc
import Synchronization
import Testing
import TollgateIO
import TollgateTestSupport
@testable import Tollgate

/// ACME Renewal Information (RFC 9773): the certificate's identifier, the CA's answer read by the client, and the
/// renewal thread moving its renewal into the CA's window (Debian's Pebble has no renewalInfo endpoint: scripted
/// here).
@Suite(.serialized) struct ACMERenewalInfoTests {
    @Test func rfc3339Times() {
        let t: Int64 = 1_735_790_400   // 2025-01-02T04:00:00Z
        #expect(RenewalWindow.parseTime("2025-01-02T04:00:00Z") == t)
        #expect(RenewalWindow.parseTime("2025-01-02t04:00:00z") == t)
        #expect(RenewalWindow.parseTime("2025-01-02T04:00:00.123456Z") == t)
        #expect(RenewalWindow.parseTime("2025-01-02T05:30:00+01:30") == t)
        #expect(RenewalWindow.parseTime("2025-01-01T23:00:00-05:00") == t)
        for bad in ["", "2025-01-02", "2025-01-02T04:00:00", "2025-13-02T04:00:00Z", "2025-01-02T04:00:00Zx",
                    "2025-01-02T04:00:00.Z", "2025-01-02T24:00:00Z", "2025-01-02T04:00:00+0100", "２025-01-02T04:00:00Z"] {
            #expect(RenewalWindow.parseTime(bad) == nil, "\(bad)")
        }
        #expect(RenewalWindow(start: 100, end: 200).chosen(random: 0.5) == 150)
        #expect(RenewalWindow(start: 100, end: 200).chosen(random: 7) == 200)
    }

    /// The identifier is base64url(AKI keyIdentifier) "." base64url(serial's DER content octets), made by OpenSSL's
    /// own tools: a leaf with serial 0x87654321 (content octets 00 87 65 43 21, as in RFC 9773's example) signed by a
    /// CA whose Subject Key Identifier openssl prints.
    @Test func theCertificateIDIsTheAuthorityKeyIDAndTheSerial() throws {
        let dir = try makeTemporaryDirectory()
        func openssl(_ arguments: [String]) throws -> String {
            let run = try #require(ChildProcess.run(["openssl"] + arguments))
            try #require(run.status == 0, "openssl \(arguments): \(run.text)")
            return run.text
        }
        _ = try openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                         "-subj", "/CN=ari test CA", "-days", "30", "-keyout", dir + "/ca-key.pem", "-out", dir + "/ca.pem"])
        _ = try openssl(["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                         "-subj", "/CN=leaf", "-keyout", dir + "/leaf-key.pem", "-out", dir + "/leaf.csr"])
        try "authorityKeyIdentifier = keyid\n".write(toFile: dir + "/ext.cnf", atomically: true, encoding: .utf8)
        _ = try openssl(["x509", "-req", "-in", dir + "/leaf.csr", "-CA", dir + "/ca.pem", "-CAkey", dir + "/ca-key.pem",
                         "-set_serial", "0x87654321", "-days", "30", "-extfile", dir + "/ext.cnf",
                         "-out", dir + "/leaf.pem"])
        let printed = try openssl(["x509", "-in", dir + "/ca.pem", "-noout", "-ext", "subjectKeyIdentifier"])
        let hex = try #require(printed.split(separator: "\n").last).trimmingCharacters(in: .whitespaces)
        let ski = hex.split(separator: ":").compactMap { UInt8($0, radix: 16) }
        try #require(ski.count == 20, "\(printed)")

        let leaf = try TLSCertificate(certificatePath: dir + "/leaf.pem", keyPath: dir + "/leaf-key.pem")
        #expect(RenewalWindow.certificateID(leaf) == Base64URL.encode(ski) + ".AIdlQyE")
        // A certificate without an Authority Key Identifier has no identifier.
        let ca = try TLSCertificate(certificatePath: dir + "/ca.pem", keyPath: dir + "/ca-key.pem")
        let caID = RenewalWindow.certificateID(ca)
        #expect(caID == nil || caID?.hasPrefix(Base64URL.encode(ski) + ".") == true)
    }

    static func directory(renewalInfo: Bool) -> ACMEHTTPClient.Response {
        let ari = renewalInfo ? #","renewalInfo":"https://ca/ari/""# : ""
        return ACMEHTTPClient.Response(
            status: 200, headers: [("Content-Type", "application/json")],
            body: Array((#"{"newNonce":"https://ca/nonce","newAccount":"https://ca/acct","newOrder":"https://ca/order""#
                         + ari + "}").utf8))
    }

    @Test func theClientReadsTheSuggestedWindow() throws {
        let body = #"{"suggestedWindow":{"start":"2025-01-02T04:00:00Z","end":"2025-01-03T04:00:00Z"},"explanationURL":"https://ca/why"}"#
        let ca = ACMEClientTests.ScriptedCA([Self.directory(renewalInfo: true),
                                             ACMEHTTPClient.Response(status: 200, headers: [("Retry-After", "21600")],
                                                                     body: Array(body.utf8))])
        let client = ACMEClient(directoryURL: "https://ca/dir", transport: ca, key: AccountKey(P256Key())) { _ in }
        #expect(try client.renewalInfo(certificateID: "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE")
                == RenewalWindow(start: 1_735_790_400, end: 1_735_876_800, retryAfter: 21_600,
                                 explanationURL: "https://ca/why"))
        #expect(ca.sent.withLock { $0.map(\.url) } == ["https://ca/dir", "https://ca/ari/aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE"])

        let none = ACMEClientTests.ScriptedCA([Self.directory(renewalInfo: false)])
        let plain = ACMEClient(directoryURL: "https://ca/dir", transport: none, key: AccountKey(P256Key())) { _ in }
        #expect(try plain.renewalInfo(certificateID: "x.y") == nil, "a CA without renewalInfo")

        for answer in [ACMEHTTPClient.Response(status: 200, headers: [], body: Array(#"{"suggestedWindow":{}}"#.utf8)),
                       ACMEHTTPClient.Response(status: 200, headers: [],
                                               body: Array(#"{"suggestedWindow":{"start":"2025-01-03T04:00:00Z","end":"2025-01-02T04:00:00Z"}}"#.utf8)),
                       ACMEHTTPClient.Response(status: 404, headers: [], body: [])] {
            let bad = ACMEClientTests.ScriptedCA([Self.directory(renewalInfo: true), answer])
            let c = ACMEClient(directoryURL: "https://ca/dir", transport: bad, key: AccountKey(P256Key())) { _ in }
            #expect(throws: ACMEError.self) { _ = try c.renewalInfo(certificateID: "x.y") }
        }
    }

    /// A certificate (90 days) as the CA would issue it.
    static func issued() throws -> IssuedCertificate {
        let dir = try makeTemporaryDirectory()
        try DevelopmentCertificate.generate(keyPath: dir + "/key.pem", certificatePath: dir + "/cert.pem",
                                            commonName: "a.tollgate.test", subjectAltNames: "DNS:a.tollgate.test",
                                            days: 90)
        return IssuedCertificate(chain: Array(try Data(contentsOf: URL(fileURLWithPath: dir + "/cert.pem"))),
                                 key: Array(try Data(contentsOf: URL(fileURLWithPath: dir + "/key.pem"))))
    }

    /// What a CA sends is checked before it replaces the stored pair: valid now, for every name, with its key.
    @Test func aCertificateForOtherNamesOrWithAnotherKeyIsRefused() throws {
        let good = try Self.issued()
        let other = try Self.issued()
        let now = Int64(time(nil))
        try ACMEManager.check(good, domains: ["a.tollgate.test"], now: now)
        #expect(throws: SocketError.self) {
            try ACMEManager.check(good, domains: ["a.tollgate.test", "b.tollgate.test"], now: now)
        }
        #expect(throws: SocketError.self) {
            try ACMEManager.check(IssuedCertificate(chain: good.chain, key: other.key), domains: ["a.tollgate.test"],
                                  now: now)
        }
        #expect(throws: SocketError.self) {
            try ACMEManager.check(good, domains: ["a.tollgate.test"], now: now + 100 * 86_400)
        }
        #expect(throws: SocketError.self) {
            try ACMEManager.check(IssuedCertificate(chain: Array("not a certificate".utf8), key: good.key),
                                  domains: ["a.tollgate.test"], now: now)
        }
    }

    /// A CA that keeps refusing: each attempt is counted, the refusal logged in full once, then briefly; the waits
    /// grow; a different refusal is logged in full again.
    @Test func aRepeatedFailureIsLoggedInFullOnce() throws {
        let now = Int64(time(nil))
        let clock = ManualACMEClock(now)
        let store = ACMEStore(directory: try makeTemporaryDirectory() + "/acme")
        try store.prepare()
        let refusals = Mutex(["rate limited", "rate limited", "rate limited", "DNS problem"])
        let manager = ACMEManager(
            domains: ["a.tollgate.test"], store: store, caName: "scripted CA",
            issue: { () throws(ACMEError) -> IssuedCertificate in
                throw ACMEError(refusals.withLock { $0.count > 1 ? $0.removeFirst() : $0[0] })
            },
            install: { (_: String, _: String) throws(SocketError) in }, clock: clock, random: { 0.5 })
        manager.start()
        defer { manager.stop() }
        var planned: [Int64] = []
        for failures in 1...4 {
            #expect(Self.waitFor { manager.consecutiveFailures.load(ordering: .relaxed) == failures
                                   && manager.nextAttempt.load(ordering: .relaxed) > clock.now() })
            planned.append(manager.nextAttempt.load(ordering: .relaxed))
            clock.advance(to: planned.last!)
        }
        #expect(Self.waitFor { manager.consecutiveFailures.load(ordering: .relaxed) == 5 })
        #expect(manager.failuresLoggedInFull.load(ordering: .relaxed) == 2, "rate limited once, DNS problem once")
        let waits = zip(planned.dropFirst(), planned).map { $0 - $1 }
        #expect(waits == waits.sorted() && waits.first! < waits.last!, "the waits grow: \(waits)")
        #expect(try store.issued() == nil)
    }

    /// How many times the CA was asked for renewal information.
    final class Asked: Sendable { let count = Atomic<Int>(0) }

    /// What the scripted CA answers for renewal information, in turn; the last answer repeats.
    enum Advice: Sendable { case window(RenewalWindow), none, failure }

    /// A manager on a hand-driven clock whose CA issues `issued` and answers renewal information from `advice`.
    static func manager(clock: ManualACMEClock, advice: [Advice]) throws
        -> (manager: ACMEManager, store: ACMEStore, asked: Asked) {
        let store = ACMEStore(directory: try makeTemporaryDirectory() + "/acme")
        try store.prepare()
        let certificate = try issued()
        let answers = Mutex(advice)
        let asked = Asked()
        let manager = ACMEManager(
            domains: ["a.tollgate.test"], store: store, caName: "scripted CA",
            issue: { () throws(ACMEError) in certificate },
            install: { (_: String, _: String) throws(SocketError) in },
            renewalInfo: { (_: TLSCertificate) throws(ACMEError) -> RenewalWindow? in
                asked.count.add(1, ordering: .relaxed)
                let next = answers.withLock { $0.count > 1 ? $0.removeFirst() : $0[0] }
                switch next {
                case .window(let window): return window
                case .none: return nil
                case .failure: throw ACMEError("the CA is down")
                }
            },
            clock: clock, random: { 0.5 })
        return (manager, store, asked)
    }

    static func waitFor(_ condition: () -> Bool) -> Bool {
        for _ in 0..<3_000 {
            if condition() { return true }
            usleep(10_000)
        }
        return condition()
    }

    @Test func aWindowBeforeTheThirdMovesTheRenewalIntoIt() throws {
        let now: Int64 = Int64(time(nil))
        let clock = ManualACMEClock(now)
        let window = RenewalWindow(start: now + 10 * 86_400, end: now + 12 * 86_400)
        let (manager, store, asked) = try Self.manager(clock: clock, advice: [.window(window), .none])
        manager.start()
        defer { manager.stop() }
        #expect(Self.waitFor { manager.issuedCount.load(ordering: .relaxed) == 1 })
        // Renewal at the middle of the window (random 0.5), well before a third of 90 days is left.
        #expect(Self.waitFor { manager.nextAttempt.load(ordering: .relaxed) == now + 11 * 86_400 })
        #expect(asked.count.load(ordering: .relaxed) == 1)
        let stored = try #require(try store.issued())
        #expect(stored.renewalDue > now + 50 * 86_400)

        clock.advance(to: now + 11 * 86_400)
        #expect(Self.waitFor { manager.issuedCount.load(ordering: .relaxed) == 2 })
        // The new certificate's renewal information: none, so the third of its lifetime.
        #expect(Self.waitFor { manager.nextAttempt.load(ordering: .relaxed) == stored.renewalDue })
        #expect(asked.count.load(ordering: .relaxed) == 2)
        #expect(manager.attempts.load(ordering: .relaxed) == 2)
    }

    @Test func aWindowInThePastRenewsAtOnceAndAFailureKeepsThePlan() throws {
        let now: Int64 = Int64(time(nil))
        let clock = ManualACMEClock(now)
        let past = RenewalWindow(start: now - 7_200, end: now - 3_600)
        let (manager, store, asked) = try Self.manager(clock: clock, advice: [.window(past), .failure])
        manager.start()
        defer { manager.stop() }
        // Issued, told the window has passed, renewed at once; then the CA fails to answer: the third of the
        // lifetime stands, and the CA is asked again an hour later.
        #expect(Self.waitFor { manager.issuedCount.load(ordering: .relaxed) == 2 })
        let stored = try #require(try store.issued())
        #expect(Self.waitFor { manager.nextAttempt.load(ordering: .relaxed) == stored.renewalDue && asked.count.load(ordering: .relaxed) == 2 })
        clock.advance(to: now + 3_600)
        #expect(Self.waitFor { asked.count.load(ordering: .relaxed) == 3 })
        #expect(manager.issuedCount.load(ordering: .relaxed) == 2, "asking again orders nothing")
        #expect(manager.attempts.load(ordering: .relaxed) == 2)
    }
}
