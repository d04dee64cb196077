import Glibc

/// Listener management and what connection threads call on their server. Methods named `...Locked` expect `lock`
/// held; the others take it themselves.
extension FakeOllamaServer {
    /// Starts the accept thread for the current listener.
    func startAcceptLoopLocked() {
        let fd = listenFD
        guard fd >= 0 else { return }
        acceptThread = startThread { [self] in acceptLoop(fd) }
    }

    private func acceptLoop(_ listener: Int32) {
        while let fd = Sock.accept(listener) {
            guard let id = register(fd: fd) else {
                Sock.close(fd)
                continue
            }
            let started = startDetachedThread { [self] in
                Connection(server: self, id: id, fd: fd).run()
            }
            if !started {
                unregister(id: id)
                Sock.close(fd)
            }
        }
    }

    /// Applies a new fault; `.refuse` closes the listener and leaving it listens again on the same port.
    func setFault(_ newValue: Fault) {
        enum Change { case none, stopListening(pthread_t?, Int32), listenAgain }
        let change: Change = lock.withLock {
            let old = currentFault
            currentFault = newValue
            wakeAllLocked()
            if newValue == .refuse && old != .refuse && listenFD >= 0 {
                let fd = listenFD
                listenFD = -1
                Sock.shutdownBoth(fd)
                let t = acceptThread
                acceptThread = nil
                return .stopListening(t, fd)
            }
            if old == .refuse && newValue != .refuse && !stopping { return .listenAgain }
            return .none
        }
        switch change {
        case .none:
            break
        case .stopListening(let thread, let fd):
            if let thread { pthread_join(thread, nil) }
            Sock.close(fd)
        case .listenAgain:
            guard let (fd, _) = try? Sock.listen(host: config.host, port: boundPort) else { return }
            lock.withLock {
                if stopping || currentFault == .refuse || listenFD >= 0 {
                    Sock.close(fd)
                    return
                }
                listenFD = fd
                if started { startAcceptLoopLocked() }
            }
        }
    }

    /// Registers a freshly accepted socket; nil if the server is stopping (the caller closes the fd).
    func register(fd: Int32) -> Int? {
        lock.withLock {
            if stopping { return nil }
            nextConnectionID += 1
            connections[nextConnectionID] = ConnectionEntry(fd: fd)
            lock.broadcast()
            return nextConnectionID
        }
    }

    /// Forgets a connection; its thread closes the fds afterwards, so `stop()` never touches a reused number.
    func unregister(id: Int) {
        lock.withLock {
            connections[id] = nil
            lock.broadcast()
        }
    }

    /// Records an arrived request (built only when recording is on), wakes waiters, and returns the fault that
    /// applies to it.
    ///
    /// Counting the request and reading the fault happen under one lock hold: a test that waits for the request
    /// and then changes the fault (`.hang`, then `.refuse`) must not change what this request does.
    func record(_ make: () -> RecordedRequest) -> Fault {
        let request = config.recordRequests ? make() : nil
        return lock.withLock {
            if let request { recorded.append(request) }
            requestCount += 1
            lock.broadcast()
            return currentFault
        }
    }

    /// Counts one abandoned stream unless the server itself is stopping (then the server did the abandoning).
    func countCancellation() {
        lock.withLock {
            if stopping { return }
            cancelCount += 1
            lock.broadcast()
        }
    }

    /// Whether the server is shutting down.
    var isStopping: Bool { lock.withLock { stopping } }

    /// Answer to "may this stream send its next line?" in step mode.
    enum LineGrant { case granted, notStepMode, stopping, wait }

    /// Takes one step-mode grant if one is free; otherwise registers `wakeFD` so `allowLines` can wake the caller.
    func takeLineGrant(connectionID: Int, wakeFD: Int32) -> LineGrant {
        lock.withLock {
            if stopping { return .stopping }
            if !stepModeOn { return .notStepMode }
            if consumed < granted {
                consumed += 1
                return .granted
            }
            connections[connectionID]?.wakeFD = wakeFD
            return .wait
        }
    }

    /// Wakes every connection thread waiting in step mode.
    func wakeAllLocked() {
        for entry in connections.values where entry.wakeFD >= 0 {
            Wake.signal(entry.wakeFD)
        }
    }
}

/// A non-blocking pipe used to wake a connection thread blocked in poll() (eventfd is not importable from Glibc).
enum Wake {
    /// Returns (read end, write end), or (-1, -1).
    static func make() -> (Int32, Int32) {
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { return (-1, -1) }
        for fd in fds {
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        }
        return (fds[0], fds[1])
    }

    /// Makes the pipe readable (a full pipe is already readable, so a failed write is fine).
    static func signal(_ writeFD: Int32) {
        var one: UInt8 = 1
        _ = write(writeFD, &one, 1)
    }

    /// Empties the pipe.
    static func drain(_ readFD: Int32) {
        var scratch = [UInt8](repeating: 0, count: 64)
        while read(readFD, &scratch, scratch.count) > 0 {}
    }
}

/// poll(2) flags Glibc does not export without _GNU_SOURCE.
enum PollFlags {
    /// Peer closed its writing half (Linux value, see poll(2)).
    static let rdHup = Int16(0x2000)
}
