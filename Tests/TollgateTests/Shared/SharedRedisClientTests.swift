import Glibc
import Synchronization
@testable import Tollgate
import TollgateIO
import TollgateTestSupport
import Testing

@Suite("Shared: RedisClient against redis-server", .enabled(if: RedisServerProcess.available, "redis-server not installed (apt-get install redis-server)"))
struct SharedRedisClientTests {
    @Test func pipelinedRepliesComeBackInOrder() async throws {
        let server = try RedisServerProcess()
        let loop = try TestLoop()
        let client = try await makeClient(server.url(), on: loop)
        // 500 commands written in one loop turn: replies must match the FIFO one to one.
        let replies = await loop.call { (done: @escaping @Sendable ([RESPValue]) -> Void) in
            nonisolated(unsafe) var got: [RESPValue] = []
            for i in 0..<500 {
                let args = i % 2 == 0 ? ["INCR", "n"] : ["ECHO", "e\(i)"]
                client.send(args) { result in
                    got.append((try? result.get()) ?? .error("failed"))
                    if got.count == 500 { done(got) }
                }
            }
        }
        let r = try #require(replies)
        for i in 0..<500 {
            #expect(r[i] == (i % 2 == 0 ? .integer(Int64(i / 2 + 1)) : bulk("e\(i)")), "reply \(i)")
        }
        #expect(await loop.run { client.health } == .up)
        await closeClient(client, on: loop)
    }

    @Test func authAndSelectRunOnConnect() async throws {
        let server = try RedisServerProcess(password: "s3cret")
        let loop = try TestLoop()
        let db3 = try await makeClient(server.url(database: 3), on: loop)
        #expect(await command(db3, on: loop, "SET", "k", "three") == .success(.simpleString("OK")))
        let db0 = try await makeClient(server.url(), on: loop)
        #expect(await command(db0, on: loop, "GET", "k") == .success(.bulkString(nil)))
        #expect(await command(db0, on: loop, "SELECT", "3") == .success(.simpleString("OK")))
        #expect(await command(db0, on: loop, "GET", "k") == .success(bulk("three")))

        let wrong = try await makeClient(server.url(password: "nope"), on: loop, start: false)
        // Queued in the same loop turn as the connect, so it is behind the AUTH that fails.
        let refused = await loop.call { done in
            wrong.start()
            wrong.send(["PING"]) { done($0) }
        }
        guard case .failure(.setupRefused(let message))? = refused else {
            Issue.record("a wrong password must fail the queued command: \(String(describing: refused))"); return
        }
        #expect(message.contains("WRONGPASS") || message.contains("invalid"))
        #expect(await loop.run { wrong.health } == .down)
        // Refused without being sent: not connected, or (a busy machine reaching the reconnect) the AUTH again.
        let again = await command(wrong, on: loop, "PING")
        switch again {
        case .failure(.notConnected)?, .failure(.setupRefused)?: break
        default: Issue.record("a command to a client whose AUTH failed: \(String(describing: again))")
        }
        for c in [db3, db0, wrong] { await closeClient(c, on: loop) }
    }

    @Test func evalshaFallsBackToEvalAfterScriptFlush() async throws {
        let server = try RedisServerProcess()
        let loop = try TestLoop()
        let client = try await makeClient(server.url(), on: loop)
        let script = RedisScript("return redis.call('INCRBY', KEYS[1], ARGV[1])")
        let eval: @Sendable (String) async -> Result<RESPValue, RedisError>? = { by in
            await loop.call { done in client.evalScript(script, keys: [Array("c".utf8)], args: [Array(by.utf8)]) { done($0) } }
        }
        #expect(await eval("2") == .success(.integer(2)))
        #expect(await command(client, on: loop, "SCRIPT", "FLUSH") == .success(.simpleString("OK")))
        #expect(await eval("3") == .success(.integer(5)))
        #expect(await loop.run { client.counters.noscriptFallbacks } == 1)
        // EVAL reloaded it: back to EVALSHA, no further fallback.
        #expect(await eval("4") == .success(.integer(9)))
        #expect(await loop.run { client.counters.noscriptFallbacks } == 1)
        #expect(await command(client, on: loop, "SCRIPT", "EXISTS", script.sha1) == .success(.array([.integer(1)])))
        await closeClient(client, on: loop)
    }

    @Test func aTimeoutClosesTheConnectionAndFailsEveryPendingCommand() async throws {
        let server = try RedisServerProcess()
        let loop = try TestLoop()
        let client = try await makeClient(server.url(), on: loop, commandTimeoutMillis: 100)
        #expect(await command(client, on: loop, "SET", "k", "fresh") == .success(.simpleString("OK")))
        // A script that keeps the server busy ~700 ms and then answers "late", followed by a pipelined GET.
        let busy = "local t = redis.call('TIME') local s = t[1] * 1000000 + t[2] " +
            "repeat local n = redis.call('TIME') until n[1] * 1000000 + n[2] - s > 700000 return 'late'"
        let outcomes = await loop.call { (done: @escaping @Sendable ([Result<RESPValue, RedisError>]) -> Void) in
            nonisolated(unsafe) var got: [Result<RESPValue, RedisError>] = []
            client.send(["EVAL", busy, "0"]) { got.append($0) }
            client.send(["GET", "k"]) { got.append($0); done(got) }
        }
        #expect(outcomes == [.failure(.timeout), .failure(.timeout)])
        #expect(await loop.run { client.counters.timeouts } >= 1)
        // Once the server is free again the client is back, and a reply is always its own command's.
        #expect(await loop.waitUntil { client.health == .up })
        var reply: Result<RESPValue, RedisError>?
        for _ in 0..<200 {
            reply = await command(client, on: loop, "GET", "k")
            if case .success = reply { break }
            try? await Task.sleep(for: .milliseconds(20))
        }
        #expect(reply == .success(bulk("fresh")))
        #expect(await command(client, on: loop, "ECHO", "mine") == .success(bulk("mine")))
        await closeClient(client, on: loop)
    }

    @Test func reconnectsAfterTheServerRestarts() async throws {
        let server = try RedisServerProcess()
        let loop = try TestLoop()
        let client = try await makeClient(server.url(), on: loop)
        let healths = HealthLog()
        await loop.run { client.onHealthChange = { healths.append($0) } }
        #expect(await command(client, on: loop, "PING") == .success(.simpleString("PONG")))
        server.kill()
        #expect(await loop.waitUntil { client.health == .down })
        #expect(await command(client, on: loop, "PING") == .failure(.notConnected))
        try server.start()
        #expect(await loop.waitUntil { client.health == .up })
        #expect(await command(client, on: loop, "PING") == .success(.simpleString("PONG")))
        #expect(healths.values == [.down, .up])
        #expect(await loop.run { client.counters.connects } == 2)
        await closeClient(client, on: loop)
    }

    @Test func garbageFromTheServerClosesTheConnection() async throws {
        let listener = try Socket.listen(on: SocketAddress(parsing: "127.0.0.1:0")!, reusePort: false)
        defer { Syscall.close(listener) }
        let port = try #require(Socket.localAddress(listener)?.port)
        let loop = try TestLoop()
        let client = try await makeClient("redis://127.0.0.1:\(port)", on: loop)
        let pending = Task { await command(client, on: loop, "PING") }
        #expect(await loop.waitUntil { client.pendingCount == 1 })
        // Accept the client and answer with something that is not RESP2.
        var fds = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
        #expect(poll(&fds, 1, 30_000) == 1)
        let peer = accept(listener, nil, nil)
        #expect(peer >= 0)
        _ = "?what\r\n".withCString { send(peer, $0, 7, Int32(MSG_NOSIGNAL)) }
        let outcome = await pending.value
        guard case .failure(.protocolViolation)? = outcome else {
            Issue.record("garbage must fail the pending command: \(String(describing: outcome))"); Syscall.close(peer); return
        }
        #expect(await loop.run { client.counters.protocolErrors } == 1)
        // The client closed its end: after the PING it wrote comes end of file.
        var buffer = [UInt8](repeating: 0, count: 256)
        var received: [UInt8] = []
        while true {
            let n = recv(peer, &buffer, buffer.count, 0)
            if n <= 0 { #expect(n == 0); break }
            received += buffer[0..<n]
        }
        #expect(received == RESPEncoder.encode([Array("PING".utf8)]))
        Syscall.close(peer)
        await closeClient(client, on: loop)
    }

    @Test func downServerFailsFastAsNotConnected() async throws {
        let server = try RedisServerProcess()
        let url = server.url()
        server.kill()
        let loop = try TestLoop()
        // A backoff far longer than the test: the client stays down after its first failed connect, so the PING
        // meets it down however late a busy machine sends it (with 20 ms it could be reconnecting by then).
        let client = try await makeClient(url, on: loop, backoffMillis: 60_000)
        #expect(await loop.waitUntil { client.health == .down })
        #expect(await command(client, on: loop, "PING") == .failure(.notConnected))
        #expect(await loop.run { client.counters.connectFailures } >= 1)
        await closeClient(client, on: loop)
        #expect(await command(client, on: loop, "PING") == .failure(.closed))
    }
}

/// Health changes seen by a callback on the loop thread.
final class HealthLog: @unchecked Sendable {
    private let lock = Mutex<[RedisHealth]>([])
    func append(_ h: RedisHealth) { lock.withLock { $0.append(h) } }
    var values: [RedisHealth] { lock.withLock { $0 } }
}
