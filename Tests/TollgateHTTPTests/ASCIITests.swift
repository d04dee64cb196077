import Testing
@testable import TollgateHTTP

/// The byte classes the head grammar is built on, checked for every byte value against RFC 9110's definitions.
@Suite struct ASCIITests {
    @Test func tcharIsExactlyAlphaDigitAndTheFifteenSymbols() {
        let symbols = Set("!#$%&'*+-.^_`|~".utf8)
        for value in 0...255 {
            let b = UInt8(value)
            let expected = (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || symbols.contains(b)
            #expect(ASCII.isTchar(b) == expected, "byte \(value)")
        }
    }
}
