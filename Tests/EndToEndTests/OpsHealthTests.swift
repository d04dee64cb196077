import FakeOllama
import Testing
import Tollgate

/// Liveness and readiness answered by Tollgate itself: no credentials needed, `/healthz` never asks the upstream,
/// `/readyz` says whether the upstream accepts connections.
@Suite struct OpsHealthTests {
    static func withUsers(configure: @escaping (inout ServerConfig) -> Void = { _ in },
                          body: (Proxy, FakeOllamaServer) throws -> Void) throws {
        let users = try TestUsers.parse("alice:{PLAIN}pw-a\n")
        try withProxyAndFake(configure: { config in
            config.users = users
            configure(&config)
        }, body: body)
    }

    @Test func healthzIs200WithoutCredentialsOrAnUpstream() throws {
        let port = try closedLocalPort()
        try Self.withUsers(configure: { $0.upstream = UpstreamAddress(parsing: "http://127.0.0.1:\(port)")! }) { proxy, fake in
            let response = try proxy.fetch(Req.get("/healthz"))
            #expect(response.status == 200)
            #expect(response.head.header("Content-Type")?.hasPrefix("application/json") == true)
            #expect(jsonObject(response)?["status"] as? String == "ok", "\(response.text)")
            #expect(response.head.header("WWW-Authenticate") == nil)
            #expect(response.head.header("X-Request-Id")?.isEmpty == false)
            // HEAD too, and on the plain listener.
            let plain = try proxy.plain()
            defer { plain.close() }
            try plain.send(Req.get("/healthz", method: "HEAD"))
            #expect(try plain.readResponse(requestWasHead: true).status == 200)
            // The proxy really has no upstream: a proxied request is a 502.
            #expect(try proxy.fetch(Req.get("/api/version", Credential.basic("alice", "pw-a"))).status == 502)
            #expect(fake.requests.isEmpty)
        }
    }

    @Test func healthzNeverTouchesARunningUpstream() throws {
        try Self.withUsers { proxy, fake in
            let client = try proxy.tls()
            defer { client.close() }
            for _ in 0..<3 { #expect(try client.exchange(Req.get("/healthz")).status == 200) }
            #expect(fake.requests.isEmpty)
            #expect(fake.openConnections == 0)
        }
    }

    @Test func readyzIs200WhenTheUpstreamAcceptsConnections() throws {
        try Self.withUsers { proxy, fake in
            let response = try proxy.fetch(Req.get("/readyz"))
            #expect(response.status == 200, "\(response.text)")
            #expect(jsonObject(response)?["status"] as? String == "ready", "\(response.text)")
            #expect(response.head.header("WWW-Authenticate") == nil)
            // A connection is not a request: Ollama saw none.
            #expect(fake.requests.isEmpty)
        }
    }

    @Test func readyzIs503JSONWhenTheUpstreamPortIsClosed() throws {
        let port = try closedLocalPort()
        try Self.withUsers(configure: { $0.upstream = UpstreamAddress(parsing: "http://127.0.0.1:\(port)")! }) { proxy, _ in
            let response = try proxy.fetch(Req.get("/readyz"))
            #expect(response.status == 503, "\(response.text)")
            #expect(response.head.header("Content-Type")?.hasPrefix("application/json") == true)
            let object = try #require(jsonObject(response), "\(response.text)")
            #expect(object["status"] as? String == "unavailable")
            // Why, but not where: /readyz is public and the upstream's address is internal (the error log has it).
            #expect((object["error"] as? String)?.lowercased() == "upstream: connection refused", "\(response.text)")
            #expect(!response.text.contains("\(port)") && !response.text.contains("127.0.0.1"), "\(response.text)")
            // Liveness is unaffected.
            #expect(try proxy.fetch(Req.get("/healthz")).status == 200)
        }
    }

    @Test func readyzFollowsAnUpstreamThatStopsListening() throws {
        try Self.withUsers { proxy, fake in
            fake.fault = .refuse
            // Polled: a verdict is cached for up to a second per worker.
            let unready = try waitUntil(timeoutSeconds: eventTimeout, pollMillis: 100) {
                try proxy.fetch(Req.get("/readyz")).status == 503
            }
            #expect(unready)
            fake.fault = .none
            let ready = try waitUntil(timeoutSeconds: eventTimeout, pollMillis: 100) {
                try proxy.fetch(Req.get("/readyz")).status == 200
            }
            #expect(ready)
            #expect(fake.requests.isEmpty)
        }
    }
}
