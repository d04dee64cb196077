import Testing
@testable import Tollgate

@Suite struct PhasesModelGateTests {
    /// Feeds `text` in pieces of `piece` bytes; returns the verdict, what was forwarded and what was held.
    private func run(_ text: String, piece: Int = 1 << 20) -> (ModelGate.Verdict, String, String) {
        var gate = ModelGate()
        let bytes = Array(text.utf8)
        var forwarded: [UInt8] = []
        var start = 0
        while start < bytes.count {
            let end = min(bytes.count, start + piece)
            let n = gate.feed(bytes, start..<end)
            forwarded += bytes[start..<start + n]
            start = end
        }
        return (gate.finish(), String(decoding: forwarded, as: UTF8.self), String(decoding: gate.held, as: UTF8.self))
    }

    @Test(arguments: [1, 2, 3, 7, 1000])
    func theClosingBraceIsHeldWherever(_ piece: Int) {
        let (verdict, forwarded, held) = run(#"{"model":"mistral:7b","prompt":"hi"}"# + "\n", piece: piece)
        #expect(verdict == .model("mistral:7b"))
        #expect(forwarded == #"{"model":"mistral:7b","prompt":"hi""#)
        #expect(held == "}\n")
    }

    @Test func theLastTopLevelKeyWinsLikeGo() {
        #expect(run(#"{"model":"a","model":"b"}"#).0 == .model("b"))
    }

    @Test func nestedModelKeysDoNotCount() {
        #expect(run(#"{"options":{"model":"a"},"messages":[{"model":"x"}],"model":"b"}"#).0 == .model("b"))
        #expect(run(#"{"options":{"model":"a"}}"#).0 == .invalid("the body names no \"model\""))
    }

    @Test func keysMatchCaseInsensitivelyAndEscapesAreDecoded() {
        #expect(run(#"{"model":"a","MODEL":"b"}"#).0 == .model("b"))
        #expect(run(#"{"model":"a","\u006dodel":"c"}"#).0 == .model("c"))
        #expect(run(#"{"model":"mis\u0074ral"}"#).0 == .model("mistral"))
    }

    @Test func nullKeepsThePreviousValueAndOtherTypesAreInvalid() {
        #expect(run(#"{"model":"a","model":null}"#).0 == .model("a"))
        #expect(run(#"{"model":7}"#).0 == .invalid("\"model\" must be a string"))
        #expect(run(#"{"model":{"name":"a"}}"#).0 == .invalid("\"model\" must be a string"))
    }

    @Test func stringsWithBracesAndQuotesDoNotConfuseIt() {
        let (verdict, _, held) = run(#"{"prompt":"} \" { ]","model":"a"}"#)
        #expect(verdict == .model("a"))
        #expect(held == "}")
    }

    @Test func notAnObjectOrUnfinishedIsInvalid() {
        #expect(run(#"["model","a"]"#).0 == .invalid("the body is not a JSON object"))
        #expect(run(#"{"model":"a""#).0 == .invalid("the body is not a complete JSON object"))
        #expect(run("").0 == .invalid("the body is not a complete JSON object"))
    }
}
