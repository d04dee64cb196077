import FakeOllama
import Foundation
import Testing
import Tollgate
import TollgateIO

/// A slow password check in progress never delays another client whose credentials are already verified: the
/// check runs on the authenticator's pool, the verified client is answered from the cache on the event loop.
///
/// Everything here is ordered by events, never by time: the slow check is proven to be in flight (a second
/// identical login joined it, `collapsed`), the verified client's requests complete, and only then is the slow
/// check's hash seen as finished (`hashesComputed`); a response to the slow login cannot be written before that.
@Suite struct AuthIsolationTests {
    /// `htpasswd -nbB -C 14 slow slow-but-right`: about 1 s of one core here, so the check is long in flight.
    static let slowHash = "$2y$14$dM9pSeNFXDxgXicLrCRJ7.R29Vf7YzyRkQDGokCDjCvKRZPy.TuAu"
    static let slowLogin = Credential.basic("slow", "slow-but-right")
    static let verifiedLogin = Credential.basic("fast", "quick")
    /// Generous bound for one cost-14 hash on a shared, loaded machine (an outcome bound, not a speed check).
    static let slowHashBound = 300.0

    /// A proxy with one pool thread, whose users file holds the cost-14 user and a cheap one (cost 4).
    static func withSlowUserProxy(body: (Proxy, FakeOllamaServer) throws -> Void) throws {
        let users = try TestUsers.parse("slow:\(slowHash)\nfast:\(try TestUsers.bcrypt("quick"))\n")
        try withProxyAndFake(configure: { config in
            config.users = users
            config.authSettings = Authenticator.Settings(workers: 1, failureLimit: 0)
        }, body: body)
    }

    /// Sends the slow login on two connections (same credentials) and waits until the second has joined the
    /// first's check: proof that the check is queued or running and has not finished. Returns both clients.
    static func startSlowLogin(_ proxy: Proxy, hashesBefore: Int,
                               sourceLocation: SourceLocation = #_sourceLocation) throws -> (HTTPClient, HTTPClient) {
        // Both handshakes first, so the two requests reach the loop back to back.
        let slow = try proxy.tls()
        let twin = try proxy.tls()
        try slow.send(Req.get("/api/tags?slow", slowLogin))
        try twin.send(Req.get("/api/tags?twin", slowLogin))
        // Joined the flight (collapsed), or, if the hash somehow finished first, a cache hit: either ends the wait.
        let settled = try waitUntil(timeoutSeconds: slowHashBound) {
            let s = try authStats(proxy)
            return s.collapsed >= 1 || s.cacheHits >= 1 || s.hashesComputed > hashesBefore
        }
        let stats = try authStats(proxy)
        try #require(settled, "the slow login never reached the authenticator: \(stats)", sourceLocation: sourceLocation)
        try #require(stats.collapsed == 1 && stats.hashesComputed == hashesBefore,
                     "the slow check is not provably in flight: \(stats)", sourceLocation: sourceLocation)
        return (slow, twin)
    }

    @Test func aSlowCheckInProgressDoesNotDelayAVerifiedClient() throws {
        try Self.withSlowUserProxy { proxy, fake in
            // The verified client: its first request computes one (cheap) hash; after that it is a cache hit.
            let verified = try proxy.tls()
            defer { verified.close() }
            #expect(try verified.exchange(Req.get("/api/version", Self.verifiedLogin)).status == 200)
            let before = try authStats(proxy)
            #expect(before.hashesComputed == 1)

            let (slow, twin) = try Self.startSlowLogin(proxy, hashesBefore: before.hashesComputed)
            defer { slow.close(); twin.close() }

            // While the slow check holds the only pool thread, the verified client's requests complete, on the
            // same kept-alive connection and on a new one.
            for i in 0..<5 {
                let response = try verified.exchange(Req.get("/api/version?during=\(i)", Self.verifiedLogin))
                #expect(response.status == 200)
            }
            let fresh = try proxy.tls()
            defer { fresh.close() }
            #expect(try fresh.exchange(Req.get("/api/version?fresh", Self.verifiedLogin)).status == 200)

            // Order of events: all of the above completed while the slow hash was still unfinished, so before any
            // response to the slow login could be written; none of it waited for the pool.
            let during = try authStats(proxy)
            #expect(during.hashesComputed == before.hashesComputed,
                    "the slow check finished before the verified client was answered: \(during)")
            // The new connection's login was answered by the cache (a kept-alive connection may not even ask).
            #expect(during.cacheHits >= before.cacheHits + 1)
            #expect(during.queued == 0, "a verified request waited for the pool: \(during)")
            let targets = fake.requests.map(\.target)
            #expect(!targets.contains("/api/tags?slow") && !targets.contains("/api/tags?twin"))

            // The slow login then completes with 200, once for both connections (one hash).
            #expect(try waitUntil(timeoutSeconds: Self.slowHashBound) {
                try authStats(proxy).hashesComputed == before.hashesComputed + 1
            })
            #expect(try slow.readResponse().status == 200)
            #expect(try twin.readResponse().status == 200)
            let after = try authStats(proxy)
            #expect(after.hashesComputed == before.hashesComputed + 1)
            #expect(after.allowed >= before.allowed + 1 + 2)
            #expect(fake.requests.map(\.target).suffix(2).sorted() == ["/api/tags?slow", "/api/tags?twin"])
        }
    }

    @Test func aCachedWrongPasswordIsAnsweredWhileASlowCheckRuns() throws {
        try Self.withSlowUserProxy { proxy, _ in
            // A wrong password, checked once (cost 4), is cached too: repeating it (on a new connection, whatever
            // Tollgate does with a connection after a 401) costs nothing and waits for nothing.
            let wrong = Credential.basic("fast", "not-quick")
            #expect(try proxy.fetch(Req.get("/api/version", wrong)).status == 401)
            let before = try authStats(proxy)
            #expect(before.hashesComputed == 1)

            let (slow, twin) = try Self.startSlowLogin(proxy, hashesBefore: before.hashesComputed)
            defer { slow.close(); twin.close() }

            let repeated = try proxy.fetch(Req.get("/api/version", wrong))
            expectError(repeated, status: 401, family: .ollama)
            let during = try authStats(proxy)
            #expect(during.hashesComputed == before.hashesComputed, "answered only after the slow check: \(during)")
            #expect(during.cacheHits == before.cacheHits + 1)

            #expect(try waitUntil(timeoutSeconds: Self.slowHashBound) {
                try authStats(proxy).hashesComputed == before.hashesComputed + 1
            })
            #expect(try slow.readResponse().status == 200)
            #expect(try twin.readResponse().status == 200)
        }
    }

    /// The password threads can be told apart from the event loops (`top -H`, `ps -L`, `/proc/PID/task/*/comm`,
    /// renice): `Authenticator` asks for "tollgate-auth-N" through `spawnThread(name:)`.
    @Test func passwordThreadsCarryTheirName() throws {
        try Self.withSlowUserProxy { _, _ in
            let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? []
            let names = tasks.compactMap { try? String(contentsOfFile: "/proc/self/task/\($0)/comm", encoding: .utf8) }
                .map { $0.trimmingCharacters(in: "\n") }
            #expect(names.contains { $0.hasPrefix("tollgate-auth-") },
                    "no thread named tollgate-auth-N among \(Set(names).sorted())")
        }
    }
}
