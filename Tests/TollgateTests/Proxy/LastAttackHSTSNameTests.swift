import Testing
import TollgateHTTP
@testable import Tollgate

/// Which upstream header lines `ResponseRewriter.write` drops when it writes its own Strict-Transport-Security:
/// exactly the fields whose name is that name in some case, whatever else is 25 bytes long or close to it.
@Suite struct LastAttackHSTSNameTests {
    static let hsts = "strict-transport-security"

    /// The client head for an upstream head with `name: v` among other lines, with Tollgate's own HSTS line.
    static func rewritten(_ name: [UInt8]) throws -> String? {
        let raw = Array("HTTP/1.1 200 OK\r\nA: 1\r\n".utf8) + name + Array(": v\r\nB: 2\r\nContent-Length: 0\r\n\r\n".utf8)
        var head = ResponseHead()
        guard ResponseParser().parse(raw, from: 0, to: raw.count, requestWasHead: false, into: &head) == .complete else {
            return nil
        }
        var out: [UInt8] = []
        ResponseRewriter.write(head, buffer: raw, mode: .length(0), requestID: RequestID(1), close: false,
                               hsts: ResponseRewriter.hstsLine("max-age=9"), into: &out)
        return String(decoding: out, as: UTF8.self)
    }

    static func lowercased(_ name: [UInt8]) -> [UInt8] {
        name.map { $0 >= 0x41 && $0 <= 0x5A ? $0 | 0x20 : $0 }
    }

    @Test func everyOneByteChangeAndEveryOneLetterCaseOfTheName() throws {
        let base = Array(Self.hsts.utf8)
        var names: [[UInt8]] = []
        for k in 0..<base.count {
            for b in 0...255 {
                var n = base
                n[k] = UInt8(b)
                names.append(n)
            }
            // One byte more or less at each place.
            names.append(Array(base[..<k] + base[(k + 1)...]))
            names.append(Array(base[..<k]) + [0x61] + Array(base[k...]))
        }
        names.append(base + [0x2D])
        names.append(Array("STRICT-TRANSPORT-SECURITY".utf8))
        names.append(Array("Strict-Transport-Security".utf8))
        // Every name of length 25 among the other headers a response may carry, and near names.
        for other in ["Access-Control-Max-Age-Xx", "Content-Security-Policy-X", "Cross-Origin-Opener-Polic",
                      "Strict-Transport-Securit", "Strict-Transport-Security-", "Xstrict-transport-security"] {
            names.append(Array(other.utf8))
        }
        var parsed = 0
        // A colon ends the name early (another field, written back as `name: value`): not a name to test.
        for name in names where !name.contains(0x3A) {
            guard let text = try Self.rewritten(name) else { continue }
            parsed += 1
            let isHSTS = Self.lowercased(name) == base
            let line = String(decoding: name, as: UTF8.self) + ": v\r\n"
                        // Tollgate's own line is there once, and nothing else went.
            #expect(text.components(separatedBy: "Strict-Transport-Security: max-age=9\r\n").count == 2)
            #expect(text.contains(isHSTS ? "\r\nA: 1\r\nB: 2\r\n" : "\r\nA: 1\r\n" + line + "B: 2\r\n"), "\(name)")
        }
        #expect(parsed > 25 * 70)
    }

    @Test func aThousandCaseMixesOfTheNameAreAllDropped() throws {
        // Deterministic: the bits of the index choose each letter's case.
        let base = Array(Self.hsts.utf8)
        for mask in stride(from: 0, to: 1 << 21, by: 2099) {
            var name = base
            var bit = 0
            for i in name.indices where name[i] >= 0x61 && name[i] <= 0x7A {
                if mask >> bit & 1 == 1 { name[i] ^= 0x20 }
                bit += 1
            }
            let text = try #require(try Self.rewritten(name))
            #expect(!text.contains(String(decoding: name, as: UTF8.self) + ": v"), "\(name)")
        }
    }
}
