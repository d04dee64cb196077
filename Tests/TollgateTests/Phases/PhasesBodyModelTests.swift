import Testing
@testable import Tollgate

@Suite struct PhasesBodyModelTests {
    private func read(_ text: String) -> Result<BodyModel, BodyModel.Invalid> {
        BodyModel.read(Array(text.utf8))
    }

    private func handler(_ text: String) -> BodyModel.Reading? {
        guard case .success(let m) = read(text) else { return nil }
        return m.handler
    }

    @Test func theLastTopLevelKeyWinsLikeGo() {
        #expect(handler(#"{"model":"a","model":"b"}"#) == .string("b"))
    }

    @Test func nestedModelKeysDoNotCount() {
        #expect(handler(#"{"options":{"model":"a"},"messages":[{"model":"x"}],"model":"b"}"#) == .string("b"))
        #expect(handler(#"{"options":{"model":"a"}}"#) == .absent)
    }

    @Test func theHandlerFoldsCaseButTheCloudMiddlewareReadsTheExactKey() throws {
        let m = try read(#"{"model":"a","MODEL":"b"}"#).get()
        #expect(m.handler == .string("b"))
        #expect(m.exactKey == .string("a"))
        #expect(m.names == ["b", "a"])
        let n = try read(#"{"Model":"x:cloud","model":"mistral:7b","mOdEl":"y"}"#).get()
        #expect(n.names == ["y", "mistral:7b"])
    }

    @Test func escapesInKeysAndValuesAreDecoded() throws {
        let m = try read(#"{"model":"a","\u006dodel":"c"}"#).get()
        #expect(m.handler == .string("c"))
        #expect(m.exactKey == .string("c"))
        #expect(handler(#"{"model":"mis\u0074ral"}"#) == .string("mistral"))
        #expect(handler(#"{"model":"\ud83d\ude00"}"#) == .string("\u{1F600}"))
        #expect(handler(#"{"model":"\ud83dx"}"#) == .string("\u{FFFD}x"))
    }

    @Test func invalidUTF8BecomesOneReplacementPerByteAsInGo() {
        var body = Array(#"{"model":"a"#.utf8)
        body += [0xE2, 0x82]  // a truncated three-byte sequence: two runes of U+FFFD in Go
        body += Array(#":cloud"}"#.utf8)
        guard case .success(let m) = BodyModel.read(body) else { Issue.record("refused"); return }
        #expect(m.handler == .string("a\u{FFFD}\u{FFFD}:cloud"))
    }

    @Test func nullKeepsThePreviousValueAndOtherTypesAreNotStrings() throws {
        #expect(handler(#"{"model":"a","model":null}"#) == .string("a"))
        #expect(try read(#"{"model":"a","model":null}"#).get().exactKey == .absent)
        #expect(handler(#"{"model":7}"#) == .notString)
        #expect(handler(#"{"model":{"name":"a"}}"#) == .notString)
    }

    @Test func longNamesAreReadWhole() {
        let long = String(repeating: "x", count: 5000) + ":cloud"
        #expect(handler(#"{"model":""# + long + #""}"#) == .string(long))
    }

    @Test func stringsWithBracesAndQuotesDoNotConfuseIt() {
        #expect(handler(#"{"prompt":"} \" { ]","model":"a"}"#) == .string("a"))
    }

    @Test(arguments: [
        #"["model","a"]"#, #"{"model":"a""#, "", "null", #"{"model":"a"} x"#, #"{"model":"a"}{"model":"b"}"#,
        #"{"model":"a",}"#, #"{"a":01}"#, #"{"a":1.}"#, #"{"a":"\x"}"#, "{\"a\":\"\u{01}\"}", #"{"a":tru}"#,
        #"{'model':'a'}"#, "\u{FEFF}{}", #"{"a":[1,]}"#, #"{"a" 1}"#,
    ])
    func anythingButOneValidObjectIsRefused(_ text: String) {
        guard case .failure = read(text) else { Issue.record("accepted \(text.debugDescription)"); return }
    }

    @Test func whitespaceAroundTheObjectIsFine() {
        #expect(handler(" \n{\"model\" : \"a\" }\r\n\t") == .string("a"))
    }

    @Test func deepNestingIsRefusedWithoutRecursion() {
        let deep = #"{"a":"# + String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000) + "}"
        guard case .failure = read(deep) else { Issue.record("accepted"); return }
        let fine = #"{"a":"# + String(repeating: "[", count: 100) + String(repeating: "]", count: 100) + #","model":"m"}"#
        #expect(handler(fine) == .string("m"))
    }

    @Test func showAlsoReadsName() throws {
        let m = try BodyModel.read(Array(#"{"NAME":"x-cloud"}"#.utf8), key: "name").get()
        #expect(m.handler == .string("x-cloud"))
    }

    @Test(arguments: [
        ("gpt-oss:120b-cloud", true), ("x:cloud", true), ("X:CLOUD", true), ("x:cloud ", true), (" x: cloud\t", true),
        ("x:\u{00A0}cloud", true), ("x:\u{3000}CLOUD\u{2028}", true), ("h:5000/x:cloud", true), ("x:cloud:cloud", true),
        ("x:8b-Cloud", true), ("qwen3-coder-cloud", false), ("mistral:7b", false), ("cloudy:7b", false),
        ("x:cloudless", false), ("x:local", false), ("cloud", false),
    ])
    func cloudNames(_ name: String, _ cloud: Bool) {
        #expect(CloudModel.isCloud(name) == cloud)
    }
}
