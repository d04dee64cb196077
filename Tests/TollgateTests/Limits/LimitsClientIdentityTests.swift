@testable import Tollgate
import Testing
import TollgateIO

@Suite("ClientIdentity: trusted proxies and X-Forwarded-For")
struct LimitsClientIdentityTests {
    let proxies = [cidr("10.0.0.0/8"), cidr("2001:db8:ffff::/48")]
    let proxy = host("10.0.0.5")

    func resolve(peer: SocketAddress.Host, _ lines: [String], trusted: [CIDR]? = nil) -> SocketAddress.Host {
        ClientIdentity.resolve(peer: peer, forwardedFor: lines.map { Array($0.utf8)[...] },
                               trustedProxies: trusted ?? proxies)
    }

    @Test func untrustedPeerIsTheClientWhateverItClaims() {
        #expect(resolve(peer: host("198.51.100.1"), ["1.2.3.4"]) == host("198.51.100.1"))
        #expect(resolve(peer: proxy, ["1.2.3.4"], trusted: []) == proxy)
    }

    @Test func trustedPeerNamesTheClient() {
        #expect(resolve(peer: proxy, ["198.51.100.1"]) == host("198.51.100.1"))
        #expect(resolve(peer: proxy, ["2001:db8:1::7"]) == host("2001:db8:1::7"))
    }

    @Test func spoofedLeftEntriesDoNotWin() {
        // The client sent `X-Forwarded-For: 1.2.3.4`; the trusted proxy appended the address it really saw.
        #expect(resolve(peer: proxy, ["1.2.3.4, 198.51.100.1"]) == host("198.51.100.1"))
        // Through two trusted hops, still the right-most untrusted entry.
        #expect(resolve(peer: proxy, ["1.2.3.4, 198.51.100.1, 10.9.9.9"]) == host("198.51.100.1"))
        // A client claiming a trusted address on the left still gets caught by its real address on the right.
        #expect(resolve(peer: proxy, ["10.0.0.1, 198.51.100.1"]) == host("198.51.100.1"))
    }

    @Test func multipleHeaderLinesAreJoinedInOrder() {
        #expect(resolve(peer: proxy, ["1.2.3.4", "198.51.100.1"]) == host("198.51.100.1"))
        #expect(resolve(peer: proxy, ["1.2.3.4, 198.51.100.1", "10.1.1.1", "10.2.2.2"]) == host("198.51.100.1"))
        #expect(resolve(peer: proxy, ["198.51.100.1", ""]) == host("198.51.100.1"))
    }

    @Test func portsBracketsAndBlanksAreUnderstood() {
        #expect(resolve(peer: proxy, ["198.51.100.1:4711"]) == host("198.51.100.1"))
        #expect(resolve(peer: proxy, ["[2001:db8:1::7]:443"]) == host("2001:db8:1::7"))
        #expect(resolve(peer: proxy, ["[2001:db8:1::7]"]) == host("2001:db8:1::7"))
        #expect(resolve(peer: proxy, [" \t198.51.100.1 ,, , 10.3.3.3\t"]) == host("198.51.100.1"))
        #expect(resolve(peer: proxy, ["::ffff:198.51.100.1"]) == host("198.51.100.1"))
    }

    @Test func garbageBeforeAnUntrustedEntryFallsBackToThePeer() {
        #expect(resolve(peer: proxy, ["198.51.100.1, unknown"]) == proxy)
        #expect(resolve(peer: proxy, ["198.51.100.1, 10.1.1.1, 999.1.1.1"]) == proxy)
        #expect(resolve(peer: proxy, ["fe80::1%eth0"]) == proxy)
        #expect(resolve(peer: proxy, ["[2001:db8::1]:99999"]) == proxy)
        // Garbage the client wrote to the left of its real address is never read.
        #expect(resolve(peer: proxy, ["<script>, 198.51.100.1"]) == host("198.51.100.1"))
    }

    @Test func absentOrAllTrustedHeaders() {
        #expect(resolve(peer: proxy, []) == proxy)
        #expect(resolve(peer: proxy, ["", "  "]) == proxy)
        // Every hop trusted: the left-most, as nginx's real_ip_recursive.
        #expect(resolve(peer: proxy, ["10.7.7.7, 10.8.8.8"]) == host("10.7.7.7"))
    }
}
