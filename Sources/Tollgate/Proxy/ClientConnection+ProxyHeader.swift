import TollgateIO

/// The PROXY protocol header a load balancer sends before anything else (before the TLS handshake too). Only the
/// header's own bytes are taken from the socket — peeked first, then consumed exactly — so a TLS ClientHello that
/// follows in the same segment stays for OpenSSL. A missing or malformed header closes the connection.
///
/// Only peers inside `proxy-protocol-from` (the load balancers) may speak for a client: a connection from anywhere
/// else is closed before a byte of it is read, counted in `tollgate_proxy_protocol_refused_total` and logged once
/// per peer address (see `ProxyProtocolRefusals`). It could not be served anyway: such a listener expects the
/// header from every connection, and believing one from any peer lets anyone choose the address that the rate
/// limit, the login throttle and the log see (nginx believes the header's address only from `set_real_ip_from`).
extension ClientConnection {
    func readProxyHeader() {
        if proxyHeader.isEmpty, !worker.config.proxyProtocolFrom.contains(where: { $0.contains(peerHost) }) {
            worker.count { $0.proxyProtocolRefused += 1 }
            if ProxyProtocolRefusals.shared.firstTime(peerHost) {
                Diagnostics.warn("closed a connection from \(peerString): not in proxy-protocol-from, so its PROXY "
                    + "protocol header is not believed (logged once per address)")
            }
            close(.rejected)
            return
        }
        var peekBuffer = [UInt8](repeating: 0, count: 512)
        let available: Int
        switch Syscall.peek(transport.fd, into: &peekBuffer, count: peekBuffer.count) {
        case .bytes(let n): available = n
        case .wouldBlock: return
        case .eof, .failed:
            close(.clientClosed)
            return
        }
        // Take only bytes that certainly belong to the header.
        var take = available
        let have = proxyHeader.count
        if have + available >= 1, (proxyHeader.first ?? peekBuffer[0]) == UInt8(ascii: "P") {
            // v1: text up to and including the first LF.
            if let lf = peekBuffer[0..<available].firstIndex(of: 0x0A) { take = lf + 1 }
        } else if have + available >= 16 {
            // v2: 16 fixed bytes, then the length they announce.
            var head = proxyHeader + peekBuffer[0..<available]
            if head.count > 16 { head.removeLast(head.count - 16) }
            let total = 16 + (Int(head[14]) << 8 | Int(head[15]))
            take = min(available, max(0, total - have))
        }
        var chunk = [UInt8](repeating: 0, count: take)
        guard case .bytes(let n) = Syscall.read(transport.fd, into: &chunk, at: 0, count: take) else {
            close(.clientError)
            return
        }
        proxyHeader += chunk[0..<n]
        switch ProxyProtocol.parse(proxyHeader, from: 0, to: proxyHeader.count) {
        case .needMore:
            if proxyHeader.count > ProxyProtocol.maxV2Length { close(.badRequest) }
        case .invalid:
            close(.badRequest)
        case .complete(let source, _):
            // Over the per-client cap by the address the header names: closed now, before a handshake or a
            // request that came in the same segment is served.
            if let source, !adoptClientAddress(source) {
                close(.connectionLimit)
                return
            }
            proxyHeader = []
            life.proxyHeaderRead()
            if kind == .tls { continueHandshake() } else { readAvailable() }
        }
    }
}
