@testable import Tollgate
import Testing

@Suite("Model lists narrowed to the models an exchange may name: the rest of the body as sent, fail closed")
struct UpstreamsModelListFilterTests {
    static let mistral = UpstreamsModelListTests.mistral
    static let llama = UpstreamsModelListTests.llama
    static let cloud = #"{"name":"gpt-oss:120b-cloud","model":"gpt-oss:120b-cloud","modified_at":"2025-09-01T00:00:00Z","size":384}"#

    func tags(_ objects: [String], around: (String, String) = ("", "")) -> [UInt8] {
        Array(#"{\#(around.0)"models":[\#(objects.joined(separator: ","))]\#(around.1)}"#.utf8)
    }

    func filtered(_ body: [UInt8], openAI: Bool = false, _ permit: ModelPermit) -> String? {
        let list = openAI
            ? ModelListScanner.filtered(body, listKey: "data", emptyIsNull: true) { permit.permits($0) }
            : ModelListScanner.filtered(body, listKey: "models", emptyIsNull: false) { permit.permits($0) }
        return list.map { String(decoding: $0, as: UTF8.self) }
    }

    static let onlyMistral = ModelPermit(allowed: ["mistral:7b"], keyModels: nil, refusesCloud: false)

    @Test func onlyPermittedEntriesStayEachByteForByteWithTheRestOfTheBody() {
        let body = tags([Self.llama, Self.mistral, Self.cloud], around: (#""x":{"models":[1]}, "#, #", "y":"z""#))
        #expect(filtered(body, Self.onlyMistral) == #"{"x":{"models":[1]}, "models":[\#(Self.mistral)], "y":"z"}"#)
        // A key's models narrow the allow-list; cloud models go when the user may not use them.
        let key = ModelPermit(allowed: [], keyModels: ["llama3:latest", "gpt-oss:120b-cloud"], refusesCloud: true)
        #expect(filtered(body, key) == #"{"x":{"models":[1]}, "models":[\#(Self.llama)], "y":"z"}"#)
        let both = ModelPermit(allowed: ["mistral:7b"], keyModels: ["llama3:latest"], refusesCloud: false)
        #expect(filtered(body, both) == #"{"x":{"models":[1]}, "models":[], "y":"z"}"#)
    }

    @Test func aListWithNothingTakenOutIsTheBodyAsSent() {
        let body = Array(" { \"models\" : [ \(Self.mistral) ,\n \(Self.llama) ] }\n".utf8)
        let all = ModelPermit(allowed: ["mistral:7b", "llama3:latest"], keyModels: nil, refusesCloud: true)
        #expect(filtered(body, all) == String(decoding: body, as: UTF8.self))
        #expect(filtered(Array(#"{"models":[]}"#.utf8), Self.onlyMistral) == #"{"models":[]}"#)
    }

    @Test func openAIListsKeepTheirShapeAndNoModelIsNull() {
        let data = #"{"object":"list","data":[{"id":"llama3:latest","object":"model","created":1,"owned_by":"library"},{"id":"mistral:7b","object":"model","created":2,"owned_by":"library"}]}"# + "\n"
        #expect(filtered(Array(data.utf8), openAI: true, Self.onlyMistral)
            == #"{"object":"list","data":[{"id":"mistral:7b","object":"model","created":2,"owned_by":"library"}]}"# + "\n")
        let none = ModelPermit(allowed: ["qwen:7b"], keyModels: nil, refusesCloud: false)
        #expect(filtered(Array(data.utf8), openAI: true, none) == #"{"object":"list","data":null}"# + "\n")
        #expect(filtered(Array(#"{"object":"list","data":null}"#.utf8), openAI: true, none) == #"{"object":"list","data":null}"#)
    }

    @Test func anEntryIsShownByAnyNameItIsListedBy() {
        // Ollama lists "name" and "model" alike; either passing the gate shows the entry.
        let renamed = #"{"name":"mine","model":"mistral:7b"}"#
        #expect(filtered(tags([renamed]), Self.onlyMistral) == #"{"models":[\#(renamed)]}"#)
        let nameless = #"{"name":"","model":"mistral:7b"}"#
        #expect(filtered(tags([nameless]), Self.onlyMistral) == #"{"models":[\#(nameless)]}"#)
        // A name that is not a string, or written with an escape (read as sent, not decoded), is not shown.
        for entry in [#"{"name":["mistral:7b"]}"#, #"{"name":"mistral:7\u0062"}"#, #"{"size":1}"#] {
            #expect(filtered(tags([entry, Self.llama]), Self.onlyMistral) == #"{"models":[]}"#, "\(entry)")
        }
    }

    @Test func whatCouldBeReadAnotherWayIsNotPassed() {
        // A repeated list key (first wins for some parsers, last for others) or one spelled with an escape: refused.
        #expect(filtered(Array(#"{"models":[\#(Self.llama)],"models":[\#(Self.mistral)]}"#.utf8), Self.onlyMistral) == nil)
        #expect(filtered(Array(#"{"mod\u0065ls":[\#(Self.llama)],"models":[\#(Self.mistral)]}"#.utf8), Self.onlyMistral) == nil)
        // An entry with a key spelled with an escape (it could be "name") is not shown.
        let sneaky = #"{"name":"mistral:7b","n\u0061me":"llama3:latest"}"#
        #expect(filtered(tags([sneaky, Self.mistral]), Self.onlyMistral) == #"{"models":[\#(Self.mistral)]}"#)
        // Not a list in the shape Ollama writes: nil (the response is cut short, never passed unfiltered).
        for body in [#"{"error":"boom"}"#, "<html>", #"{"models":{}}"#, #"{"models":["a"]}"#, #"{"models":[{"name":"a"}"#,
                     #"{"models":[{"name":"a"}]} x"#, #"[{"name":"a"}]"#, ""] {
            #expect(filtered(Array(body.utf8), Self.onlyMistral) == nil, "\(body)")
        }
    }

    @Test func thePermitIsTheModelGatesExactNames() {
        let permit = ModelPermit(allowed: ["mistral:7b"], keyModels: ["mistral:7b", "llama3:8b"], refusesCloud: true)
        #expect(permit.permits("mistral:7b"))
        #expect(!permit.permits("mistral"))
        #expect(!permit.permits("llama3:8b"))
        #expect(ModelPermit(allowed: [], keyModels: nil, refusesCloud: true).permits("mistral:7b"))
        #expect(!ModelPermit(allowed: [], keyModels: nil, refusesCloud: true).permits("gpt-oss:120b-cloud"))
        #expect(!ModelPermit(allowed: [], keyModels: nil, refusesCloud: false).restricts)
        #expect(ModelPermit(allowed: [], keyModels: [], refusesCloud: false).restricts)
    }

    @Test func aBodyThatIsNotAListPassesOnlyWhereOnlyCloudModelsAreKept() {
        let html = Array("<html>not a list</html>".utf8)
        var cloudOnly = ModelListFilter(permit: ModelPermit(allowed: [], keyModels: nil, refusesCloud: true), openAI: false)
        cloudOnly.feed(html, 0..<html.count)
        guard case .success(let passed) = cloudOnly.finish() else { Issue.record("refused"); return }
        #expect(passed == html)
        var keyed = ModelListFilter(permit: ModelPermit(allowed: [], keyModels: ["a"], refusesCloud: true), openAI: true)
        keyed.feed(html, 0..<html.count)
        guard case .failure = keyed.finish() else { Issue.record("a list a key may not see was passed"); return }
    }

    @Test func keysGosDecoderMatchesWithoutRegardToCaseAreNotPassed() {
        // Go's encoding/json (the ollama CLI's client) matches a key to a field ignoring case, "ſ" as "s" and the
        // Kelvin sign as "k", the last match winning: such a list, or such a name, would be read as the real one.
        for key in ["MODELS", "Models", "model\u{17F}"] {
            #expect(filtered(tags([Self.mistral], around: ("", #", "\#(key)":[\#(Self.llama)]"#)), Self.onlyMistral) == nil)
        }
        #expect(filtered(Array(#"{"object":"list","data":[],"DATA":[{"id":"llama3:8b"}]}"#.utf8), openAI: true,
                         Self.onlyMistral) == nil)
        for key in ["NAME", "Model", "ID"] {
            let entry = #"{"name":"mistral:7b","model":"mistral:7b","id":"mistral:7b","\#(key)":"llama3:8b"}"#
            #expect(filtered(tags([entry]), Self.onlyMistral) == #"{"models":[]}"#)
        }
    }

    @Test func aListHeldPastItsBoundIsRefused() {
        var filter = ModelListFilter(permit: Self.onlyMistral, openAI: false)
        let piece = [UInt8](repeating: 0x20, count: 1 << 20)
        for _ in 0..<(ModelListFilter.maxBody >> 20) + 1 { filter.feed(piece, 0..<piece.count) }
        guard case .failure(let refusal) = filter.finish() else { Issue.record("a list past the bound was sent"); return }
        #expect(refusal.reason.contains("longer than"))
        var small = ModelListFilter(permit: Self.onlyMistral, openAI: false)
        let body = tags([Self.llama, Self.mistral])
        small.feed(body, 0..<10)
        small.feed(body, 10..<body.count)
        guard case .success(let list) = small.finish() else { Issue.record("a list in two pieces was refused"); return }
        #expect(String(decoding: list, as: UTF8.self) == #"{"models":[\#(Self.mistral)]}"#)
    }
}
