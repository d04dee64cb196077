import Testing
import TollgateIO
@testable import Tollgate

/// Refused PROXY protocol peers are logged once per address (IPv6 per /64), and the table stays bounded.
@Suite struct LimitsProxyProtocolRefusalsTests {
    private func host(_ text: String) -> SocketAddress.Host {
        SocketAddress(parsing: text.contains(":") ? "[\(text)]:1" : "\(text):1")!.host
    }

    @Test func eachAddressIsLoggedOnceAndIPv6ByItsSlash64() {
        let table = ProxyProtocolRefusals(capacity: 8)
        #expect(table.firstTime(host("203.0.113.7")))
        #expect(!table.firstTime(host("203.0.113.7")))
        #expect(table.firstTime(host("203.0.113.8")))
        #expect(table.firstTime(host("2001:db8:1:2::1")))
        #expect(!table.firstTime(host("2001:db8:1:2:ffff::9")))
        #expect(table.firstTime(host("2001:db8:1:3::1")))
    }

    @Test func pastItsCapacityNothingMoreIsLogged() {
        let table = ProxyProtocolRefusals(capacity: 2)
        #expect(table.firstTime(host("192.0.2.1")))
        #expect(table.firstTime(host("192.0.2.2")))
        for i in 3..<50 { #expect(!table.firstTime(host("192.0.2.\(i)"))) }
        #expect(!table.firstTime(host("192.0.2.1")))
    }
}
