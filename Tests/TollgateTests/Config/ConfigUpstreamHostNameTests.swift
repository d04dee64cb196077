import Glibc
import Testing
import TollgateIO
@testable import Tollgate

/// `upstream` takes host names as nginx's proxy_pass and Caddy's reverse_proxy do: looked up (getaddrinfo, IPv4 or
/// IPv6) each time the config is built, that is at start and by check-config, and on a reload only when the name
/// changed; the Host header keeps the name; a name that does not resolve is an error at its file and line.
@Suite struct ConfigUpstreamHostNameTests {
    private func build(_ file: String, resolve: @escaping HostResolver = SocketAddress.resolve)
        throws(ConfigError) -> ServerConfig {
        let parsed = try ConfigFile.parse(text: "listen-plain = 127.0.0.1:0\n" + file, path: "t.conf")
        let resolved = try ConfigResolver.resolve(flags: [:], environment: [:], file: parsed)
        return try ServerConfig(resolved: resolved, cores: 1, resolve: resolve)
    }

    private func problems(_ file: String, resolve: @escaping HostResolver = SocketAddress.resolve) -> [String] {
        do {
            _ = try build(file, resolve: resolve)
            return []
        } catch {
            return error.problems.map(\.description)
        }
    }

    /// A resolver that knows a few names: one IPv4, one IPv6.
    private static func known(_ host: String, _ port: UInt16) throws(SocketError) -> SocketAddress {
        switch host {
        case "ollama.internal": return SocketAddress(parsing: "10.0.0.7:\(port)")!
        case "gpu6.internal": return SocketAddress(parsing: "[fd00::6]:\(port)")!
        default: throw SocketError("Name or service not known")
        }
    }

    @Test func hostNamesResolveToIPv4OrIPv6AndKeepTheirNameAsHost() throws {
        let c = try build("upstream = http://ollama.internal:11434\nupstream = http://gpu6.internal:11435 max=2\n",
                          resolve: Self.known)
        #expect(c.upstreams.map(\.address.address.description) == ["10.0.0.7:11434", "[fd00::6]:11435"])
        #expect(c.upstreams.map(\.address.hostHeader) == ["ollama.internal:11434", "gpu6.internal:11435"])
        #expect(c.upstreams.map(\.maxInFlight) == [nil, 2])
        // No port: 80, as for a numeric host.
        #expect(try build("upstream = http://ollama.internal\n", resolve: Self.known).upstream.address.port == 80)
    }

    @Test func aReloadKeepsTheRunningAddressOfAnUnchangedNameWithoutLookingItUp() throws {
        let running = try build("upstream = http://ollama.internal:11434\nupstream = http://10.0.0.9:11434\n",
                                resolve: Self.known)
        let down: HostResolver = { host, _ throws(SocketError) in throw SocketError("DNS is down for \(host)") }
        let resolve = ServerConfig.reloadResolver(running: running, resolve: down)
        // The same text (a trailing slash changes nothing): no lookup, the running address, nothing to restart.
        let same = try build("upstream = http://ollama.internal:11434/\nupstream = http://10.0.0.9:11434\n",
                             resolve: resolve)
        #expect(same.upstreams == running.upstreams)
        #expect(running.reloaded(to: same).needRestart.isEmpty)
        // A changed name or port is looked up, and fails here.
        #expect(problems("upstream = http://gpu6.internal:11434\n", resolve: resolve)
                == [#"t.conf:2: key "upstream": host "gpu6.internal" does not resolve: DNS is down for gpu6.internal"#])
        #expect(problems("upstream = http://ollama.internal:11435\n", resolve: resolve).count == 1)
    }

    @Test func aNameThatDoesNotResolveIsAnErrorAtItsFileAndLine() {
        #expect(problems("upstream = http://127.0.0.1:1\nupstream = http://elsewhere.internal:11434\n",
                         resolve: Self.known)
                == [#"t.conf:3: key "upstream": host "elsewhere.internal" does not resolve: Name or service not known"#])
        // Through the system's resolver: .invalid never resolves (RFC 6761).
        let real = problems("upstream = http://name.invalid:11434\n")
        #expect(real.count == 1 && real[0].hasPrefix(#"t.conf:2: key "upstream": host "name.invalid" does not resolve: "#),
                "\(real)")
    }

    @Test func theSystemResolverTakesLocalhostAndThisMachinesName() throws {
        #expect(try build("upstream = http://localhost:11434\n").upstream.address.description == "127.0.0.1:11434")
        var buffer = [CChar](repeating: 0, count: 256)
        #expect(gethostname(&buffer, buffer.count) == 0)
        let name = String(cString: buffer)
        // The machine's own name resolves wherever getaddrinfo does (nss "myhostname", or /etc/hosts).
        guard (try? SocketAddress.resolve(host: name, port: 1)) != nil else { return }
        let c = try build("upstream = http://\(name):11434\n")
        #expect(c.upstream.hostHeader == "\(name):11434")
    }

    @Test func shapesThatAreNotHostNamesAreRefused() {
        for bad in ["http://ollama_internal:1", "http://-x:1", "http://x:port", "http://[ollama.internal]:1",
                    "https://ollama.internal:1"] {
            #expect(problems("upstream = \"\(bad)\"\n", resolve: Self.known)
                    == [#"t.conf:2: key "upstream": \#(bad.debugDescription) is not http://HOST:PORT"#], "\(bad)")
        }
    }

    @Test func everyBuildLooksTheNameUpAgain() throws {
        // What a reload does: a new config, a new lookup.
        let answers = Locked(["10.0.0.1", "10.0.0.2"])
        let moving: HostResolver = { _, port throws(SocketError) in
            SocketAddress(parsing: "\(answers.next()):\(port)")!
        }
        #expect(try build("upstream = http://ollama.internal:11434\n", resolve: moving).upstream.address.hostString == "10.0.0.1")
        #expect(try build("upstream = http://ollama.internal:11434\n", resolve: moving).upstream.address.hostString == "10.0.0.2")
    }
}

/// Answers handed out in order, from any thread.
private final class Locked: @unchecked Sendable {
    private var items: [String]
    private var lock = pthread_mutex_t()
    init(_ items: [String]) {
        self.items = items
        pthread_mutex_init(&lock, nil)
    }
    func next() -> String {
        pthread_mutex_lock(&lock)
        defer { pthread_mutex_unlock(&lock) }
        return items.removeFirst()
    }
}
