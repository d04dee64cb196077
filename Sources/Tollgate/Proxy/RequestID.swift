/// A request's id: 64 random bits, written as 16 lowercase hex digits in `X-Request-Id` (to the upstream and the
/// client), the access log and the ledger. Held as the number and written where it goes: no buffer of its own per
/// request.
public struct RequestID: Sendable, Equatable {
    /// The 64 bits.
    public let value: UInt64

    public init(_ value: UInt64) {
        self.value = value
    }

    /// Appends the 16 hex digits to `out`.
    public func append(to out: inout [UInt8]) {
        var shift: UInt64 = 64
        while shift > 0 {
            shift &-= 4
            let nibble = UInt8(truncatingIfNeeded: (value >> shift) & 0xF)
            out.append(nibble < 10 ? 0x30 &+ nibble : 0x57 &+ nibble)
        }
    }

    /// The 16 hex digits.
    public var bytes: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(16)
        append(to: &out)
        return out
    }

    /// The 16 hex digits as text.
    public var text: String { String(decoding: bytes, as: UTF8.self) }
}
