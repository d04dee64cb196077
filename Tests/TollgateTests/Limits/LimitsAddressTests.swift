@testable import Tollgate
import Testing
import TollgateIO

@Suite("Limits: client keys, CIDR and address text")
struct LimitsAddressTests {
    func key(_ text: String, _ prefix: Int = 64) -> ClientKey { ClientKey.of(host(text), ipv6PrefixLength: prefix) }

    @Test func anAddressAsBytesIsSpelledAsInetNtopSpellsIt() {
        // Every octet width (one, two, three digits) in every position, and IPv6 through inet_ntop.
        let octets: [UInt32] = [0, 1, 9, 10, 99, 100, 199, 255]
        for a in octets {
            for b in octets {
                let address = SocketAddress(host: .v4(UInt32(bigEndian: a << 24 | b << 16 | (b ^ a) << 8 | a)), port: 0)
                #expect(address.hostBytes == Array(address.hostString.utf8), "\(address.hostString)")
            }
        }
        let v6 = SocketAddress(parsing: "[2001:db8::1]:443")!
        #expect(v6.hostBytes == Array("2001:db8::1".utf8))
    }

    @Test func ipv4IsPerAddress() {
        #expect(key("192.0.2.1") == key("192.0.2.1"))
        #expect(key("192.0.2.1") != key("192.0.2.2"))
    }

    @Test func ipv6IsPerSlash64ByDefault() {
        #expect(key("2001:db8:1:2::1") == key("2001:db8:1:2:ffff:ffff:ffff:ffff"))
        #expect(key("2001:db8:1:2::1") != key("2001:db8:1:3::1"))
        #expect(key("2001:db8:1:2::1", 128) != key("2001:db8:1:2::2", 128))
        #expect(key("2001:db8:1:2::1", 48) == key("2001:db8:1:ffff::1", 48))
    }

    @Test func ipv4MappedIsTheIPv4Client() {
        // SocketAddress already unmaps accepted peers; a mapped `.v6` from elsewhere must not collapse into one /64.
        #expect(key("::ffff:192.0.2.1") == key("192.0.2.1"))
        #expect(key("::ffff:192.0.2.1") != key("::ffff:192.0.2.2"))
    }

    @Test func ipv6SlashSixtyFourSharesOneBucketInTheLimiter() {
        let limiter = RateLimiter(settings: rateSettings(burst: 1))
        #expect(limiter.check(host("2001:db8::1"), nowMillis: 0).isAllowed)
        #expect(limiter.check(host("2001:db8::2"), nowMillis: 0).isAllowed)
        #expect(!limiter.check(host("2001:db8::3"), nowMillis: 0).isAllowed)
        #expect(limiter.check(host("2001:db8:0:1::1"), nowMillis: 0).isAllowed)
        var perAddress = rateSettings(burst: 0)
        perAddress.ipv6PrefixLength = 128
        let strict = RateLimiter(settings: perAddress)
        #expect(strict.check(host("2001:db8::1"), nowMillis: 0).isAllowed)
        #expect(strict.check(host("2001:db8::2"), nowMillis: 0).isAllowed)
        #expect(!strict.check(host("2001:db8::2"), nowMillis: 0).isAllowed)
    }

    @Test func cidrParsing() {
        #expect(cidr("10.0.0.0/8").contains(host("10.255.1.2")))
        #expect(!cidr("10.0.0.0/8").contains(host("11.0.0.1")))
        #expect(cidr("10.1.2.3/8") == cidr("10.0.0.0/8"))
        #expect(cidr("192.0.2.7").contains(host("192.0.2.7")))
        #expect(!cidr("192.0.2.7").contains(host("192.0.2.8")))
        #expect(cidr("0.0.0.0/0").contains(host("8.8.8.8")))
        #expect(!cidr("0.0.0.0/0").contains(host("2001:db8::1")))
        #expect(cidr("2001:db8::/32").contains(host("2001:db8:ffff::1")))
        #expect(!cidr("2001:db8::/32").contains(host("2001:db9::1")))
        #expect(cidr("::1").contains(host("::1")))
        #expect(!cidr("::1").contains(host("::2")))
        #expect(cidr("10.0.0.0/8").contains(host("::ffff:10.0.0.1")))
        #expect(cidr("10.0.0.0/8").description == "10.0.0.0/8")
        #expect(cidr("2001:db8::/32").description == "2001:db8:0:0:0:0:0:0/32")
    }

    @Test(arguments: ["", "/", "10.0.0.0/", "10.0.0.0/33", "10.0.0.0/-1", "10.0.0.0/8/8", "10.0.0/8", "10.0.0.256",
                      "010.0.0.1", "2001:db8::/129", "2001:db8:::/32", "1:2:3:4:5:6:7:8:9", "abc", " 10.0.0.0/8",
                      "10.0.0.0/ 8", "10.0.0.0/1a", "fe80::1%eth0", "1.2.3.4:80"])
    func cidrRejectsBadInput(_ text: String) {
        #expect(CIDR(parsing: text) == nil)
    }

    @Test(arguments: ["::", "::1", "1::", "1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7::", "::2:3:4:5:6:7:8", "fe80::1:2",
                      "::ffff:1.2.3.4", "64:ff9b::192.0.2.33", "2001:DB8::aBc", "1:2:3:4:5:6:1.2.3.4"])
    func ipv6TextMatchesInetPton(_ text: String) {
        let parsed = AddressText.parse(Array(text.utf8)[...])
        #expect(parsed == AddressBits(host: host(text)))
    }

    @Test(arguments: [":", ":::", "1:::2", "1::2::3", "12345::", "1:2:3:4:5:6:7:8::", ":1::", "1:", "g::",
                      "1:2:3:4:5:6:7:1.2.3.4", "::1.2.3", "1.2.3.4.5", "1..2.3", "256.1.1.1", "01.1.1.1", ""])
    func badAddressTextIsRejected(_ text: String) {
        #expect(AddressText.parse(Array(text.utf8)[...]) == nil)
    }
}
