import Glibc

/// Runs a short command (`ufw status`, `timedatectl show`) for `tollgate doctor` and collects what it prints.
/// Blocking: never on an event loop.
public enum ChildProcess {
    /// What a command printed (stdout and stderr together) and how it ended.
    public struct Output: Sendable, Equatable {
        /// The exit status; -1 when a signal ended it (the time limit's SIGKILL included).
        public var status: Int32
        /// Its output, decoded as UTF-8 (invalid bytes replaced), at most `maxOutputBytes`.
        public var text: String

        /// An output, for fakes in tests.
        public init(status: Int32, text: String) {
            self.status = status
            self.text = text
        }
    }

    /// Output past this is dropped (the commands asked are a few lines).
    public static let maxOutputBytes = 1 << 20

    /// Runs `arguments` (the first found on PATH) with stdin from /dev/null and `LC_ALL=C` (untranslated output to
    /// parse); kills it after `timeoutMillis`. Nil when it cannot be started (not installed).
    public static func run(_ arguments: [String], timeoutMillis: Int32 = 5000) -> Output? {
        guard !arguments.isEmpty else { return nil }
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { return nil }
        // Close-on-exec, so that only the dup2'ed copies reach the child (Glibc's Swift overlay has no pipe2).
        _ = fcntl(fds[0], F_SETFD, FD_CLOEXEC)
        _ = fcntl(fds[1], F_SETFD, FD_CLOEXEC)
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
        posix_spawn_file_actions_adddup2(&actions, fds[1], 2)
        var environment = Syscall.environment()
        environment["LC_ALL"] = "C"
        let argv = arguments.map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for p in argv { free(p) }
            for p in envp { free(p) }
        }
        var pid: pid_t = 0
        let rc = posix_spawnp(&pid, arguments[0], &actions, nil, argv, envp)
        Syscall.close(fds[1])
        guard rc == 0 else {
            Syscall.close(fds[0])
            return nil
        }
        let deadline = Syscall.monotonicNanos() + UInt64(timeoutMillis) * 1_000_000
        var output: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16 << 10)
        var killed = false
        reading: while true {
            let now = Syscall.monotonicNanos()
            guard now < deadline else {
                kill(pid, SIGKILL)
                killed = true
                break
            }
            var p = pollfd(fd: fds[0], events: Int16(POLLIN), revents: 0)
            let ready = poll(&p, 1, Int32(min(UInt64(Int32.max), (deadline - now) / 1_000_000 + 1)))
            if ready < 0 && errno == EINTR { continue }
            if ready <= 0 { continue }
            switch Syscall.read(fds[0], into: &chunk, at: 0, count: chunk.count) {
            case .bytes(let n):
                if output.count < maxOutputBytes { output += chunk[0..<min(n, maxOutputBytes - output.count)] }
            case .eof, .failed:
                break reading
            case .wouldBlock:
                continue
            }
        }
        Syscall.close(fds[0])
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        // WIFEXITED / WEXITSTATUS are macros Swift cannot import.
        let exited = status & 0x7F == 0
        return Output(status: exited && !killed ? (status >> 8) & 0xFF : -1, text: String(decoding: output, as: UTF8.self))
    }
}
