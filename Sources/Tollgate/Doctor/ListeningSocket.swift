import TollgateIO

/// A TCP socket in the LISTEN state as the kernel lists it in `/proc/net/tcp` and `/proc/net/tcp6`: its local
/// address and the inode that `/proc/PID/fd/N -> socket:[INODE]` names, to find which process holds it.
public struct ListeningSocket: Sendable, Equatable {
    /// The local address and port.
    public var address: SocketAddress
    /// The socket's inode.
    public var inode: UInt64

    /// A listening socket.
    public init(address: SocketAddress, inode: UInt64) {
        self.address = address
        self.inode = inode
    }

    /// The LISTEN (state 0A) sockets in the text of `/proc/net/tcp` or `/proc/net/tcp6`; lines it cannot read are
    /// skipped. Addresses there are hex words in the host's byte order (little-endian on the machines Tollgate
    /// runs on), the port big-endian hex: `0100007F:2CAA` is 127.0.0.1:11434.
    public static func parse(_ text: [UInt8]) -> [ListeningSocket] {
        var sockets: [ListeningSocket] = []
        for line in text.split(separator: 0x0A).dropFirst() {
            let fields = line.split(separator: 0x20)
            guard fields.count >= 10, String(decoding: fields[3], as: UTF8.self) == "0A",
                  let inode = UInt64(String(decoding: fields[9], as: UTF8.self)) else { continue }
            let local = String(decoding: fields[1], as: UTF8.self).split(separator: ":")
            guard local.count == 2, let port = UInt16(local[1], radix: 16) else { continue }
            let hex = local[0]
            let host: SocketAddress.Host
            if hex.count == 8, let word = UInt32(hex, radix: 16) {
                // The word as read is the in-memory (network order) value on a little-endian host.
                host = .v4(word)
            } else if hex.count == 32 {
                var bytes: [UInt8] = []
                var ok = true
                var index = hex.startIndex
                for _ in 0..<4 {
                    let end = hex.index(index, offsetBy: 8)
                    guard let word = UInt32(hex[index..<end], radix: 16) else { ok = false; break }
                    bytes += [UInt8(word & 0xFF), UInt8(word >> 8 & 0xFF), UInt8(word >> 16 & 0xFF), UInt8(word >> 24)]
                    index = end
                }
                guard ok else { continue }
                host = .v6(bytes)
            } else {
                continue
            }
            sockets.append(ListeningSocket(address: SocketAddress(host: host, port: port), inode: inode))
        }
        return sockets
    }
}

extension SocketAddress {
    /// True for 127.0.0.0/8, ::1 and ::ffff:127.0.0.0/104: reachable from this host only.
    var isLoopback: Bool {
        switch host {
        case .v4(let word): return word & 0xFF == 127
        case .v6(let b):
            if b == [UInt8](repeating: 0, count: 15) + [1] { return true }
            return b[0..<10].allSatisfy { $0 == 0 } && b[10] == 0xFF && b[11] == 0xFF && b[12] == 127
        }
    }

    /// True for 0.0.0.0 and ::, every address of the host.
    var isWildcard: Bool {
        switch host {
        case .v4(let word): return word == 0
        case .v6(let b): return b.allSatisfy { $0 == 0 }
        }
    }

    /// Whether a socket bound here and one bound at `other` would claim the same port: the same port, and the
    /// same address or either one every address.
    func overlaps(_ other: SocketAddress) -> Bool {
        port == other.port && (host == other.host || isWildcard || other.isWildcard)
    }
}
