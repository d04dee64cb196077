import Testing

/// Less common but ordinary traffic: pipelined bodies and streams, HEAD, absolute-form targets, 100-continue
/// refused early, and the client-side timeouts (configured tiny; the outcome is asserted, never the time).
@Suite struct EdgeCaseTests {
    @Test func pipelinedBodiesAndStreamsAnswerInOrder() throws {
        try withProxyAndFake(tokens: 3) { proxy, fake in
            let client = try proxy.tls()
            defer { client.close() }
            let show = #"{"model":"mistral:7b"}"#
            let generate = #"{"model":"mistral:7b","prompt":"hi"}"#
            try client.send(StreamingTests.post("/api/show", show) + StreamingTests.post("/api/generate", generate)
                + "GET /api/version HTTP/1.1\r\nHost: localhost\r\n\r\n")
            let first = try client.readResponse()
            #expect(first.status == 200)
            #expect(first.text.contains("\"details\""))
            let second = try client.readResponse()
            #expect(second.head.header("Content-Type") == "application/x-ndjson")
            #expect(second.text.hasSuffix("}\n") && second.text.contains(#""done":true"#))
            let third = try client.readResponse()
            #expect(third.text.contains("\"version\""))
            #expect(fake.requests.map(\.target) == ["/api/show", "/api/generate", "/api/version"])
            #expect(fake.requests.map(\.body) == [bytes(show), bytes(generate), []])
        }
    }

    @Test func headKeepsTheDeclaredLengthWithoutABody() throws {
        try withProxyAndFake { proxy, _ in
            let client = try proxy.tls()
            defer { client.close() }
            try client.send("HEAD / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            let head = try client.readResponse(requestWasHead: true)
            #expect(head.status == 200)
            #expect(head.head.header("Content-Length") == "17")
            // No body bytes were sent: the next response starts right after the head.
            try client.send("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            #expect(try client.readResponse().text == "Ollama is running")
        }
    }

    @Test func absoluteFormTargetReachesTheUpstreamInOriginForm() throws {
        try withProxyAndFake { proxy, fake in
            let client = try proxy.tls()
            defer { client.close() }
            try client.send("GET https://localhost/api/tags?verbose=1 HTTP/1.1\r\nHost: localhost\r\n\r\n")
            #expect(try client.readResponse().status == 200)
            #expect(fake.requests.map(\.target) == ["/api/tags?verbose=1"])
        }
    }

    @Test func expectContinueOverTheLimitGets413Without100() throws {
        try withProxyAndFake(configure: { $0.bodyLimits.inference = 100 }) { proxy, fake in
            let client = try proxy.tls()
            defer { client.close() }
            try client.send("POST /api/generate HTTP/1.1\r\nHost: localhost\r\nExpect: 100-continue\r\nContent-Length: 5000\r\n\r\n")
            let head = try client.readHead()
            #expect(head.status == 413)
            try proxy.expectOnlySentinelArrived(after: 0)
        }
    }

    @Test func idleKeepAliveConnectionIsClosed() throws {
        try withProxyAndFake(configure: { $0.timeouts.keepAliveIdle = 0.3 }) { proxy, _ in
            let client = try proxy.tls()
            defer { client.close() }
            try client.send("GET /api/version HTTP/1.1\r\nHost: localhost\r\n\r\n")
            #expect(try client.readResponse().status == 200)
            #expect(try client.isClosedByPeer())
        }
    }

    @Test func slowLorisHeadIsCutOff() throws {
        try withProxyAndFake(configure: { $0.timeouts.requestHead = 0.3 }) { proxy, _ in
            let client = try proxy.tls()
            defer { client.close() }
            try client.send("GET /api/version HTTP/1.1\r\nHost: localh")
            let rest = try client.readToEOF()
            #expect(rest.isEmpty || String(decoding: rest, as: UTF8.self).hasPrefix("HTTP/1.1 408"))
            try proxy.expectOnlySentinelArrived(after: 0)
        }
    }

    @Test func stalledRequestBodyIsCutOffAndNeverCompletesUpstream() throws {
        try withProxyAndFake(configure: { $0.timeouts.clientBodyIdle = 0.3 }) { proxy, fake in
            let client = try proxy.tls()
            defer { client.close() }
            try client.send("POST /api/show HTTP/1.1\r\nHost: localhost\r\nContent-Length: 50\r\n\r\n{\"model\":")
            let rest = try client.readToEOF()
            #expect(rest.isEmpty || String(decoding: rest, as: UTF8.self).hasPrefix("HTTP/1.1 408"))
            try proxy.expectOnlySentinelArrived(after: 0)
        }
    }
}
