import Dispatch
import Glibc
import Testing

/// Graceful drain (in-flight streams finish, new connections are refused, then the server stops) and the redirect
/// listener.
@Suite struct DrainAndRedirectTests {
    @Test func drainLetsTheStreamInFlightFinish() throws {
        try withProxyAndFake(tokens: 4) { proxy, fake in
            fake.stepMode = true
            let client = try proxy.tls()
            defer { client.close() }
            try client.send(StreamingTests.post("/api/generate", #"{"model":"mistral:7b","prompt":"hi"}"#))
            fake.allowLines(1)
            #expect(try client.readHead().status == 200)
            #expect(try client.readLine()?.contains(#""done":false"#) == true)

            let server = proxy.server
            DispatchQueue.global().async { server.shutdown(graceSeconds: 30) }
            // The listeners close once the loop has run the shutdown: wait for a refused connection.
            var refused = false
            let deadline = DispatchTime.now() + eventTimeout
            while !refused && DispatchTime.now() < deadline {
                do {
                    try PlainStream(port: proxy.tlsPort).close()
                    sched_yield()
                } catch {
                    refused = "\(error)".contains("refused")
                }
            }
            #expect(refused, "new connections were still accepted while draining")

            // The stream in flight still completes, line by line, when the upstream produces it.
            var lines = 1
            while true {
                fake.allowLines(1)
                let line = try #require(try client.readLine(), "the stream ended before its last line")
                lines += 1
                if line.contains(#""done":true"#) { break }
                try #require(lines <= 5)
            }
            #expect(lines == 5)
            #expect(try client.readLine() == nil)
            // After its last response the connection closes and the server stops on its own.
            #expect(try client.isClosedByPeer())
            #expect(waitUntilStopped(server, timeoutSeconds: stopTimeoutSeconds))
        }
    }

    @Test func redirectListenerAnswers301ToHttps() throws {
        let fake = try FakeOllamaHarness.start()
        defer { fake.stop() }
        try withProxy(configure: { $0.listenRedirect = [.init(parsing: "127.0.0.1:0")!] }, upstream: fake) { proxy in
            let client = try proxy.redirect()
            defer { client.close() }
            try client.send("GET /api/tags?x=1 HTTP/1.1\r\nHost: ollama.example.com\r\n\r\n")
            let response = try client.readResponse()
            #expect(response.status == 301)
            #expect(response.head.header("Location") == "https://ollama.example.com:\(proxy.tlsPort)/api/tags?x=1")
            #expect(response.body.isEmpty)
            #expect(try client.isClosedByPeer())
            #expect(fake.requests.isEmpty)
        }
    }

    @Test func redirectUsesTheConfiguredHttpsPort() throws {
        let fake = try FakeOllamaHarness.start()
        defer { fake.stop() }
        try withProxy(configure: {
            $0.listenRedirect = [.init(parsing: "127.0.0.1:0")!]
            $0.redirectPort = 443
        }, upstream: fake) { proxy in
            let client = try proxy.redirect()
            defer { client.close() }
            try client.send("POST /v1/chat/completions HTTP/1.1\r\nHost: ollama.example.com:80\r\nContent-Length: 2\r\n\r\n{}")
            let response = try client.readResponse()
            #expect(response.status == 301)
            #expect(response.head.header("Location") == "https://ollama.example.com/v1/chat/completions")
            #expect(fake.requests.isEmpty)
        }
    }
}
