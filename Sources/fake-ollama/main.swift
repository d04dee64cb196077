// fake-ollama: a faithful Ollama stand-in for Tollgate's tests, benchmarks and demos.
// Argument parsing and wiring only; the server lives in the FakeOllama library.
import FakeOllama
import Glibc
import TollgateIO

let usage = """
    usage: fake-ollama [--listen HOST:PORT] [--tokens N] [--interval-ms M] [--model NAME]... [--loaded NAME]...
                       [--name NAME]
      --listen HOST:PORT   address to listen on (default 127.0.0.1:11434; [::1]:PORT for IPv6; port 0 picks one)
      --tokens N           tokens per generation unless the request sets num_predict/max_tokens (default 10)
      --interval-ms M      pause between streamed lines in milliseconds (default 0)
      --model NAME         a model the server has; repeatable (default mistral:7b)
      --loaded NAME        a model /api/ps reports loaded; repeatable (default: the first model)
      --name NAME          every response carries X-Backend: NAME
      --real-timestamps    stamp streamed lines with the real time (as Ollama does) instead of a fixed one
    """

/// Writes straight to a file descriptor: unbuffered, and no access to C's global `stdout`/`stderr` (not
/// concurrency-safe in Swift 6).
func emit(_ fd: Int32, _ text: String) {
    _ = Syscall.writeAll(fd, Array(text.utf8))
}

func fail(_ message: String) -> Never {
    emit(2, "fake-ollama: \(message)\n\(usage)\n")
    exit(2)
}

/// Splits "HOST:PORT", "[V6]:PORT" or ":PORT".
func parseListen(_ text: String) -> (String, UInt16)? {
    guard let colon = text.lastIndex(of: ":"), let port = UInt16(text[text.index(after: colon)...]) else { return nil }
    var host = String(text[..<colon])
    if host.hasPrefix("[") {
        guard host.hasSuffix("]"), host.count > 2 else { return nil }
        host = String(host.dropFirst().dropLast())
    } else if host.contains(":") {
        return nil
    }
    return (host.isEmpty ? "127.0.0.1" : host, port)
}

var config = FakeOllamaConfig(recordRequests: false)
var models: [String] = []
var args = CommandLine.arguments.dropFirst()
while let arg = args.popFirst() {
    var name = arg
    var inline: String?
    if arg.hasPrefix("--"), let eq = arg.firstIndex(of: "=") {
        name = String(arg[..<eq])
        inline = String(arg[arg.index(after: eq)...])
    }
    if name == "--help" || name == "-h" {
        emit(1, usage + "\n")
        exit(0)
    }
    if name == "--real-timestamps" {
        config.realTimestamps = true
        continue
    }
    guard ["--listen", "--tokens", "--interval-ms", "--model", "--loaded", "--name"].contains(name) else { fail("unknown argument \"\(arg)\"") }
    guard let value = inline ?? args.popFirst() else { fail("\(name) needs a value") }
    switch name {
    case "--listen":
        guard let (host, port) = parseListen(value) else { fail("--listen wants HOST:PORT, got \"\(value)\"") }
        config.host = host
        config.port = port
    case "--tokens":
        guard let n = Int(value), n >= 0 else { fail("--tokens wants a non-negative integer, got \"\(value)\"") }
        config.tokens = n
    case "--interval-ms":
        guard let n = Int(value), n >= 0 else { fail("--interval-ms wants a non-negative integer, got \"\(value)\"") }
        config.intervalMs = n
    case "--loaded":
        guard !value.isEmpty else { fail("--loaded needs a name") }
        config.loaded.append(value)
    case "--name":
        guard !value.isEmpty else { fail("--name needs a value") }
        config.name = value
    default:
        guard !value.isEmpty else { fail("--model needs a name") }
        models.append(value)
    }
}

if let first = models.first {
    config.model = first
    config.extraModels = Array(models.dropFirst())
}

// Block SIGINT/SIGTERM before any thread starts (threads inherit the mask), then wait for them with sigwait.
var signals = sigset_t()
sigemptyset(&signals)
sigaddset(&signals, SIGINT)
sigaddset(&signals, SIGTERM)
pthread_sigmask(SIG_BLOCK, &signals, nil)
signal(SIGPIPE, SIG_IGN)

let server: FakeOllamaServer
do {
    server = try FakeOllamaServer(config: config)
} catch {
    emit(2, "fake-ollama: \(error)\n")
    exit(2)
}
server.start()
let shownHost = config.host.contains(":") ? "[\(config.host)]" : config.host
emit(1, "fake-ollama listening on http://\(shownHost):\(server.port)\n")

var received: Int32 = 0
sigwait(&signals, &received)
server.stop()
exit(0)
