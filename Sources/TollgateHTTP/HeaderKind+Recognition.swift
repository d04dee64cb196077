extension HeaderKind {
    /// Classifies the header name `buffer[name]`, ignoring ASCII case.
    ///
    /// Dispatches on the length, then compares the name eight bytes at a time, lowercased in the word, with the
    /// names' words written out below (byte k of a name in bits 8k to 8k+7 of its word k / 8, zero past its end):
    /// a name costs a few word loads and compares, not a loop per byte.
    public static func recognize(_ buffer: [UInt8], _ name: Range<Int>) -> HeaderKind {
        recognize(buffer.span, name)
    }

    /// `recognize` on the bytes of a buffer already in hand.
    static func recognize(_ bytes: borrowing Span<UInt8>, _ name: Range<Int>) -> HeaderKind {
        let raw = bytes.bytes
        let n = name.count
        let w0 = word(raw, name, 0)
        let w1 = n > 8 ? word(raw, name, 8) : 0
        let w2 = n > 16 ? word(raw, name, 16) : 0
        switch n {
        case 2:
            if w0 == 0x6574 { return .te } // te
        case 4:
            if w0 == 0x7473_6f68 { return .host } // host
        case 6:
            if w0 == 0x7463_6570_7865 { return .expect } // expect
            if w0 == 0x6e69_6769_726f { return .origin } // origin
            if w0 == 0x6569_6b6f_6f63 { return .cookie } // cookie
        case 7:
            if w0 == 0x0072_656c_6961_7274 { return .trailer } // trailer
            if w0 == 0x0065_6461_7267_7075 { return .upgrade } // upgrade
            if w0 == 0x0072_6572_6566_6572 { return .referer } // referer
        case 9:
            if w0 == 0x656b_2d69_7061_2d78 && w1 == 0x0079 { return .xApiKey } // x-api-key
            if w0 == 0x6564_7261_7772_6f66 && w1 == 0x0064 { return .forwarding } // forwarded
            if w0 == 0x692d_6c61_6572_2d78 && w1 == 0x0070 { return .forwarding } // x-real-ip
        case 10:
            if w0 == 0x6974_6365_6e6e_6f63 && w1 == 0x6e6f { return .connection } // connection
            if w0 == 0x696c_612d_7065_656b && w1 == 0x6576 { return .keepAlive } // keep-alive
        case 12:
            if w0 == 0x2d74_6e65_746e_6f63 && w1 == 0x6570_7974 { return .contentType } // content-type
            if w0 == 0x7365_7571_6572_2d78 && w1 == 0x6469_2d74 { return .xRequestId } // x-request-id
        case 13:
            if w0 == 0x7a69_726f_6874_7561 && w1 == 0x006e_6f69_7461 { return .authorization } // authorization
        case 14:
            if w0 == 0x2d74_6e65_746e_6f63 && w1 == 0x6874_676e_656c { return .contentLength } // content-length
        case 15:
            if w0 == 0x7261_7772_6f66_2d78 && w1 == 0x0072_6f66_2d64_6564 { return .xForwardedFor } // x-forwarded-for
        case 16:
            if w0 == 0x6f63_2d79_786f_7270 && w1 == 0x6e6f_6974_6365_6e6e { return .proxyConnection } // proxy-connection
            if w0 == 0x2d74_6e65_746e_6f63 && w1 == 0x676e_6964_6f63_6e65 { return .contentEncoding } // content-encoding
        case 17:
            if w0 == 0x7265_6673_6e61_7274 && w1 == 0x6e69_646f_636e_652d && w2 == 0x0067 {
                return .transferEncoding // transfer-encoding
            }
            if w0 == 0x7261_7772_6f66_2d78 && w1 == 0x746f_7270_2d64_6564 && w2 == 0x006f {
                return .xForwardedProto // x-forwarded-proto
            }
        case 19:
            if w0 == 0x7561_2d79_786f_7270 && w1 == 0x7461_7a69_726f_6874 && w2 == 0x006e_6f69 {
                return .proxyAuthorization // proxy-authorization
            }
        default:
            break
        }
        if n >= 6 && w0 & 0xffff_ffff_ffff == 0x2d79_786f_7270 { return .proxyOther } // proxy-
        if n >= 12 && w0 == 0x7261_7772_6f66_2d78 && w1 & 0xffff_ffff == 0x2d64_6564 { return .forwarding } // x-forwarded-
        return .other
    }

    /// Bytes `offset ..< min(offset + 8, name.count)` of the name, ASCII-lowercased, byte k in bits 8k to 8k+7,
    /// zero above. One bounds-checked load of eight bytes (its `unsafe` is about the type loaded: any bits are a
    /// valid UInt64) where the buffer holds eight from there, as it does for every name but one at its very end.
    @inline(__always)
    static func word(_ raw: borrowing RawSpan, _ name: Range<Int>, _ offset: Int) -> UInt64 {
        let start = name.lowerBound &+ offset
        let count = min(8, name.count &- offset)
        var w: UInt64 = 0
        if start &+ 8 <= raw.byteCount {
            w = UInt64(littleEndian: raw.unsafeLoadUnaligned(fromByteOffset: start, as: UInt64.self))
            if count < 8 { w &= (1 &<< UInt64(count &* 8)) &- 1 }
        } else {
            var k = 0
            while k < count {
                w |= UInt64(raw.unsafeLoad(fromByteOffset: start &+ k, as: UInt8.self)) &<< UInt64(k &* 8)
                k &+= 1
            }
        }
        return lowercased(w)
    }

    /// Each byte of `w` that is an ASCII capital letter (0x41-0x5A) made lowercase, every other byte unchanged.
    @inline(__always)
    static func lowercased(_ w: UInt64) -> UInt64 {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let low7 = w & (ones &* 0x7F)
        // Per byte, with no carry between bytes (at most 0x7F + 0x3F): the high bit says "at least 0x41", then
        // "at least 0x5B"; a byte with its own high bit set is not ASCII.
        let atLeastA = low7 &+ ones &* 0x3F
        let pastZ = low7 &+ ones &* 0x25
        let capitals = atLeastA & ~pastZ & ~w & (ones &* 0x80)
        return w | (capitals &>> 2)
    }
}
