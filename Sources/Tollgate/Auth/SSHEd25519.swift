import TollgateIO

/// The OpenSSH form of an Ed25519 public key, as the `ollama` CLI sends it and `authorized-keys` lists it: the wire
/// blob (RFC 8709 §4: the string `ssh-ed25519`, then the 32-byte key, each with a 4-byte big-endian length) and its
/// standard base64, the second field of an `ssh-ed25519 AAAA…` line.
enum SSHEd25519 {
    /// The key type's name in a blob and in a key line.
    static let typeName = "ssh-ed25519"
    private static let typeBytes = Array(typeName.utf8)

    /// The 32 raw key bytes of a well-formed `ssh-ed25519` wire blob (nothing before, between or after), else nil.
    static func rawKey<C: Collection<UInt8>>(blob: C) -> [UInt8]? where C.Index == Int {
        let b = Array(blob)
        guard b.count == 4 + typeBytes.count + 4 + 32 else { return nil }
        guard length(b, 0) == typeBytes.count, b[4..<(4 + typeBytes.count)].elementsEqual(typeBytes) else { return nil }
        let at = 4 + typeBytes.count
        guard length(b, at) == 32 else { return nil }
        return Array(b[(at + 4)...])
    }

    /// The wire blob of a raw 32-byte key.
    static func blob(raw: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        func put(_ bytes: [UInt8]) {
            let n = UInt32(bytes.count)
            out += [UInt8(n >> 24), UInt8(n >> 16 & 0xFF), UInt8(n >> 8 & 0xFF), UInt8(n & 0xFF)]
            out += bytes
        }
        put(typeBytes)
        put(raw)
        return out
    }

    /// The key's fingerprint as `ssh-keygen -l` prints it: `SHA256:` and the unpadded base64 of the blob's SHA-256.
    static func fingerprint(blob: [UInt8]) -> String {
        var text = Base64.encode(Digest.sha256(blob))
        while text.hasSuffix("=") { text.removeLast() }
        return "SHA256:" + text
    }

    private static func length(_ b: [UInt8], _ at: Int) -> Int {
        Int(b[at]) << 24 | Int(b[at + 1]) << 16 | Int(b[at + 2]) << 8 | Int(b[at + 3])
    }
}
