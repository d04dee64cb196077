/// A Lua script and its SHA-1, for `EVALSHA` with an `EVAL` fallback (`RedisClient.evalScript`).
public struct RedisScript: Sendable, Hashable {
    /// The Lua source.
    public let source: String
    /// Lower-case hex SHA-1 of the source, as `SCRIPT LOAD` returns it.
    public let sha1: String

    /// A script; its SHA-1 is computed here.
    public init(_ source: String) {
        self.source = source
        let digest = Digest.sha1(Array(source.utf8))
        let hex: [UInt8] = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(40)
        for b in digest {
            out.append(hex[Int(b >> 4)])
            out.append(hex[Int(b & 15)])
        }
        sha1 = String(decoding: out, as: UTF8.self)
    }
}
