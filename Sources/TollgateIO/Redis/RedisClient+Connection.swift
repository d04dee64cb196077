/// Connecting, writing, reading and failing: the socket side of `RedisClient`.
extension RedisClient {
    func connect() {
        switch Socket.connect(to: address) {
        case .failed(let e):
            counters.connectFailures += 1
            scheduleReconnect(after: .connectionLost(e))
            return
        case .connected(let newFD), .inProgress(let newFD):
            fd = newFD
        }
        state = .connecting
        connectDeadline = loop.now &+ configuration.connectTimeoutMillis &* 1_000_000
        // Setup goes first on the wire: these are the only bytes in the (empty) output buffer.
        let queued = pending[pendingHead...]
        let queuedBytes = Array(output[outputOffset...])
        pending.removeAll(keepingCapacity: true)
        pendingHead = 0
        output.removeAll(keepingCapacity: true)
        outputOffset = 0
        setupRemaining = 0
        if let password = configuration.password {
            var auth: [[UInt8]] = [Array("AUTH".utf8)]
            if let user = configuration.username { auth.append(Array(user.utf8)) }
            auth.append(Array(password.utf8))
            write(auth, purpose: .setup)
            setupRemaining += 1
        }
        if configuration.database != 0 {
            write([Array("SELECT".utf8), Array(String(configuration.database).utf8)], purpose: .setup)
            setupRemaining += 1
        }
        for script in scripts {
            write([Array("SCRIPT".utf8), Array("LOAD".utf8), Array(script.source.utf8)], purpose: .scriptLoad)
        }
        pending.append(contentsOf: queued)
        output.append(contentsOf: queuedBytes)
        loop.register(fd, interest: [.read, .write], handler: self)
    }

    func connected() {
        state = .connected
        flush()
        if setupRemaining == 0 { setupDone() }
    }

    func setupDone() {
        counters.connects += 1
        backoffMillis = max(1, configuration.initialBackoffMillis)
        setHealth(.up)
    }

    func setHealth(_ h: RedisHealth) {
        guard health != h else { return }
        health = h
        onHealthChange?(h)
    }

    /// Queues a command, or fails it at once when it cannot be sent (completion deferred to the iteration's end, so
    /// callers never see their completion run inside `send`).
    func enqueue(_ arguments: [[UInt8]], purpose: Purpose) {
        let failure: RedisError?
        switch state {
        case .idle, .backingOff: failure = .notConnected
        case .closed: failure = .closed
        case .connecting, .connected: failure = pendingCount >= configuration.maxPending ? .backlogFull : nil
        }
        if let failure {
            counters.failedCommands += 1
            loop.deferUntilIterationEnd { RedisClient.complete(purpose, .failure(failure)) }
            return
        }
        write(arguments, purpose: purpose)
        if case .connected = state, !flushScheduled {
            // One write per loop iteration for everything pipelined during it.
            flushScheduled = true
            let gen = generation
            loop.deferUntilIterationEnd { [self] in
                flushScheduled = false
                if gen == generation { flush() }
            }
        }
    }

    private func write(_ arguments: [[UInt8]], purpose: Purpose) {
        RESPEncoder.append(command: arguments, to: &output)
        pending.append(Pending(purpose: purpose, deadline: loop.now &+ configuration.commandTimeoutMillis &* 1_000_000))
        counters.commands += 1
    }

    func flush() {
        while outputOffset < output.count {
            switch Syscall.write(fd, output, at: outputOffset, count: output.count - outputOffset) {
            case .bytes(let n):
                outputOffset += n
            case .wouldBlock:
                loop.setInterest(fd, [.read, .write])
                return
            case .eof:
                fail(.connectionLost(0)); return
            case .failed(let e):
                fail(.connectionLost(e)); return
            }
        }
        output.removeAll(keepingCapacity: output.capacity <= 64 * 1024)
        outputOffset = 0
        loop.setInterest(fd, [.read])
    }

    func readReplies() {
        let gen = generation
        while true {
            if inputEnd == input.count {
                if inputStart > 0 {
                    input.replaceSubrange(0..<(inputEnd - inputStart), with: input[inputStart..<inputEnd])
                    inputEnd -= inputStart
                    inputStart = 0
                } else {
                    input.append(contentsOf: repeatElement(0, count: input.count))
                }
            }
            switch Syscall.read(fd, into: &input, at: inputEnd, count: input.count - inputEnd) {
            case .bytes(let n):
                inputEnd += n
                deliverReplies()
                guard gen == generation else { return }
            case .wouldBlock:
                return
            case .eof:
                fail(.connectionLost(0)); return
            case .failed(let e):
                fail(.connectionLost(e)); return
            }
        }
    }

    private func deliverReplies() {
        let gen = generation
        while inputStart < inputEnd {
            switch parser.parse(input, from: inputStart, to: inputEnd) {
            case .needMore:
                if inputEnd - inputStart > parser.maxBulkLength + 64 * 1024 {
                    counters.protocolErrors += 1
                    fail(.protocolViolation("reply larger than the limit")); return
                }
                return
            case .invalid(let why):
                counters.protocolErrors += 1
                fail(.protocolViolation(why)); return
            case .complete(let value, let consumed):
                inputStart += consumed
                guard pendingHead < pending.count else {
                    counters.protocolErrors += 1
                    fail(.protocolViolation("reply with no command pending")); return
                }
                let entry = pending[pendingHead]
                pendingHead += 1
                if pendingHead == pending.count {
                    pending.removeAll(keepingCapacity: true)
                    pendingHead = 0
                } else if pendingHead >= 1024 && pendingHead * 2 >= pending.count {
                    pending.removeFirst(pendingHead)
                    pendingHead = 0
                }
                counters.replies += 1
                if case .error = value { counters.errorReplies += 1 }
                handle(value, for: entry.purpose)
                guard gen == generation else { return }
            }
        }
        inputStart = 0
        inputEnd = 0
    }

    private func handle(_ value: RESPValue, for purpose: Purpose) {
        switch purpose {
        case .setup:
            if case .error(let message) = value {
                fail(.setupRefused(message)); return
            }
            setupRemaining -= 1
            if setupRemaining == 0 { setupDone() }
        case .scriptLoad:
            break
        case .evalSHA(let script, let keys, let args, let completion):
            if case .error(let message) = value, message.hasPrefix("NOSCRIPT") {
                counters.noscriptFallbacks += 1
                enqueue(RedisClient.evalArguments(Array("EVAL".utf8), Array(script.source.utf8), keys: keys, args: args),
                        purpose: .user(completion))
                return
            }
            completion?(.success(value))
        case .user(let completion):
            completion?(.success(value))
        }
    }

    static func complete(_ purpose: Purpose, _ result: Result<RESPValue, RedisError>) {
        switch purpose {
        case .user(let c), .evalSHA(_, _, _, let c): c?(result)
        case .setup, .scriptLoad: break
        }
    }

    /// The connection failed: close it, fail everything pending, and reconnect after the backoff.
    func fail(_ error: RedisError) {
        if case .connected = state, setupRemaining == 0 { counters.disconnects += 1 } else { counters.connectFailures += 1 }
        teardown(failing: error, next: .backingOff)
    }

    func teardown(failing error: RedisError, next: State) {
        generation &+= 1
        if fd >= 0 {
            loop.deregister(fd)
            Syscall.close(fd)
            fd = -1
        }
        let failed = pending[pendingHead...]
        pending.removeAll(keepingCapacity: true)
        pendingHead = 0
        output.removeAll(keepingCapacity: true)
        outputOffset = 0
        inputStart = 0
        inputEnd = 0
        setupRemaining = 0
        flushScheduled = false
        state = next
        if case .backingOff = next { scheduleReconnect(after: error) }
        counters.failedCommands += UInt64(failed.count)
        for entry in failed { RedisClient.complete(entry.purpose, .failure(error)) }
    }

    private func scheduleReconnect(after error: RedisError) {
        state = .backingOff
        lastError = error
        setHealth(.down)
        // Half fixed, half random, so a fleet that lost Redis together does not reconnect in lockstep.
        let random = Syscall.randomBytes(2).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        let delay = backoffMillis / 2 + random % (backoffMillis / 2 + 1)
        backoffMillis = min(backoffMillis * 2, max(configuration.maxBackoffMillis, 1))
        let gen = generation
        loop.schedule(afterNanos: delay * 1_000_000) { [self] in
            guard gen == generation, case .backingOff = state else { return }
            connect()
        }
    }
}
