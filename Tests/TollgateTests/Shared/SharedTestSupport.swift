import Foundation
import Glibc
import Synchronization
@testable import Tollgate
import TollgateIO
import Testing

/// An `EventLoop` running on its own thread, with helpers to run code on it and wait for callbacks.
final class TestLoop: @unchecked Sendable {
    let loop: EventLoop
    private let thread: pthread_t
    private var stopped = false

    init(tickMillis: UInt64 = 20) throws {
        let loop = try EventLoop(index: 0, tickMillis: tickMillis)
        self.loop = loop
        thread = spawnThread(name: "redis-test") { loop.run() }
    }

    /// Stops the loop and joins its thread.
    func stop() {
        guard !stopped else { return }
        stopped = true
        loop.execute { [loop] in loop.stop() }
        pthread_join(thread, nil)
    }

    deinit { stop() }

    /// Runs body on the loop thread and returns its result.
    func run<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { c in loop.execute { c.resume(returning: body()) } }
    }

    /// Runs body on the loop thread and waits until it calls its callback; nil after 60 s (a hung test fails
    /// instead of hanging).
    func call<T: Sendable>(_ body: @escaping @Sendable (@escaping @Sendable (T) -> Void) -> Void) async -> T? {
        let once = Mutex<CheckedContinuation<T?, Never>?>(nil)
        return await withCheckedContinuation { (c: CheckedContinuation<T?, Never>) in
            once.withLock { $0 = c }
            let resume: @Sendable (T?) -> Void = { value in
                once.withLock { slot in
                    slot?.resume(returning: value)
                    slot = nil
                }
            }
            Task {
                try? await Task.sleep(for: .seconds(60))
                resume(nil)
            }
            loop.execute { body { resume($0) } }
        }
    }

    /// Polls `condition` on the loop thread until it holds (true) or 30 s pass (false).
    func waitUntil(_ condition: @escaping @Sendable () -> Bool) async -> Bool {
        for _ in 0..<3000 {
            if await run(condition) { return true }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return false
    }
}

/// A client on `loop` for `url`, started unless told otherwise; close it with `closeClient` before stopping the loop.
func makeClient(_ url: String, on loop: TestLoop, commandTimeoutMillis: UInt64 = 5_000,
                backoffMillis: UInt64 = 20, start: Bool = true) async throws -> RedisClient {
    var config = try #require(RedisConfiguration(url: url))
    config.commandTimeoutMillis = commandTimeoutMillis
    config.initialBackoffMillis = backoffMillis
    config.maxBackoffMillis = backoffMillis * 4
    let address = try config.resolve()
    let client = RedisClient(configuration: config, address: address, loop: loop.loop)
    if start { await loop.run { client.start() } }
    return client
}

/// Closes the client on its loop.
func closeClient(_ client: RedisClient, on loop: TestLoop) async {
    await loop.run { client.close() }
}

/// Sends one command and waits for its outcome.
func command(_ client: RedisClient, on loop: TestLoop, _ args: String...) async -> Result<RESPValue, RedisError>? {
    await loop.call { done in client.send(args) { done($0) } }
}

/// A bulk-string reply for `text`.
func bulk(_ text: String) -> RESPValue { .bulkString(Array(text.utf8)) }
