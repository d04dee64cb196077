import FakeOllama
import Testing
@testable import Tollgate
import TollgateIO

/// A graceful stop while a backend with `max=1` streams one request and a second waits for it, on one worker and on
/// two (the waiting request may sit on the other loop, so its lease is handed across): with time left both are
/// answered in full; with none both are closed. Either way the backend set counts no lease and queues nothing once
/// the server has stopped: the lease the closed stream frees is granted to the waiting request, whose hand-over
/// runs as its loop stops or is refused and given back.
@Suite struct DrainBackendLeaseTests {
    static let tokens = 2
    static let request = Req.post("/api/generate", #"{"model":"mistral:7b","prompt":"hi","stream":true}"#)

    /// The backend's leases in flight and its queue once the server has stopped, after `body` with both clients.
    static func drain(workers: Int, body: (Proxy, FakeOllamaServer, HTTPClient, HTTPClient) throws -> Void) throws -> (Int, Int) {
        var counts = (-1, -1)
        try withProxyAndFake(tokens: tokens, configure: { config in
            config.workers = workers
            config.upstreams[0].maxInFlight = 1
            config.healthInterval = 3_600
            config.concurrency = nil
        }) { proxy, fake in
            fake.stepMode = true
            defer { fake.stepMode = false }
            let set = try #require(proxy.server.backends)
            let first = try proxy.tls(), second = try proxy.tls()
            defer { first.close(); second.close() }
            try first.send(request)
            try #require(waitUntil { set.snapshot[0].inFlight == 1 }, "the stream did not take the backend's place")
            try second.send(request)
            try #require(waitUntil { set.queued == 1 }, "the second request did not wait")
            try body(proxy, fake, first, second)
            #expect(waitUntilStopped(proxy.server, timeoutSeconds: stopTimeoutSeconds), "the server did not stop")
            counts = (set.snapshot[0].inFlight, set.queued)
        }
        return counts
    }

    @Test(arguments: [1, 2]) func aDrainWithTimeLeftAnswersBothAndLeavesNoLeaseCounted(workers: Int) throws {
        let (inFlight, queued) = try Self.drain(workers: workers) { proxy, fake, first, second throws in
            #expect(DrainCompletionTests.stopAccepting(proxy, graceSeconds: 3_600), "the loops did not start draining")
            fake.allowLines(Self.tokens + 1)
            #expect(try first.readResponse().text.contains(#""done":true"#))
            #expect(fake.waitForRequests(2, timeoutSeconds: eventTimeout), "the waiting request never reached Ollama")
            fake.allowLines(Self.tokens + 1)
            let answer = try second.readResponse()
            #expect(answer.status == 200)
            #expect(answer.text.contains(#""done":true"#), "the waiting request's stream was cut: \(answer.text)")
        }
        #expect(inFlight == 0 && queued == 0, "in flight \(inFlight), queued \(queued)")
    }

    @Test(arguments: [1, 2]) func aDrainWithNoTimeLeftClosesBothAndLeavesNoLeaseCounted(workers: Int) throws {
        let (inFlight, queued) = try Self.drain(workers: workers) { proxy, fake, first, second throws in
            fake.allowLines(1)
            #expect(try first.readHead().status == 200)
            #expect(DrainCompletionTests.stopAccepting(proxy, graceSeconds: 0), "the loops did not start draining")
            while (try? first.readLine()) != nil {}
            #expect((try? second.readResponse()) == nil, "the waiting request was answered after the grace ran out")
        }
        #expect(inFlight == 0 && queued == 0, "in flight \(inFlight), queued \(queued)")
    }
}
