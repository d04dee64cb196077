import Synchronization

/// Counters one worker keeps; updated once per finished request under an uncontended lock, summed at scrape time.
struct MetricCounters: Sendable {
    /// requests[family][status class 1xx...5xx]
    var requests = [[Int]](repeating: [Int](repeating: 0, count: 5), count: 3)
    /// Indexed by `AuthResult.rawValue`.
    var auth = [Int](repeating: 0, count: AuthResult.allCases.count)
    /// Indexed by `OllamaKeyResult.rawValue`.
    var ollamaKey = [Int](repeating: 0, count: OllamaKeyResult.allCases.count)
    var rateLimited = 0
    var queueRejected = 0
    /// Indexed by `UpstreamFailure.rawValue`.
    var upstreamErrors = [Int](repeating: 0, count: UpstreamFailure.allCases.count)
    /// Time to first byte: per `Metrics.buckets`, how many fell in each bucket and no lower one (made cumulative when
    /// rendered, so a request adds one count, not one per bucket), plus sum and count.
    var ttfb = [Int](repeating: 0, count: Metrics.buckets.count)
    var ttfbSum = 0.0
    var ttfbCount = 0
    var upstreamSeconds = [Int](repeating: 0, count: Metrics.buckets.count)
    var upstreamSum = 0.0
    var upstreamCount = 0
    /// "user\u{0}model" → (prompt, completion)
    var tokens: [String: (Int, Int)] = [:]
    var handshakes = 0
    /// Of `handshakes`, those that resumed a session (from the session cache) instead of a full handshake.
    var handshakesResumed = 0
    var handshakeFailures = 0
    var openConnections = 0
    /// Connections closed unread on a PROXY protocol listener: the peer is not in `proxy-protocol-from`.
    var proxyProtocolRefused = 0
    /// Connections closed at accept: [over max-connections, over max-connections-per-client].
    var connectionsRefused = [0, 0]
    /// Times a client's unread answers reached the output bound and its pipelined requests had to wait.
    var outputHolds = 0
    /// The most bytes seen queued for one client while its socket was full (the output bound plus one answer).
    var outputQueuedPeak = 0
    /// The most bytes held in one client's output buffer while its socket was full: queued bytes plus the part
    /// already written and not yet compacted away (at most one read buffer's worth).
    var outputBufferPeak = 0
    /// Request-body bytes held now while bodies are read whole (`BodyBudget.held`).
    var bodyBuffered = 0

    mutating func add(_ other: MetricCounters) {
        for f in 0..<3 { for c in 0..<5 { requests[f][c] += other.requests[f][c] } }
        for i in 0..<auth.count { auth[i] += other.auth[i] }
        for i in 0..<ollamaKey.count { ollamaKey[i] += other.ollamaKey[i] }
        rateLimited += other.rateLimited
        queueRejected += other.queueRejected
        for i in 0..<upstreamErrors.count { upstreamErrors[i] += other.upstreamErrors[i] }
        for i in 0..<ttfb.count { ttfb[i] += other.ttfb[i]; upstreamSeconds[i] += other.upstreamSeconds[i] }
        ttfbSum += other.ttfbSum
        ttfbCount += other.ttfbCount
        upstreamSum += other.upstreamSum
        upstreamCount += other.upstreamCount
        for (k, v) in other.tokens {
            let old = tokens[k] ?? (0, 0)
            tokens[k] = (old.0 + v.0, old.1 + v.1)
        }
        handshakes += other.handshakes
        handshakesResumed += other.handshakesResumed
        handshakeFailures += other.handshakeFailures
        openConnections += other.openConnections
        proxyProtocolRefused += other.proxyProtocolRefused
        for i in 0..<2 { connectionsRefused[i] += other.connectionsRefused[i] }
        outputHolds += other.outputHolds
        outputQueuedPeak = max(outputQueuedPeak, other.outputQueuedPeak)
        outputBufferPeak = max(outputBufferPeak, other.outputBufferPeak)
        bodyBuffered += other.bodyBuffered
    }
}

/// Prometheus metrics for the whole server: per-worker counters plus process-wide gauges, rendered in the text
/// exposition format on the metrics listener (127.0.0.1:9091 by default, never the public port).
public final class Metrics: Sendable {
    static let buckets: [Double] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300]
    private final class Cell: Sendable {
        let counters = Mutex(MetricCounters())
    }

    private let workers: [Cell]
    private let reloads = Mutex<[String: Int]>([:])
    private let certificateExpiry = Mutex<Int64?>(nil)
    /// Failed ACME issuances and renewals; nil while ACME is off (then the metric is left out).
    private let acmeFailures = Mutex<Int?>(nil)

    init(workers: Int) {
        self.workers = (0..<workers).map { _ in Cell() }
    }

    /// Updates worker `index`'s counters.
    func update(_ index: Int, _ body: (inout MetricCounters) -> Void) {
        workers[index].counters.withLock { body(&$0) }
    }

    /// Client connections open now, over all workers.
    var openConnections: Int {
        workers.reduce(0) { sum, cell in sum + cell.counters.withLock { $0.openConnections } }
    }

    /// Counts a reload of `what` ("users", "certificate", "config") with its result.
    public func reloaded(_ what: String, ok: Bool) {
        reloads.withLock { $0["\(what)\u{0}\(ok ? "ok" : "failed")", default: 0] += 1 }
    }

    public func setCertificateExpiry(_ seconds: Int64?) {
        certificateExpiry.withLock { $0 = seconds }
    }

    /// Shows `tollgate_acme_failures_total` (at 0): ACME is on.
    func acmeEnabled() {
        acmeFailures.withLock { $0 = $0 ?? 0 }
    }

    /// Counts a failed ACME issuance or renewal attempt.
    func acmeFailed() {
        acmeFailures.withLock { $0 = ($0 ?? 0) + 1 }
    }

    /// Failed ACME attempts so far; nil while ACME is off.
    var acmeFailureCount: Int? { acmeFailures.withLock { $0 } }

    /// Every worker's counters summed (what a scrape renders; the status page reads it too).
    func totals() -> MetricCounters {
        var c = MetricCounters()
        for w in workers { let snapshot = w.counters.withLock { $0 }; c.add(snapshot) }
        return c
    }

    /// The serving certificate's notAfter (seconds since the epoch); nil without one.
    var certificateExpirySeconds: Int64? { certificateExpiry.withLock { $0 } }

    /// Counts `seconds` in the lowest bucket it fits (none past the last: only `+Inf`, the count, has it).
    static func bucketCounts(_ counts: inout [Int], _ seconds: Double) {
        var i = 0
        while i < buckets.count && seconds > buckets[i] { i += 1 }
        if i < buckets.count { counts[i] += 1 }
    }

    /// The exposition text. `values` adds series owned elsewhere (in-flight, queued, rate-limit keys, hashes
    /// computed...), each with its own type.
    func render(values: [MetricValue]) -> String {
        var c = MetricCounters()
        for w in workers { let snapshot = w.counters.withLock { $0 }; c.add(snapshot) }
        var s = ""
        func header(_ name: String, _ type: String, _ help: String) { s += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n" }
        header("tollgate_build_info", "gauge", "Always 1; the labels say which Tollgate and OpenSSL are running.")
        s += "tollgate_build_info{version=\"\(BuildInfo.version)\",swift=\"\(BuildInfo.swift)\",openssl=\"\(BuildInfo.openSSL)\"} 1\n"
        header("tollgate_requests_total", "counter", "Requests by API family and status class.")
        let families = ["ollama", "openai", "anthropic"]
        for f in 0..<3 { for k in 0..<5 { s += "tollgate_requests_total{family=\"\(families[f])\",status=\"\(k + 1)xx\"} \(c.requests[f][k])\n" } }
        header("tollgate_auth_total", "counter", "Authentication outcomes.")
        for r in AuthResult.allCases.sorted(by: { $0.text < $1.text }) where c.auth[r.rawValue] > 0 {
            s += "tollgate_auth_total{outcome=\"\(r.text)\"} \(c.auth[r.rawValue])\n"
        }
        if c.ollamaKey.contains(where: { $0 > 0 }) {
            header("tollgate_ollama_key_logins_total", "counter", "Logins with ollama CLI keys (OLLAMA_AUTH) by outcome.")
            for r in OllamaKeyResult.allCases.sorted(by: { $0.text < $1.text }) where c.ollamaKey[r.rawValue] > 0 {
                s += "tollgate_ollama_key_logins_total{outcome=\"\(r.text)\"} \(c.ollamaKey[r.rawValue])\n"
            }
        }
        header("tollgate_rate_limited_total", "counter", "Requests refused by the per-IP or per-user rate limit.")
        s += "tollgate_rate_limited_total \(c.rateLimited)\n"
        header("tollgate_queue_rejected_total", "counter", "Inference requests refused because the wait queue was full or timed out.")
        s += "tollgate_queue_rejected_total \(c.queueRejected)\n"
        header("tollgate_upstream_errors_total", "counter", "Upstream failures by kind.")
        for f in UpstreamFailure.allCases.sorted(by: { $0.text < $1.text }) where c.upstreamErrors[f.rawValue] > 0 {
            s += "tollgate_upstream_errors_total{kind=\"\(f.text)\"} \(c.upstreamErrors[f.rawValue])\n"
        }
        func histogram(_ name: String, _ help: String, _ counts: [Int], _ sum: Double, _ count: Int) {
            header(name, "histogram", help)
            var cumulative = 0
            for (i, b) in Metrics.buckets.enumerated() {
                cumulative += counts[i]
                s += "\(name)_bucket{le=\"\(b)\"} \(cumulative)\n"
            }
            s += "\(name)_bucket{le=\"+Inf\"} \(count)\n\(name)_sum \(sum)\n\(name)_count \(count)\n"
        }
        histogram("tollgate_time_to_first_byte_seconds", "From request head to the upstream's response head.", c.ttfb, c.ttfbSum, c.ttfbCount)
        histogram("tollgate_upstream_seconds", "Upstream time per proxied request.", c.upstreamSeconds, c.upstreamSum, c.upstreamCount)
        header("tollgate_tokens_total", "counter", "Prompt and completion tokens per user and model.")
        for (k, v) in c.tokens.sorted(by: { $0.key < $1.key }) {
            let parts = k.split(separator: "\u{0}", omittingEmptySubsequences: false)
            let labels = "user=\(Metrics.label(String(parts[0]))),model=\(Metrics.label(parts.count > 1 ? String(parts[1]) : ""))"
            s += "tollgate_tokens_total{\(labels),kind=\"prompt\"} \(v.0)\n"
            s += "tollgate_tokens_total{\(labels),kind=\"completion\"} \(v.1)\n"
        }
        header("tollgate_tls_handshakes_total", "counter", "TLS handshakes by result.")
        s += "tollgate_tls_handshakes_total{result=\"ok\"} \(c.handshakes)\ntollgate_tls_handshakes_total{result=\"failed\"} \(c.handshakeFailures)\n"
        header("tollgate_tls_resumed_total", "counter",
               "TLS handshakes that resumed a session from the session cache (counted among result=\"ok\" too).")
        s += "tollgate_tls_resumed_total \(c.handshakesResumed)\n"
        header("tollgate_open_connections", "gauge", "Client connections open now.")
        s += "tollgate_open_connections \(c.openConnections)\n"
        header("tollgate_proxy_protocol_refused_total", "counter",
               "Connections closed unread on a PROXY protocol listener because the peer is not in proxy-protocol-from.")
        s += "tollgate_proxy_protocol_refused_total \(c.proxyProtocolRefused)\n"
        header("tollgate_connections_refused_total", "counter", "Connections closed at accept by a connection cap.")
        s += "tollgate_connections_refused_total{limit=\"max-connections\"} \(c.connectionsRefused[0])\n"
        s += "tollgate_connections_refused_total{limit=\"max-connections-per-client\"} \(c.connectionsRefused[1])\n"
        header("tollgate_client_output_holds_total", "counter",
               "Times a client that did not read its answers was no longer read (its queued output reached the bound).")
        s += "tollgate_client_output_holds_total \(c.outputHolds)\n"
        header("tollgate_client_output_queued_peak_bytes", "gauge",
               "The most bytes queued for one client that was not reading, since start.")
        s += "tollgate_client_output_queued_peak_bytes \(c.outputQueuedPeak)\n"
        header("tollgate_client_output_buffer_peak_bytes", "gauge",
               "The most bytes held in one client's output buffer (queued plus written, not yet reclaimed), since start.")
        s += "tollgate_client_output_buffer_peak_bytes \(c.outputBufferPeak)\n"
        header("tollgate_request_body_buffered_bytes", "gauge",
               "Request-body bytes held in memory now while bodies are read whole (bounded by max-body-buffered).")
        s += "tollgate_request_body_buffered_bytes \(c.bodyBuffered)\n"
        header("tollgate_reloads_total", "counter", "Reloads of the users file, certificate and config by result.")
        for (k, v) in reloads.withLock({ $0 }).sorted(by: { $0.key < $1.key }) {
            let parts = k.split(separator: "\u{0}")
            s += "tollgate_reloads_total{what=\"\(parts[0])\",result=\"\(parts[1])\"} \(v)\n"
        }
        if let expiry = certificateExpiry.withLock({ $0 }) {
            header("tollgate_certificate_expiry_timestamp_seconds", "gauge", "The serving certificate's notAfter, seconds since the epoch.")
            s += "tollgate_certificate_expiry_timestamp_seconds \(expiry)\n"
        }
        if let failures = acmeFailures.withLock({ $0 }) {
            header("tollgate_acme_failures_total", "counter", "Failed attempts to obtain or renew the certificate from the ACME CA.")
            s += "tollgate_acme_failures_total \(failures)\n"
        }
        for value in values { s += value.text }
        return s
    }

    /// A quoted, escaped label value.
    static func label(_ v: String) -> String {
        var out = "\""
        for ch in v {
            switch ch {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            default: out.append(ch)
            }
        }
        return out + "\""
    }
}
