import Testing
@testable import Tollgate

/// `BodyRewrite`: each route's fields, what is left untouched, and the bodies whose reading is ambiguous.
@Suite struct ProxyBodyRewriteTests {
    private func plan(_ route: InferenceRoute, _ body: String, _ limits: GenerationLimits?, countUsage: Bool = false)
        -> Result<BodyRewrite.Plan, BodyRewrite.Refusal> {
        BodyRewrite.plan(Array(body.utf8), route: route, limits: limits, countUsage: countUsage)
    }

    /// The rewritten body as text (the original when unchanged).
    private func rewritten(_ route: InferenceRoute, _ body: String, _ limits: GenerationLimits?, countUsage: Bool = false,
                           sourceLocation: SourceLocation = #_sourceLocation) -> String? {
        switch plan(route, body, limits, countUsage: countUsage) {
        case .success(let p): return p.body.map { String(decoding: $0, as: UTF8.self) } ?? body
        case .failure(let r):
            Issue.record("refused: \(r.message)", sourceLocation: sourceLocation)
            return nil
        }
    }

    private func refused(_ route: InferenceRoute, _ body: String, _ limits: GenerationLimits?, countUsage: Bool = false) -> Bool {
        if case .failure = plan(route, body, limits, countUsage: countUsage) { return true }
        return false
    }

    let predict = GenerationLimits(maxPredict: 256)
    let context = GenerationLimits(maxContext: 4096)

    @Test func noLimitsNoCopy() throws {
        let p = try plan(.generate, #"{"model":"m","options":{"num_ctx":999999}}"#, nil).get()
        #expect(p.body == nil)
        #expect(p.lowered.isEmpty)
        let q = try plan(.chatCompletions, #"{"model":"m","stream":true}"#, nil, countUsage: false).get()
        #expect(q.body == nil && !q.usageInjected)
    }

    @Test func numPredictSetLoweredOrKept() throws {
        #expect(rewritten(.generate, #"{"model":"m"}"#, predict) == #"{"options":{"num_predict":256},"model":"m"}"#)
        #expect(rewritten(.generate, #"{}"#, predict) == #"{"options":{"num_predict":256}}"#)
        #expect(rewritten(.chat, #"{"model":"m","options":{"temperature":0}}"#, predict)
            == #"{"model":"m","options":{"num_predict":256,"temperature":0}}"#)
        #expect(rewritten(.chat, #"{"model":"m","options":{}}"#, predict) == #"{"model":"m","options":{"num_predict":256}}"#)
        #expect(rewritten(.chat, #"{"model":"m","options":null}"#, predict) == #"{"model":"m","options":{"num_predict":256}}"#)
        for unlimited in ["-1", "-2", "0", "null", "1e6", "257.5", "9e300"] {
            #expect(rewritten(.generate, #"{"options":{"num_predict":\#(unlimited)}}"#, predict) == #"{"options":{"num_predict":256}}"#)
        }
        let kept = try plan(.generate, #"{"options":{"num_predict":100.9}}"#, predict).get()
        #expect(kept.body == nil)
        #expect(kept.generationCap == 100)  // Go truncates toward zero
        let lowered = try plan(.generate, #"{"options":{"num_predict":1000}}"#, predict).get()
        #expect(lowered.lowered == [LoweredField(field: "num_predict", from: "1000", to: 256)])
        #expect(lowered.generationCap == 256)
    }

    @Test func numCtxLoweredNeverRaisedAndSetWhereAbsent() throws {
        #expect(rewritten(.generate, #"{"options":{"num_ctx":32768}}"#, context) == #"{"options":{"num_ctx":4096}}"#)
        #expect(rewritten(.embed, #"{"options":{"num_ctx":0}}"#, context) == #"{"options":{"num_ctx":4096}}"#)
        #expect(try plan(.generate, #"{"options":{"num_ctx":2048}}"#, context).get().body == nil)
        // Absent or null, Ollama sizes its own default from the GPU's memory: the cap is set instead.
        let absent = try plan(.generate, #"{"model":"m"}"#, context).get()
        #expect(absent.body.map { String(decoding: $0, as: UTF8.self) } == #"{"options":{"num_ctx":4096},"model":"m"}"#)
        #expect(absent.lowered == [LoweredField(field: "num_ctx", from: nil, to: 4096)])
        #expect(rewritten(.chat, #"{"options":{"num_ctx":null,"seed":1}}"#, context) == #"{"options":{"num_ctx":4096,"seed":1}}"#)
        #expect(rewritten(.generate, #"{"options":null}"#, context) == #"{"options":{"num_ctx":4096}}"#)
        #expect(rewritten(.generate, #"{"options":{}}"#, context) == #"{"options":{"num_ctx":4096}}"#)
        // Embeddings generate nothing: num_predict is not theirs.
        let embed = try plan(.embed, #"{"input":"x"}"#, GenerationLimits(maxContext: 4096, maxPredict: 10)).get()
        #expect(embed.body.map { String(decoding: $0, as: UTF8.self) } == #"{"options":{"num_ctx":4096},"input":"x"}"#)
        #expect(embed.generationCap == 0)
        // The OpenAI routes have no num_ctx Ollama reads.
        #expect(try plan(.chatCompletions, #"{"model":"m"}"#, context).get().body == nil)
    }

    @Test func overridesAreFoundAsGoReadsThem() throws {
        func found(_ route: InferenceRoute, _ body: String) -> String? {
            switch BodyRewrite.override(in: Array(body.utf8), route: route, overrides: false, webSearch: false) {
            case .success(nil): return nil
            case .success(.modelOverride(let field)?): return field
            case .success(.webSearch(let type)?): return "tool " + type
            case .failure(let r): return "refused: " + r.message
            }
        }
        #expect(found(.generate, #"{"options":{"temperature":1,"num_gpu":0}}"#) == "options.num_gpu")
        #expect(found(.generate, #"{"options":{"num_gpu":null,"seed":1}}"#) == nil)
        #expect(found(.generate, #"{"options":{"num_ctx":1}}"#) == nil)   // what max-context caps, never refused
        #expect(found(.embeddings, #"{"options":{"num_batch":1}}"#) == "options.num_batch")
        #expect(found(.chat, #"{"shift":true}"#) == "shift")
        #expect(found(.embed, #"{"shift":true}"#) == nil)  // not a field of EmbedRequest
        #expect(found(.generate, #"{"template":"{{.Prompt}}"}"#) == "template")
        #expect(found(.generate, #"{"template":"","raw":true,"context":[1],"system":"s"}"#) == nil)
        #expect(found(.chat, #"{"template":"x"}"#) == nil)  // only /api/generate reads a template
        #expect(found(.generate, #"{"Template":"x"}"#)?.hasPrefix("refused: ") == true)
        #expect(found(.generate, #"{"options":{},"options":{"num_gpu":0}}"#)?.hasPrefix("refused: ") == true)
        #expect(found(.messages, #"{"tools":[{"type":"custom"},{"type":"web_search_20250305"}]}"#) == "tool web_search_20250305")
        #expect(found(.responses, #"{"tools":[{"type":"namespace","tools":[{"type":" Web_Search"}]}]}"#) == "tool  Web_Search")
        #expect(found(.chatCompletions, #"{"tools":[{"type":"web_search"}]}"#) == nil)
        #expect(found(.messages, #"{"tools":[{"Type":"web_search"}]}"#)?.hasPrefix("refused: ") == true)
    }

    @Test func bothOptionsTogether() {
        let both = GenerationLimits(maxContext: 4096, maxPredict: 256)
        #expect(rewritten(.chat, #"{"options":{"num_ctx":8192}, "model":"m"}"#, both)
            == #"{"options":{"num_predict":256,"num_ctx":4096}, "model":"m"}"#)
    }

    @Test func severalInsertionsShareOneObject() {
        let limits = GenerationLimits(maxPredict: 256, keepAlive: KeepAliveLimit(seconds: 60, replaceAbsent: true))
        #expect(rewritten(.generate, "{}", limits) == #"{"options":{"num_predict":256},"keep_alive":60}"#)
        #expect(rewritten(.generate, " { \"model\":\"m\" } ", limits) == #" {"options":{"num_predict":256},"keep_alive":60, "model":"m" } "#)
    }

    @Test func keepAlive() throws {
        let cap = GenerationLimits(keepAlive: KeepAliveLimit(seconds: 600))
        for forever in ["-1", #""-1m""#, #""-0.5h""#, "3600", #""1h""#, #""10m1s""#, #""2562047h""#] {
            #expect(rewritten(.generate, #"{"keep_alive":\#(forever)}"#, cap) == #"{"keep_alive":600}"#, "\(forever)")
        }
        for fine in ["0", "600", #""10m""#, #""599.9s""#, #""1.5ms""#, #""0""#, "null", #""+5m""#] {
            #expect(try plan(.chat, #"{"keep_alive":\#(fine)}"#, cap).get().body == nil, "\(fine)")
        }
        #expect(try plan(.chat, #"{"model":"m"}"#, cap).get().body == nil)
        let replace = GenerationLimits(keepAlive: KeepAliveLimit(seconds: 60, replaceAbsent: true))
        #expect(rewritten(.chat, #"{"model":"m"}"#, replace) == #"{"keep_alive":60,"model":"m"}"#)
        for bad in [#""forever""#, #""5""#, "true", "[1]", #""1d""#, #""""#] {
            #expect(refused(.generate, #"{"keep_alive":\#(bad)}"#, cap), "\(bad)")
        }
    }

    @Test func openAIMaxTokens() throws {
        #expect(rewritten(.chatCompletions, #"{"model":"m","max_tokens":4000}"#, predict) == #"{"model":"m","max_tokens":256}"#)
        #expect(rewritten(.completions, #"{"model":"m"}"#, predict) == #"{"max_tokens":256,"model":"m"}"#)
        #expect(rewritten(.chatCompletions, #"{"max_tokens":null}"#, predict) == #"{"max_tokens":256}"#)
        #expect(rewritten(.chatCompletions, #"{"max_tokens":-1}"#, predict) == #"{"max_tokens":256}"#)
        #expect(try plan(.chatCompletions, #"{"max_tokens":10}"#, predict).get().generationCap == 10)
        // Go fails to decode these into *int; Ollama would answer 400.
        #expect(refused(.chatCompletions, #"{"max_tokens":10.0}"#, predict))
        #expect(refused(.chatCompletions, #"{"max_tokens":"10"}"#, predict))
        // max_completion_tokens is not read by Ollama: left alone, max_tokens is set.
        #expect(rewritten(.chatCompletions, #"{"max_completion_tokens":9999}"#, predict)
            == #"{"max_tokens":256,"max_completion_tokens":9999}"#)
        #expect(rewritten(.responses, #"{"max_output_tokens":999}"#, predict) == #"{"max_output_tokens":256}"#)
        #expect(rewritten(.responses, #"{"input":"x"}"#, predict) == #"{"max_output_tokens":256,"input":"x"}"#)
        // The OpenAI routes have no options, no keep_alive: nothing else is touched.
        #expect(try plan(.chatCompletions, #"{"options":{"num_ctx":99999},"keep_alive":-1}"#,
                         GenerationLimits(maxContext: 1, keepAlive: KeepAliveLimit(seconds: 1))).get().body == nil)
    }

    @Test func anthropicMaxTokens() throws {
        #expect(rewritten(.messages, #"{"max_tokens":1024,"messages":[]}"#, predict) == #"{"max_tokens":256,"messages":[]}"#)
        #expect(try plan(.messages, #"{"max_tokens":100}"#, predict).get().body == nil)
        // Ollama refuses a missing or non-positive max_tokens itself.
        #expect(try plan(.messages, #"{"messages":[]}"#, predict).get().body == nil)
    }

    @Test func includeUsage() throws {
        func inject(_ route: InferenceRoute, _ body: String) throws -> (String?, Bool) {
            let p = try plan(route, body, nil, countUsage: true).get()
            return (p.body.map { String(decoding: $0, as: UTF8.self) }, p.usageInjected)
        }
        #expect(try inject(.chatCompletions, #"{"stream":true}"#) == (#"{"stream_options":{"include_usage":true},"stream":true}"#, true))
        #expect(try inject(.completions, #"{"stream":true,"stream_options":null}"#) == (#"{"stream":true,"stream_options":{"include_usage":true}}"#, true))
        #expect(try inject(.chatCompletions, #"{"stream":true,"stream_options":{}}"#) == (#"{"stream":true,"stream_options":{"include_usage":true}}"#, true))
        #expect(try inject(.chatCompletions, #"{"stream":true,"stream_options":{"x":1}}"#) == (#"{"stream":true,"stream_options":{"include_usage":true,"x":1}}"#, true))
        #expect(try inject(.chatCompletions, #"{"stream":true,"stream_options":{"include_usage":false}}"#) == (#"{"stream":true,"stream_options":{"include_usage":true}}"#, true))
        #expect(try inject(.chatCompletions, #"{"stream":true,"stream_options":{"include_usage":true}}"#) == (nil, false))
        #expect(try inject(.chatCompletions, #"{"stream":false}"#) == (nil, false))
        #expect(try inject(.chatCompletions, #"{"model":"m"}"#) == (nil, false))
        #expect(try inject(.responses, #"{"stream":true}"#) == (nil, false))
        #expect(refused(.chatCompletions, #"{"stream":"yes"}"#, nil, countUsage: true))
        #expect(refused(.chatCompletions, #"{"stream":true,"stream_options":[]}"#, nil, countUsage: true))
    }

    @Test func ambiguousBodiesAreRefused() {
        // Go matches struct fields case-insensitively, K (U+212A) as k, ſ (U+017F) as s, ı/İ as i (Go 1.21+).
        #expect(refused(.generate, #"{"Options":{"num_predict":9999}}"#, predict))
        #expect(refused(.chatCompletions, #"{"MAX_TOKENS":9999}"#, predict))
        #expect(refused(.chatCompletions, "{\"max_to\u{212A}en\u{17F}\":9999}", predict))
        #expect(refused(.chat, "{\"keep_alıve\":-1}", GenerationLimits(keepAlive: KeepAliveLimit(seconds: 1))))
        #expect(refused(.chatCompletions, #"{"Stream":true}"#, nil, countUsage: true))
        // Duplicates: the last wins for a scalar, but a second options object merges into the first.
        #expect(refused(.generate, #"{"options":{"num_predict":1},"options":{"temperature":1}}"#, predict))
        #expect(refused(.generate, #"{"options":{"num_predict":1,"num_predict":99999}}"#, predict))
        #expect(refused(.chatCompletions, #"{"max_tokens":1,"max_tokens":99999}"#, predict))
        // Types Ollama cannot read there.
        #expect(refused(.generate, #"{"options":[1]}"#, predict))
        #expect(refused(.generate, #"{"options":{"num_predict":"9"}}"#, predict))
        #expect(refused(.generate, #"{"options":{"num_ctx":true}}"#, context))
        // Not JSON.
        #expect(refused(.generate, #"{"options":{"num_predict":1}"#, predict))
    }

    @Test func escapedKeysAreReadDecoded() {
        // "\u006eum_predict" is num_predict once decoded, as Go reads it.
        #expect(rewritten(.generate, #"{"\u006fptions":{"num\u005fpredict":99999}}"#, predict)
            == #"{"\u006fptions":{"num\u005fpredict":256}}"#)
    }

    @Test func otherCaseInOptionsIsIgnoredByOllama() {
        // options is a map with exact keys: NUM_PREDICT is an unknown option Ollama skips.
        #expect(rewritten(.generate, #"{"options":{"NUM_PREDICT":99999}}"#, predict)
            == #"{"options":{"num_predict":256,"NUM_PREDICT":99999}}"#)
    }

    @Test func everyOtherByteIsKept() {
        let body = "{ \"model\" : \"m\",\n \"prompt\":\"h\\u00e9 \\\"num_predict\\\":1\", \"options\" : { \"seed\" : 1 , \"num_predict\" : 5000 } }"
        #expect(rewritten(.generate, body, predict)
            == "{ \"model\" : \"m\",\n \"prompt\":\"h\\u00e9 \\\"num_predict\\\":1\", \"options\" : { \"seed\" : 1 , \"num_predict\" : 256 } }")
    }

    @Test func aCapBelowOneIsWrittenAsOneNeverAsUnlimited() {
        #expect(rewritten(.generate, #"{"options":{"num_predict":5}}"#, GenerationLimits(maxPredict: 0))
            == #"{"options":{"num_predict":1}}"#)
        #expect(rewritten(.chatCompletions, #"{}"#, GenerationLimits(maxPredict: -3)) == #"{"max_tokens":1}"#)
    }

    @Test func loweredHeader() {
        #expect(LoweredField.headerValue([LoweredField(field: "num_ctx", from: "8192", to: 4096),
                                          LoweredField(field: "num_predict", from: nil, to: 256)]) == "num_ctx=4096 num_predict=256")
    }

    @Test func goDurations() {
        #expect(GoDuration.seconds("1h30m") == 5400)
        #expect(GoDuration.seconds("1.5s") == 1.5)
        #expect(GoDuration.seconds("-1m") == -60)
        #expect(GoDuration.seconds("300ms") == 0.3)
        #expect(GoDuration.seconds("2µs") == 2e-6)
        #expect(GoDuration.seconds(".5m") == 30)
        #expect(GoDuration.seconds("5.m") == 300)
        for bad in ["", "5", "m", ".", "1d", "1h-1m", "1e3s", "9999999999h", "+", "- 1s"] {
            #expect(GoDuration.seconds(bad) == nil, "\(bad)")
        }
    }
}
