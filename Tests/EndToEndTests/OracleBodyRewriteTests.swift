import Foundation
import Testing
import Tollgate

/// `BodyRewrite` against Go itself: generated bodies for every inference route go, as sent and as rewritten, to the
/// Go oracle (tests/oracle, which decodes them as Ollama's handlers and middlewares do and reports num_ctx,
/// num_predict, keep_alive, stream and include_usage). Every body the rewriter accepts must, once rewritten, be
/// read by Go within the caps, with everything else Go reads unchanged; and a body Go accepts must stay accepted.
///
/// The oracle is built by .ci/run (`.build/oracle/ollama-oracle`, or `ORACLE_BIN`); without it the test is skipped,
/// except under CI=true or with ORACLE_BIN set, where a missing binary fails.
@Suite(.serialized) struct OracleBodyRewriteTests {
    static let limits = GenerationLimits(maxContext: 4096, maxPredict: 256, keepAlive: KeepAliveLimit(seconds: 600))

    static var oraclePath: String? {
        let env = ProcessInfo.processInfo.environment
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let path = env["ORACLE_BIN"].map { $0.hasPrefix("/") ? $0 : root.appendingPathComponent($0).path }
            ?? root.appendingPathComponent(".build/oracle/ollama-oracle").path
        return FileManager.default.isExecutableFile(atPath: path) ? path : nil
    }

    static var mustRun: Bool {
        let env = ProcessInfo.processInfo.environment
        return env["CI"] == "true" || env["ORACLE_BIN"] != nil
    }

    /// Deterministic generator (a fixed-seed LCG): the same cases on every run.
    struct Generator {
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        mutating func next(_ n: Int) -> Int {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int((state >> 33) % UInt64(n))
        }
        mutating func pick(_ items: [String]) -> String { items[next(items.count)] }
        mutating func chance(_ percent: Int) -> Bool { next(100) < percent }
    }

    static let ints = ["1", "100", "256", "257", "4096", "4097", "100000", "-1", "-2", "0", "null", "1.5", "256.9",
                       "1e5", "-0", "\"9\"", "true", "9e18", "1e400"]
    static let keepAlives = ["-1", "0", "300", "600", "600.5", "3600", "\"5m\"", "\"1h\"", "\"-1m\"", "null",
                             "\"10m30s\"", "\"bad\"", "1e3", "\"0\"", "\"599.999s\"", "[]", "\"-0s\""]

    static func member(_ g: inout Generator, _ key: String, _ value: String) -> String {
        let spaced = g.chance(20)
        var k = key
        if g.chance(5) { k = key.uppercased() }
        if g.chance(5) { k = key.replacingOccurrences(of: "k", with: "\u{212A}").replacingOccurrences(of: "s", with: "\u{17F}") }
        if g.chance(5), let first = k.unicodeScalars.first {
            k = String(format: "\\u%04x", first.value) + String(k.unicodeScalars.dropFirst())
        }
        return spaced ? "\"\(k)\" : \(value)" : "\"\(k)\":\(value)"
    }

    static func body(_ g: inout Generator, route: InferenceRoute) -> String {
        var members = [#""model":"mistral:7b""#]
        switch route {
        case .generate, .chat, .embed, .embeddings:
            if g.chance(70) {
                if g.chance(10) {
                    members.append(member(&g, "options", g.pick(["null", "{}", "[1]", "3"])))
                } else {
                    var inner: [String] = []
                    if g.chance(60) { inner.append(member(&g, "num_ctx", g.pick(ints))) }
                    if g.chance(60) { inner.append(member(&g, "num_predict", g.pick(ints))) }
                    if g.chance(20) { inner.append(#""temperature":0.5"#) }
                    if g.chance(8) { inner.append(member(&g, "num_predict", g.pick(ints))) }
                    inner.shuffle(using: &g)
                    members.append(member(&g, "options", "{" + inner.joined(separator: ",") + "}"))
                }
                if g.chance(5) { members.append(member(&g, "options", #"{"seed":1}"#)) }
            }
            if g.chance(60) { members.append(member(&g, "keep_alive", g.pick(keepAlives))) }
            if g.chance(5) { members.append(member(&g, "keep_alive", g.pick(keepAlives))) }
            if g.chance(40) { members.append(member(&g, "stream", g.pick(["true", "false", "null"]))) }
        case .chatCompletions, .completions:
            if g.chance(70) { members.append(member(&g, "max_tokens", g.pick(ints))) }
            if g.chance(5) { members.append(member(&g, "max_tokens", g.pick(ints))) }
            if g.chance(20) { members.append(#""max_completion_tokens":99999"#) }
            if g.chance(70) { members.append(member(&g, "stream", g.pick(["true", "true", "false", "null"]))) }
            if g.chance(50) {
                members.append(member(&g, "stream_options", g.pick(["null", "{}", #"{"include_usage":true}"#,
                    #"{"include_usage":false}"#, #"{"include_usage":null}"#, #"{"Include_Usage":true}"#, "[]"])))
            }
        case .responses:
            if g.chance(70) { members.append(member(&g, "max_output_tokens", g.pick(ints))) }
            if g.chance(40) { members.append(member(&g, "stream", g.pick(["true", "false"]))) }
        case .messages:
            if g.chance(90) { members.append(member(&g, "max_tokens", g.pick(ints))) }
        case .openAIEmbeddings:
            break
        }
        members.shuffle(using: &g)
        return "{" + members.joined(separator: g.chance(20) ? " , " : ",") + "}"
    }

    static let paths: [(InferenceRoute, String)] = [
        (.generate, "/api/generate"), (.chat, "/api/chat"), (.embed, "/api/embed"), (.embeddings, "/api/embeddings"),
        (.chatCompletions, "/v1/chat/completions"), (.completions, "/v1/completions"), (.responses, "/v1/responses"),
        (.messages, "/v1/messages"),
    ]

    @Test func rewrittenBodiesAreReadByGoWithinTheCaps() throws {
        guard let binary = Self.oraclePath else {
            if Self.mustRun { Issue.record("the Go oracle is missing: build it as .ci/run does") }
            return
        }
        let oracle = try OracleProcess(binary: binary)
        defer { oracle.stop() }
        var g = Generator()
        var accepted = 0, refused = 0, rewritten = 0
        for (route, path) in Self.paths {
            for _ in 0..<120 {
                let original = Self.body(&g, route: route)
                let plan: BodyRewrite.Plan
                switch BodyRewrite.plan(Array(original.utf8), route: route, limits: Self.limits, countUsage: true) {
                case .failure:
                    refused += 1
                    continue
                case .success(let p): plan = p
                }
                accepted += 1
                let sent = plan.body.map { String(decoding: $0, as: UTF8.self) } ?? original
                if plan.body != nil { rewritten += 1 }
                let before = try oracle.read(path, original)
                let after = try oracle.read(path, sent)
                let gen = try #require(after["generation"] as? [String: Any], "\(after)")
                let was = try #require(before["generation"] as? [String: Any])
                let context = "\(path) \(original) -> \(sent)"
                let error = gen["error"] as? String
                if (was["error"] as? String) == nil { #expect(error == nil, "\(context): \(error ?? "")") }
                // What names the model is untouched.
                #expect((after["readings"] as? NSArray) == (before["readings"] as? NSArray), "\(context)")
                #expect(gen["stream"] as? Bool == was["stream"] as? Bool, "\(context)")
                guard error == nil else { continue }
                let predict = gen["num_predict"] as? Int
                switch route {
                case .generate, .chat, .chatCompletions, .completions, .responses:
                    #expect(predict.map { $0 >= 1 && $0 <= 256 } == true, "\(context): num_predict \(String(describing: predict))")
                    #expect(plan.generationCap == predict, "\(context)")
                case .messages:
                    #expect(predict.map { $0 <= 256 } == true, "\(context)")
                default:
                    #expect(plan.generationCap == 0)
                }
                if route.usesOptions {
                    if let ctx = gen["num_ctx"] as? Int {
                        #expect(ctx >= 1 && ctx <= 4096, "\(context): num_ctx \(ctx)")
                        if let old = was["num_ctx"] as? Int, old >= 1, old <= 4096 { #expect(ctx == old, "\(context)") }
                    } else {
                        // Absent or null, the cap is set: Ollama's own default is sized from the GPU's memory.
                        Issue.record("\(context): no num_ctx under max-context")
                    }
                    if let keep = gen["keep_alive"] as? Double {
                        #expect(keep >= 0 && keep <= 600, "\(context): keep_alive \(keep)")
                    }
                }
                if route == .chatCompletions || route == .completions, gen["stream"] as? Bool == true {
                    #expect(gen["include_usage"] as? Bool == true, "\(context)")
                    #expect(plan.usageInjected == !(was["include_usage"] as? Bool ?? false), "\(context)")
                }
            }
        }
        // The generator must exercise both sides.
        #expect(accepted > 400 && refused > 20 && rewritten > 200, "accepted \(accepted), refused \(refused), rewritten \(rewritten)")
    }
}

extension OracleBodyRewriteTests {
    static let runnerOptions = ["num_gpu", "main_gpu", "num_batch", "num_thread", "use_mmap", "draft_num_predict",
                                "use_mlock", "low_vram", "f16_kv", "numa", "rope_frequency_base", "num_ctx"]
    static let sampling = ["temperature", "top_k", "top_p", "seed", "stop", "num_predict", "repeat_penalty", "min_p",
                           "mirostat", "tfs_z"]

    /// A native, Anthropic or Responses body with what a user may not send (runner options, shift, template, web
    /// search tools), spelled as `member` spells keys, sometimes only harmless values.
    static func overrideBody(_ g: inout Generator, route: InferenceRoute) -> String {
        var members = [#""model":"mistral:7b""#]
        switch route {
        case .generate, .chat, .embed, .embeddings:
            if g.chance(80) {
                var inner: [String] = []
                for _ in 0..<g.next(4) {
                    let key = g.chance(40) ? g.pick(runnerOptions) : g.pick(sampling)
                    var k = key
                    if g.chance(8) { k = key.uppercased() }
                    if g.chance(5), let first = k.unicodeScalars.first {
                        k = String(format: "\\u%04x", first.value) + String(k.unicodeScalars.dropFirst())
                    }
                    let value = g.pick(["0", "1", "null", "true", "false", "512", "[\"x\"]", "0.5"])
                    inner.append("\"\(k)\":\(value)")
                }
                members.append(member(&g, "options", "{" + inner.joined(separator: ",") + "}"))
                if g.chance(4) { members.append(member(&g, "options", #"{"num_gpu":0}"#)) }
            }
            if g.chance(20) { members.append(member(&g, "shift", g.pick(["true", "false", "null"]))) }
            if g.chance(20) {
                members.append(member(&g, "template", g.pick(["null", "\"\"", "\"{{.Prompt}}\"", "\"\\u0000\"", "5"])))
            }
            if g.chance(5) { members.append(member(&g, "template", "\"x\"")) }
            if g.chance(20) { members.append(member(&g, "raw", "true")) }
            if g.chance(20) { members.append(member(&g, "system", "\"be brief\"")) }
        case .messages, .responses:
            members.append(#""max_tokens":10"#)
            var tools: [String] = []
            for _ in 0..<g.next(3) {
                let type = g.pick(["\"custom\"", "\"function\"", "\"web_search_20250305\"", "\"web_search\"",
                                   "\" web_search\"", "\"WEB_SEARCH\"", "null", "\"web\\u005fsearch\""])
                if g.chance(15) {
                    tools.append("{\"type\":\"namespace\",\"name\":\"n\",\"tools\":[{\"type\":\(type),\"name\":\"f\"}]}")
                } else {
                    tools.append("{" + member(&g, "type", type) + ",\"name\":\"f\"}")
                }
            }
            members.append(member(&g, "tools", "[" + tools.joined(separator: ",") + "]"))
            if g.chance(4) { members.append(member(&g, "tools", #"[{"type":"web_search"}]"#)) }
        default:
            break
        }
        members.shuffle(using: &g)
        return "{" + members.joined(separator: ",") + "}"
    }

    /// A body `BodyRewrite.override` lets through without permissions must, as Go reads it once rewritten for a user
    /// who may not override (`GenerationLimits.pinned`, no caps), hold no options key but sampling ones, not even
    /// as null (Ollama tests some runner options by presence), no `shift`, no `template` and no web-search tool.
    @Test func bodiesLetThroughCarryNoOverrideAsGoReadsThem() throws {
        guard let binary = Self.oraclePath else {
            if Self.mustRun { Issue.record("the Go oracle is missing: build it as .ci/run does") }
            return
        }
        let oracle = try OracleProcess(binary: binary)
        defer { oracle.stop() }
        var g = Generator(state: 0x5151_7E57_0000_0001)
        var accepted = 0, refused = 0, goSawOverride = 0
        let allowed = Set(Self.sampling)
        for (route, path) in Self.paths where route != .chatCompletions && route != .completions {
            for _ in 0..<150 {
                let body = Self.overrideBody(&g, route: route)
                let verdict = BodyRewrite.override(in: Array(body.utf8), route: route, overrides: false, webSearch: false)
                let report = try oracle.read(path, body)
                let gen = try #require(report["generation"] as? [String: Any], "\(report)")
                let keys = gen["option_keys"] as? [String] ?? []
                let overriding = keys.contains { !allowed.contains($0) && $0 != "num_ctx" }
                    || gen["shift"] is Bool || (gen["template"] as? String ?? "") != ""
                    || gen["web_search"] as? Bool == true
                let goError = gen["error"] as? String
                if overriding && goError == nil { goSawOverride += 1 }
                switch verdict {
                case .success(nil):
                    accepted += 1
                    if goError == nil { #expect(!overriding, "\(path) \(body): \(gen)") }
                    guard case .success(let plan) = BodyRewrite.plan(Array(body.utf8), route: route,
                                                                     limits: GenerationLimits(pinned: true),
                                                                     countUsage: false) else { break }
                    let sent = plan.body.map { String(decoding: $0, as: UTF8.self) } ?? body
                    let after = try #require(try oracle.read(path, sent)["generation"] as? [String: Any])
                    if after["error"] == nil {
                        let present = after["present_option_keys"] as? [String] ?? []
                        #expect(present.allSatisfy { allowed.contains($0) }, "\(path) \(sent): \(after)")
                    }
                default:
                    refused += 1
                }
            }
        }
        #expect(accepted > 150 && refused > 150 && goSawOverride > 100,
                "accepted \(accepted), refused \(refused), overriding in Go \(goSawOverride)")
    }
}

extension InferenceRoute {
    var usesOptions: Bool { [.generate, .chat, .embed, .embeddings].contains(self) }
}

extension OracleBodyRewriteTests.Generator: RandomNumberGenerator {
    mutating func next() -> UInt64 {
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return state
    }
}

/// The oracle as a child process on 127.0.0.1:PORT (read from its first line), asked over plain HTTP.
final class OracleProcess {
    let process = Process()
    let port: UInt16

    init(binary: String) throws {
        let pipe = Pipe()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["-listen", "127.0.0.1:0"]
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        try process.run()
        var text = ""
        while !text.contains("\n") {
            let data = pipe.fileHandleForReading.availableData
            if data.isEmpty { break }
            text += String(decoding: data, as: UTF8.self)
        }
        guard let match = text.range(of: #"http://127\.0\.0\.1:(\d+)"#, options: .regularExpression),
              let port = UInt16(text[match].split(separator: ":").last ?? "") else {
            process.terminate()
            throw OracleError(message: "the oracle did not say where it listens: \(text)")
        }
        self.port = port
    }

    struct OracleError: Error {
        var message: String
    }

    /// POSTs `body` to `path` and returns the oracle's report.
    func read(_ path: String, _ body: String) throws -> [String: Any] {
        let client = HTTPClient(try PlainStream(port: port))
        defer { client.close() }
        let request = "POST \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nContent-Type: application/json\r\n"
            + "Content-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)"
        let response = try client.exchange(request)
        guard let object = (try? JSONSerialization.jsonObject(with: Data(response.body))) as? [String: Any] else {
            throw OracleError(message: "not a report: \(response.text)")
        }
        return object
    }

    func stop() {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }
}
