import FakeOllama
import Testing
import Tollgate
import TollgateIO

/// Several Ollama backends behind one proxy: routing by model and load, waiting for a backend with room, health
/// checks, failover before the first response byte, and truncation after it.
@Suite struct BackendsTests {
    static func generate(_ model: String, stream: Bool = false) -> String {
        Req.post("/api/generate", #"{"model":"\#(model)","prompt":"hi","stream":\#(stream)}"#)
    }

    @Test func requestsGoToABackendWithTheModelPreferringOneWhereItIsLoaded() throws {
        try withBackends([FakeBackend(models: ["mistral:7b"], max: 2),
                          FakeBackend(models: ["mistral:7b", "llama3"], loaded: ["llama3"], max: 2)]) { proxy, fakes in
            for _ in 0..<3 {
                let llama = try proxy.fetch(Self.generate("llama3"))
                #expect(llama.status == 200)
                #expect(llama.backend == "b1")
                // mistral is loaded only on b0 (b1 has it on disk but llama3 in memory).
                let mistral = try proxy.fetch(Self.generate("mistral:7b"))
                #expect(mistral.status == 200)
                #expect(mistral.backend == "b0")
            }
            // The model is read as Ollama reads it: top-level key, any case, the last one wins.
            let nested = try proxy.fetch(Req.post("/api/generate",
                #"{"options":{"model":"mistral:7b"},"MODEL":"mistral:7b","model":"llama3","stream":false}"#))
            #expect(nested.backend == "b1")
            // /api/show goes to a backend that has the model, without counting against max.
            let show = try proxy.fetch(Req.post("/api/show", #"{"model":"llama3"}"#))
            #expect(show.status == 200)
            #expect(show.backend == "b1")
            // Pooled connections stay with their backend: each got only requests addressed to it.
            for fake in fakes {
                #expect(fake.proxiedRequests.count >= 3)
                #expect(fake.proxiedRequests.allSatisfy { $0.header("Host") == "127.0.0.1:\(fake.port)" })
            }
            let snapshot = try #require(proxy.server.backends).snapshot
            #expect(snapshot.map(\.models) == [["mistral:7b"], ["mistral:7b", "llama3:latest"]])
            #expect(snapshot.map(\.inFlight) == [0, 0])
        }
    }

    @Test func aModelNoBackendHasIs404InTheFamilysShape() throws {
        try withBackends([FakeBackend(), FakeBackend()]) { proxy, fakes in
            let ollama = try proxy.fetch(Self.generate("gemma:2b"))
            expectError(ollama, status: 404, family: .ollama)
            #expect(ollama.text == #"{"error":"model 'gemma:2b' not found"}"#)
            let openAI = try proxy.fetch(Req.post("/v1/chat/completions", #"{"model":"gemma:2b","messages":[]}"#))
            expectError(openAI, status: 404, family: .openAI)
            #expect(fakes.allSatisfy { $0.proxiedRequests.isEmpty })
        }
    }

    @Test func nonModelRoutesGoToAnyBackendWithoutCountingAgainstMax() throws {
        try withBackends([FakeBackend(max: 1), FakeBackend(max: 1)], tokens: 3) { proxy, fakes in
            // Both backends at their max with held streams...
            let held = try holdOneStreamPerBackend(proxy, fakes, request: Self.generate("mistral:7b", stream: true))
            defer { for c in held { c.close() } }
            #expect(waitUntil { proxy.server.backends?.snapshot.map(\.inFlight) == [1, 1] })
            // ...still answer /api/ps and /api/version, alternately.
            let served = try (0..<4).map { _ in try proxy.fetch(Req.get("/api/ps")).backend }
            #expect(Set(served.compactMap { $0 }) == ["b0", "b1"])
            #expect(try proxy.fetch(Req.get("/api/version")).status == 200)
        }
    }

    @Test func aRequestWaitsForABackendWithRoomAndIsSentWhenOneFrees() throws {
        try withBackends([FakeBackend(max: 1), FakeBackend(max: 1)], tokens: 3) { proxy, fakes in
            for f in fakes { f.stepMode = true }
            let set = try #require(proxy.server.backends)
            let first = try proxy.tls(), second = try proxy.tls(), third = try proxy.tls()
            defer { first.close(); second.close(); third.close() }
            try first.send(Self.generate("mistral:7b", stream: true))
            #expect(waitUntil { set.snapshot.map(\.inFlight) == [1, 0] })
            try second.send(Self.generate("mistral:7b", stream: true))
            #expect(waitUntil { set.snapshot.map(\.inFlight) == [1, 1] })
            // Counted in flight as the proxy sends it; seen by the backend a moment later.
            #expect(waitUntil { fakes.map { $0.proxiedRequests.count } == [1, 1] })
            try third.send(Self.generate("mistral:7b", stream: true))
            #expect(waitUntil { set.queued == 1 }, "the third request did not wait")
            #expect(fakes.map { $0.proxiedRequests.count } == [1, 1], "the third request reached a full backend")

            // b1's stream ends: the waiting request goes there.
            fakes[1].allowLines(4)
            let secondResponse = try second.readResponse()
            #expect(secondResponse.backend == "b1")
            #expect(secondResponse.text.contains(#""done":true"#))
            #expect(waitUntil { fakes[1].proxiedRequests.count == 2 })
            #expect(set.queued == 0)
            fakes[1].allowLines(4)
            let thirdResponse = try third.readResponse()
            #expect(thirdResponse.backend == "b1")
            #expect(thirdResponse.text.contains(#""done":true"#))
            fakes[0].allowLines(4)
            #expect(try first.readResponse().backend == "b0")
            #expect(waitUntil { set.snapshot.map(\.inFlight) == [0, 0] })
        }
    }

    @Test func aFullQueueIsRefusedWith429() throws {
        try withBackends([FakeBackend(max: 1), FakeBackend(max: 1)], tokens: 2, configure: { config in
            config.backendQueueLimit = 0
        }) { proxy, fakes in
            let held = try holdOneStreamPerBackend(proxy, fakes, request: Self.generate("mistral:7b", stream: true))
            defer { for c in held { c.close() } }
            #expect(waitUntil { proxy.server.backends?.snapshot.map(\.inFlight) == [1, 1] })
            let refused = try proxy.fetch(Self.generate("mistral:7b"))
            expectError(refused, status: 429, family: .ollama)
            #expect(refused.head.header("Retry-After") != nil)
        }
    }

    @Test func aWaitingRequestIsAnswered502WhenEveryBackendWithItsModelIsEjected() throws {
        try withBackends([FakeBackend(max: 1), FakeBackend(max: 1)], tokens: 3, configure: { config in
            config.healthFails = 1
            config.metricsListen = [SocketAddress(parsing: "127.0.0.1:0")!]
        }) { proxy, fakes in
            let set = try #require(proxy.server.backends)
            let held = try holdOneStreamPerBackend(proxy, fakes, request: Self.generate("mistral:7b", stream: true))
            defer { for c in held { c.close() } }
            #expect(waitUntil { set.snapshot.map(\.inFlight) == [1, 1] })
            let waiting = try proxy.tls()
            defer { waiting.close() }
            try waiting.send(Req.post("/v1/chat/completions", #"{"model":"mistral:7b","messages":[],"stream":true}"#))
            #expect(waitUntil { set.queued == 1 }, "the request did not wait")
            let before = try MetricsScrape(proxy)[#"tollgate_upstream_errors_total{kind="refused"}"#]

            // One backend goes: the waiter still has the other.
            fakes[0].fault = .refuse
            #expect(checkNow(proxy.server))
            #expect(set.snapshot.map(\.healthy) == [false, true])
            #expect(set.queued == 1)
            // The other goes too: answered now, as a request arriving now would be, long before queue-timeout.
            fakes[1].fault = .refuse
            #expect(checkNow(proxy.server))
            let r = try waiting.readResponse()
            expectError(r, status: 502, family: .openAI)
            #expect(r.text.contains("no healthy backend"))
            #expect(set.queued == 0)
            #expect(try MetricsScrape(proxy)[#"tollgate_upstream_errors_total{kind="refused"}"#] == before + 1)
        }
    }

    @Test func aBackendThatRefusesIsFailedOverWithNoClientErrorThenEjectedAndRecovers() throws {
        try withBackends([FakeBackend(max: 4), FakeBackend(max: 4)], configure: { $0.healthFails = 2 }) { proxy, fakes in
            let set = try #require(proxy.server.backends)
            fakes[0].fault = .refuse
            // Every request succeeds, from b1; the ones sent to b0 first are failed over.
            for _ in 0..<4 {
                let r = try proxy.fetch(Self.generate("mistral:7b"))
                #expect(r.status == 200)
                #expect(r.backend == "b1")
            }
            #expect(set.failovers >= 1)
            #expect(set.snapshot.map(\.healthy) == [false, true])
            #expect(set.snapshot[0].ejections == 1)
            #expect(try proxy.fetch(Req.get("/readyz")).status == 200)

            // Back up: one successful check brings it back.
            fakes[0].fault = .none
            #expect(checkNow(proxy.server))
            #expect(set.snapshot.map(\.healthy) == [true, true])
            let served = try (0..<4).map { _ in try proxy.fetch(Self.generate("mistral:7b")).backend }
            #expect(served.contains("b0"))
        }
    }

    @Test func checksAloneEjectAndRecoverAndReadinessFollows() throws {
        try withBackends([FakeBackend(), FakeBackend()], configure: { $0.healthFails = 3 }) { proxy, fakes in
            let set = try #require(proxy.server.backends)
            fakes[0].fault = .refuse
            fakes[1].fault = .refuse
            #expect(checkNow(proxy.server))
            #expect(checkNow(proxy.server))
            #expect(set.snapshot.map(\.healthy) == [true, true], "ejected before health-fails failures")
            #expect(checkNow(proxy.server))
            #expect(set.snapshot.map(\.healthy) == [false, false])
            let ready = try proxy.fetch(Req.get("/readyz"))
            #expect(ready.status == 503)
            let down = try proxy.fetch(Self.generate("mistral:7b"))
            expectError(down, status: 502, family: .ollama)
            fakes[1].fault = .none
            #expect(checkNow(proxy.server))
            #expect(set.snapshot.map(\.healthy) == [false, true])
            #expect(try proxy.fetch(Req.get("/readyz")).status == 200)
            #expect(try proxy.fetch(Self.generate("mistral:7b")).backend == "b1")
        }
    }

    @Test func aBackendClosingBeforeAnsweringIsFailedOverAndTheWholeBodyResent() throws {
        try withBackends([FakeBackend(max: 4), FakeBackend(max: 4)]) { proxy, fakes in
            fakes[0].fault = .closeWithoutAnswer
            let body = #"{"model":"mistral:7b","prompt":"\#(String(repeating: "long prompt ", count: 3_000))","stream":false}"#
            for _ in 0..<2 {
                // A chunked upload, so the body cannot be known from the head alone.
                let client = try proxy.tls()
                defer { client.close() }
                let chunks = "POST /api/generate HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
                    + String(body.utf8.count, radix: 16) + "\r\n" + body + "\r\n0\r\n\r\n"
                let r = try client.exchange(chunks)
                #expect(r.status == 200)
                #expect(r.backend == "b1")
            }
            let resent = try #require(fakes[1].proxiedRequests.last)
            #expect(resent.body == Array(body.utf8))
            #expect(resent.header("Host") == "127.0.0.1:\(fakes[1].port)")
            #expect(fakes[0].proxiedRequests.count >= 1)
            #expect(try #require(proxy.server.backends).failovers >= 1)
        }
    }

    /// A pull that reached a backend which then closed may have run there: it is not sent to another backend (nor
    /// again to the same one), so it cannot run twice; the client gets the 502.
    @Test(arguments: [("POST", "/api/pull"), ("DELETE", "/api/delete")])
    func aModelChangeIsNotFailedOverOnceABackendHadIt(_ method: String, _ path: String) throws {
        try withBackends([FakeBackend(), FakeBackend()]) { proxy, fakes in
            for f in fakes { f.fault = .closeWithoutAnswer }
            let r = try proxy.fetch(Req.post(path, #"{"model":"mistral:7b","stream":false}"#, method: method))
            expectError(r, status: 502, family: .ollama)
            #expect(fakes.map { $0.proxiedRequests.count }.reduce(0, +) == 1, "\(method) \(path) went to one backend, once")
            #expect(try #require(proxy.server.backends).failovers == 0)
        }
    }

    @Test func whenEveryBackendFailsTheClientGets502() throws {
        try withBackends([FakeBackend(), FakeBackend()]) { proxy, fakes in
            for f in fakes { f.fault = .closeWithoutAnswer }
            let r = try proxy.fetch(Req.post("/v1/chat/completions", #"{"model":"mistral:7b","messages":[]}"#))
            expectError(r, status: 502, family: .openAI)
            #expect(fakes.map { $0.proxiedRequests.count } == [1, 1], "each backend is tried once")
            // One failover (to the second backend); none after it, as nothing was left.
            #expect(try #require(proxy.server.backends).failovers == 1)
        }
    }

    @Test func aBackendDyingMidStreamTruncatesOnlyThatStream() throws {
        try withBackends([FakeBackend(max: 1), FakeBackend(max: 1)], tokens: 6) { proxy, fakes in
            for f in fakes { f.stepMode = true }
            fakes[1].fault = .dieAfterLines(2)
            let set = try #require(proxy.server.backends)
            let healthy = try proxy.tls(), dying = try proxy.tls()
            defer { dying.close(); healthy.close() }
            try healthy.send(Self.generate("mistral:7b", stream: true))
            #expect(waitUntil { set.snapshot.map(\.inFlight) == [1, 0] })
            try dying.send(Self.generate("mistral:7b", stream: true))
            #expect(waitUntil { set.snapshot.map(\.inFlight) == [1, 1] })
            fakes[1].allowLines(2)
            let head = try dying.readHead()
            #expect(head.status == 200)
            #expect(head.header("X-Backend") == "b1")
            #expect(try dying.readChunk().data != nil)
            #expect(try dying.readChunk().data != nil)
            // No zero chunk and no failover after the first byte: the client sees a truncated response.
            #expect(try dying.isClosedByPeer())
            #expect(set.failovers == 0)
            // The stream on the other backend is untouched.
            fakes[0].allowLines(7)
            let rest = try healthy.readResponse()
            #expect(rest.backend == "b0")
            #expect(rest.text.contains(#""done":true"#))
            #expect(waitUntil { set.snapshot.map(\.inFlight) == [0, 0] })
        }
    }

    @Test func theAccessLogAndMetricsNameTheBackend() throws {
        let dir = try OpsTempDirectory()
        let log = dir.file("access.log")
        try withBackends([FakeBackend(), FakeBackend()], configure: { config in
            config.accessLog = .json
            config.accessLogPath = log
            config.metricsListen = [SocketAddress(parsing: "127.0.0.1:0")!]
        }) { proxy, fakes in
            #expect(try proxy.fetch(Self.generate("mistral:7b")).status == 200)
            let metrics = try MetricsScrape(proxy).response.text
            #expect(metrics.contains(#"tollgate_backend_healthy{backend="127.0.0.1:\#(fakes[0].port)"} 1"#))
            #expect(metrics.contains(#"tollgate_backend_requests_total{backend="127.0.0.1:\#(fakes[0].port)"} 1"#))
            #expect(metrics.contains("tollgate_backend_in_flight{backend="))
            #expect(metrics.contains("tollgate_backend_ejections_total{backend="))
            #expect(metrics.contains("tollgate_backend_failovers_total 0"))
            let lines = OpsFiles.waitForLines(log, count: 1)
            #expect(lines.first?.contains(#""backend":"127.0.0.1:\#(fakes[0].port)""#) == true, "\(lines)")
        }
    }

    @Test func aSingleUpstreamKeepsStreamingTheBodyWithNoBackendSet() throws {
        try withProxyAndFake { proxy, fake in
            #expect(proxy.server.backends == nil)
            let client = try proxy.tls()
            defer { client.close() }
            // Half a blob upload: with one upstream the proxy connects and forwards at once, without waiting for
            // the rest (inference bodies are read whole first; see RequestBodyTests).
            let first = "half of ", rest = "a blob"
            try client.send("POST /api/blobs/sha256:abc HTTP/1.1\r\nHost: localhost\r\n"
                + "Content-Length: \(first.utf8.count + rest.utf8.count)\r\n\r\n" + first)
            #expect(fake.waitForOpenConnections(1, timeoutSeconds: eventTimeout))
            try client.send(rest)
            let r = try client.readResponse()
            #expect(r.status == 201)
        }
    }

    @Test func aSingleUpstreamWithMaxStreamsTheBodyButWaitsForRoom() throws {
        try withProxyAndFake(tokens: 2, configure: { config in
            config.upstreams[0].maxInFlight = 1
            config.healthInterval = 3_600
        }) { proxy, fake in
            fake.stepMode = true
            let set = try #require(proxy.server.backends)
            let first = try proxy.tls(), second = try proxy.tls()
            defer { first.close(); second.close() }
            try first.send(Self.generate("mistral:7b", stream: true))
            #expect(waitUntil { set.snapshot[0].inFlight == 1 })
            try second.send(Self.generate("mistral:7b", stream: true))
            #expect(waitUntil { set.queued == 1 }, "the second request did not wait")
            fake.allowLines(3)
            #expect(try first.readResponse().text.contains(#""done":true"#))
            #expect(waitUntil { set.queued == 0 })
            fake.allowLines(3)
            #expect(try second.readResponse().text.contains(#""done":true"#))
        }
    }

    @Test func aReloadReportsBackendChangesAsNeedingARestartAndKeepsTheOldOnes() throws {
        try withBackends([FakeBackend(), FakeBackend()]) { proxy, fakes in
            var changed = proxy.server.config
            changed.upstreams.removeLast()
            changed.healthFails = 9
            let messages = try proxy.server.reload(changed)
            let restart = messages.last ?? ""
            #expect(restart == "changes to upstream, health-fails take effect after a restart", "\(messages)")
            #expect(proxy.server.config.upstreams.count == 2)
            let served = try (0..<2).map { _ in try proxy.fetch(Self.generate("mistral:7b")).backend }
            #expect(Set(served.compactMap { $0 }) == ["b0", "b1"])
        }
    }
}
