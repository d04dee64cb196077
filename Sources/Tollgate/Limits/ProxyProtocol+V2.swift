import TollgateIO

extension ProxyProtocol {
    /// The binary header: 12-byte signature, version/command, family/transport, 16-bit length, then the address
    /// block and TLVs (skipped). `LOCAL` and families other than INET/INET6 complete with no source.
    static func parseV2(_ b: ArraySlice<UInt8>) -> Result {
        guard b.count >= 16 else { return .needMore }
        let s = b.startIndex
        let versionCommand = b[s + 12]
        guard versionCommand >> 4 == 2 else { return .invalid("v2 bad version") }
        let command = versionCommand & 0x0F
        guard command <= 1 else { return .invalid("v2 bad command") }
        let family = b[s + 13] >> 4
        let transport = b[s + 13] & 0x0F
        guard family <= 3, transport <= 2 else { return .invalid("v2 bad family") }
        let length = Int(b[s + 14]) << 8 | Int(b[s + 15])
        let total = 16 + length
        guard total <= maxV2Length else { return .invalid("v2 header too long") }
        guard b.count >= total else { return .needMore }
        // LOCAL: the balancer's own connection (health checks); the peer is the client.
        if command == 0 { return .complete(source: nil, consumed: total) }
        let a = s + 16
        switch family {
        case 1:
            guard length >= 12 else { return .invalid("v2 address block too short") }
            let v4 = UInt32(b[a]) << 24 | UInt32(b[a + 1]) << 16 | UInt32(b[a + 2]) << 8 | UInt32(b[a + 3])
            let port = UInt16(b[a + 8]) << 8 | UInt16(b[a + 9])
            return .complete(source: SocketAddress(host: AddressBits(v4HostOrder: v4).host, port: port), consumed: total)
        case 2:
            guard length >= 36 else { return .invalid("v2 address block too short") }
            var hi: UInt64 = 0
            var lo: UInt64 = 0
            for k in 0..<8 { hi = hi << 8 | UInt64(b[a + k]) }
            for k in 8..<16 { lo = lo << 8 | UInt64(b[a + k]) }
            let port = UInt16(b[a + 32]) << 8 | UInt16(b[a + 33])
            return .complete(source: SocketAddress(host: AddressBits(hi: hi, lo: lo).host, port: port), consumed: total)
        default:
            // UNSPEC or UNIX: no IP to report; the receiver uses the real peer.
            return .complete(source: nil, consumed: total)
        }
    }
}
