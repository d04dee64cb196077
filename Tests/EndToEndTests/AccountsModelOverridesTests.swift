import Foundation
import Testing
import Tollgate

/// What a user's body may ask of the model every user shares: runner options, `shift`, `template` and an unloading
/// `keep_alive` only with `model-overrides=allow` (administrators always), Ollama's web search only with cloud use
/// allowed; for everyone else `num_ctx` and `keep_alive` pinned to the policy's caps or the server's defaults.
@Suite struct AccountsModelOverridesTests {
    static let alice = AccountsQuotaTests.alice
    static let bob = AccountsQuotaTests.bob

    static func message(_ response: Response) -> String {
        let object = (try? JSONSerialization.jsonObject(with: Data(response.body))) as? [String: Any]
        if let text = object?["error"] as? String { return text }
        return ((object?["error"] as? [String: Any])?["message"] as? String) ?? response.text
    }

    /// Runner options reload, move or un-GPU the shared model: refused for a user with no policy line at all (the
    /// safe default), naming the field and the key that allows it; nothing reaches Ollama.
    @Test func runnerOptionsShiftAndTemplateAreRefusedByDefault() throws {
        try AccountsQuotaTests.withQuotas([]) { proxy, fake, _ in
            let cases: [(String, String, String)] = [
                ("/api/generate", #"{"model":"mistral:7b","prompt":"p","options":{"num_batch":7,"num_gpu":0}}"#, "options.num_batch"),
                ("/api/chat", #"{"model":"mistral:7b","messages":[],"options":{"temperature":1,"use_mmap":false}}"#, "options.use_mmap"),
                ("/api/embed", #"{"model":"mistral:7b","input":"x","options":{"main_gpu":1}}"#, "options.main_gpu"),
                ("/api/embeddings", #"{"model":"mistral:7b","prompt":"x","options":{"num_thread":1}}"#, "options.num_thread"),
                ("/api/chat", #"{"model":"mistral:7b","messages":[],"shift":false}"#, "shift"),
                ("/api/generate", #"{"model":"mistral:7b","prompt":"p","template":"{{define \"a\"}}{{.Prompt}}{{end}}"}"#, "template"),
            ]
            for (path, body, field) in cases {
                let response = try proxy.fetch(Req.post(path, body, Self.alice))
                expectError(response, status: 400, family: .ollama)
                let text = Self.message(response)
                #expect(text.contains("\"\(field)\"") && text.contains("model-overrides=allow"), "\(path) \(body): \(text)")
            }
            #expect(fake.requests.isEmpty)
        }
    }

    /// Sampling options, `raw`, `system`, `context` and an empty `template`: forwarded as sent. `num_ctx` is not
    /// refused (clients send it on every request) but, with no `max-context`, removed: the server's default, the
    /// context the shared model is loaded with. Runner options sent as null are removed too: Ollama tells a present
    /// key from an absent one (null turns its automatic context and batch off, and keeps draft predictions on).
    @Test func samplingOptionsAndTheUsersOwnPromptPass() throws {
        try AccountsQuotaTests.withQuotas([]) { proxy, fake, _ in
            let body = #"{"model":"mistral:7b","prompt":"p","raw":true,"system":"s","context":[1,2,3],"template":"","shift":null,"#
                + #""options":{"temperature":0.2,"top_k":5,"seed":1,"stop":["x"],"num_predict":5,"mirostat":0,"num_ctx":8192,"num_gpu":null}}"#
            let response = try proxy.fetch(Req.post("/api/generate", body, Self.alice))
            #expect(response.status == 200, "\(response.text)")
            #expect(response.head.header("X-Tollgate-Lowered") == "num_ctx=default num_gpu=default")
            let sent = body.replacingOccurrences(of: #","num_ctx":8192,"num_gpu":null"#, with: "")
            #expect(fake.requests.first.map { String(decoding: $0.body, as: UTF8.self) } == sent)
        }
    }

    /// A user who may not override cannot make the shared model reload or unload: every `num_ctx` (smaller ones
    /// too: alternating values reloaded it on every request) becomes exactly `max-context`; a `keep_alive` under a
    /// second (`ollama stop` sends 0) is refused, naming the field; any other becomes the policy's `keep-alive`, or
    /// null (the server's default) without one. An administrator's body is forwarded as sent.
    @Test func contextAndKeepAliveArePinnedForUsersWhoMayNotOverride() throws {
        try AccountsQuotaTests.withQuotas(["alice max-context=4096 keep-alive=10m"], configure: { $0.admins = ["bob"] }) { proxy, fake, _ in
            for ctx in [512, 8192, 2048, 4096] {
                let body = #"{"model":"mistral:7b","prompt":"p","options":{"num_ctx":\#(ctx)}}"#
                let response = try proxy.fetch(Req.post("/api/generate", body, Self.alice))
                #expect(response.status == 200, "\(response.text)")
                #expect(response.head.header("X-Tollgate-Lowered") == (ctx == 4096 ? nil : "num_ctx=4096"))
            }
            #expect(fake.requests.allSatisfy { String(decoding: $0.body, as: UTF8.self).contains(#""num_ctx":4096"#) })
            for keep in ["0", #""0s""#, "0.5", #""500ms""#, "-0", #""0h0m""#] {
                let body = #"{"model":"mistral:7b","prompt":"","keep_alive":\#(keep)}"#
                let response = try proxy.fetch(Req.post("/api/generate", body, Self.alice))
                expectError(response, status: 400, family: .ollama)
                #expect(Self.message(response).contains(#""keep_alive""#), "\(keep): \(Self.message(response))")
            }
            #expect(fake.requests.count == 4)
            for keep in ["1", #""1m""#, "-1", #""24h""#] {
                let response = try proxy.fetch(Req.post("/api/chat", #"{"model":"mistral:7b","messages":[],"keep_alive":\#(keep)}"#, Self.alice))
                #expect(response.status == 200, "\(response.text)")
                let sent = fake.requests.last.map { String(decoding: $0.body, as: UTF8.self) } ?? ""
                #expect(sent.contains(#""keep_alive":600"#), "\(keep): \(sent)")
            }
            let same = try proxy.fetch(Req.post("/api/chat", #"{"model":"mistral:7b","messages":[],"keep_alive":"10m"}"#, Self.alice))
            #expect(same.status == 200 && same.head.header("X-Tollgate-Lowered") == "num_ctx=4096")
            let admin = #"{"model":"mistral:7b","prompt":"","keep_alive":0,"options":{"num_ctx":512}}"#
            #expect(try proxy.fetch(Req.post("/api/generate", admin, Self.bob)).status == 200)
            #expect(fake.requests.last.map { String(decoding: $0.body, as: UTF8.self) } == admin)
        }
        // No caps: the server's defaults.
        try AccountsQuotaTests.withQuotas([]) { proxy, fake, _ in
            let response = try proxy.fetch(Req.post("/api/embed", #"{"model":"mistral:7b","input":"x","keep_alive":"1h","options":{"num_ctx":262144}}"#, Self.alice))
            #expect(response.status == 200, "\(response.text)")
            #expect(response.head.header("X-Tollgate-Lowered") == "num_ctx=default keep_alive=default")
            #expect(fake.requests.last.map { String(decoding: $0.body, as: UTF8.self) }
                    == #"{"model":"mistral:7b","input":"x","keep_alive":null,"options":{}}"#)
            // Null runner options and a null num_ctx go, whatever their place; the rest stays as sent.
            let nulls = #"{"model":"mistral:7b","prompt":"p","options":{"draft_num_predict":null, "seed": 1 ,"num_batch":null,"num_ctx":null}}"#
            #expect(try proxy.fetch(Req.post("/api/generate", nulls, Self.alice)).status == 200)
            #expect(fake.requests.last.map { String(decoding: $0.body, as: UTF8.self) }
                    == #"{"model":"mistral:7b","prompt":"p","options":{"seed": 1}}"#)
        }
    }

    @Test func adminsAndUsersAllowedByTheirPolicyMayOverride() throws {
        try AccountsQuotaTests.withQuotas(["* model-overrides=allow", "alice model-overrides=refuse"],
                                          configure: { $0.admins = ["alice"] }) { proxy, fake, _ in
            let body = #"{"model":"mistral:7b","prompt":"p","shift":false,"options":{"num_gpu":0,"num_ctx":1024}}"#
            // An administrator is allowed whatever her line says; bob by the `*` line.
            for user in [Self.alice, Self.bob] {
                let response = try proxy.fetch(Req.post("/api/generate", body, user))
                #expect(response.status == 200, "\(response.text)")
            }
            #expect(fake.requests.count == 2)
            #expect(fake.requests.allSatisfy { String(decoding: $0.body, as: UTF8.self) == body })
        }
        try AccountsQuotaTests.withQuotas(["bob model-overrides=allow"]) { proxy, _, _ in
            let body = #"{"model":"mistral:7b","prompt":"p","options":{"num_gpu":0}}"#
            #expect(try proxy.fetch(Req.post("/api/generate", body, Self.bob)).status == 200)
            expectError(try proxy.fetch(Req.post("/api/generate", body, Self.alice)), status: 400, family: .ollama)
        }
    }

    /// With authentication off there are no users to tell apart (as with admin routes): overrides pass, unless the
    /// `*` line refuses them.
    @Test func withAuthenticationOffOnlyTheStarLineRefuses() throws {
        let body = #"{"model":"mistral:7b","prompt":"p","options":{"num_gpu":0}}"#
        try AccountsQuotaTests.withQuotas([], configure: { $0.users = nil }) { proxy, _, _ in
            let response = try proxy.fetch(Req.post("/api/generate", body))
            #expect(response.status == 200, "\(response.text)")
        }
        try AccountsQuotaTests.withQuotas(["* model-overrides=refuse"], configure: { $0.users = nil }) { proxy, _, _ in
            let response = try proxy.fetch(Req.post("/api/generate", body))
            expectError(response, status: 400, family: .ollama)
        }
    }

    /// A key Go would match to `options`, `shift` or `template` without it being spelled so, or one given twice
    /// (Go merges two `options` objects), is refused rather than guessed at.
    @Test func ambiguousSpellingsAreRefused() throws {
        try AccountsQuotaTests.withQuotas([]) { proxy, fake, _ in
            for body in [#"{"model":"mistral:7b","prompt":"p","Options":{"num_gpu":0}}"#,
                         #"{"model":"mistral:7b","prompt":"p","options":{"seed":1},"options":{"num_gpu":0}}"#,
                         #"{"model":"mistral:7b","prompt":"p","SHIFT":false}"#,
                         #"{"model":"mistral:7b","prompt":"p","\u0074emplate":"{{.Prompt}}"}"#,
                         #"{"model":"mistral:7b","prompt":"p","options":{"NUM_GPU":0}}"#] {
                expectError(try proxy.fetch(Req.post("/api/generate", body, Self.alice)), status: 400, family: .ollama)
            }
            #expect(fake.requests.isEmpty)
        }
    }

    /// `max-context` makes `num_ctx` a setting rather than an override, and a body without one gets it too: Ollama's
    /// own default is sized from the GPU's memory (up to the model's whole training context).
    @Test func maxContextIsSetWhereTheBodyHasNoNumCtx() throws {
        try AccountsQuotaTests.withQuotas(["alice max-context=2048"]) { proxy, fake, _ in
            let plain = try proxy.fetch(Req.post("/api/generate", #"{"model":"mistral:7b","prompt":"p"}"#, Self.alice))
            #expect(plain.status == 200, "\(plain.text)")
            #expect(plain.head.header("X-Tollgate-Lowered") == "num_ctx=2048")
            let chat = try proxy.fetch(Req.post("/api/chat", #"{"model":"mistral:7b","messages":[],"options":{"temperature":1}}"#, Self.alice))
            #expect(chat.status == 200, "\(chat.text)")
            let asked = try proxy.fetch(Req.post("/api/embed", #"{"model":"mistral:7b","input":"x","options":{"num_ctx":512}}"#, Self.alice))
            #expect(asked.status == 200, "\(asked.text)")
            #expect(asked.head.header("X-Tollgate-Lowered") == "num_ctx=2048")
            let sent = fake.requests.map { String(decoding: $0.body, as: UTF8.self) }
            #expect(sent == [#"{"options":{"num_ctx":2048},"model":"mistral:7b","prompt":"p"}"#,
                             #"{"model":"mistral:7b","messages":[],"options":{"num_ctx":2048,"temperature":1}}"#,
                             #"{"model":"mistral:7b","input":"x","options":{"num_ctx":2048}}"#], "\(sent)")
        }
    }

    /// Ollama's web search runs through ollama.com with the server's key: refused unless cloud use is allowed.
    @Test func webSearchToolsNeedCloudUse() throws {
        let messages = #"{"model":"mistral:7b","max_tokens":10,"messages":[{"role":"user","content":"hi"}],"tools":[{"type":"web_search_20250305","name":"web_search","max_uses":3}]}"#
        let responses = #"{"model":"mistral:7b","input":"hi","tools":[{"type":"function","name":"f","parameters":{}},{"type":"web_search"}]}"#
        try AccountsQuotaTests.withQuotas(["alice cloud-models=all"], configure: { $0.cloudModels = .admins }) { proxy, fake, _ in
            let refused = try proxy.fetch(Req.post("/v1/messages", messages, Self.bob))
            expectError(refused, status: 403, family: .anthropic)
            #expect(Self.message(refused).contains("web_search_20250305"), "\(refused.text)")
            expectError(try proxy.fetch(Req.post("/v1/responses", responses, Self.bob)), status: 403, family: .openAI)
            #expect(fake.requests.isEmpty)
            // Alice's line allows the cloud: her tools go to Ollama.
            #expect(try proxy.fetch(Req.post("/v1/messages", messages, Self.alice)).status != 403)
            #expect(try proxy.fetch(Req.post("/v1/responses", responses, Self.alice)).status != 403)
            #expect(fake.requests.count == 2)
        }
    }

    /// The review's proof of concept, now the safe behaviour: the body keeps no runner option unseen, and a
    /// missing `num_ctx` is given the cap.
    @Test func absentNumCtxIsCappedAndReloadingOptionsAreFound() throws {
        let body = Array(#"{"model":"m","prompt":"p","shift":false,"options":{"num_batch":7,"num_gpu":0,"use_mmap":false,"num_thread":1}}"#.utf8)
        let plan = try BodyRewrite.plan(body, route: .generate, limits: GenerationLimits(maxContext: 2048, maxPredict: 64),
                                        countUsage: true).get()
        let sent = String(decoding: plan.body ?? body, as: UTF8.self)
        #expect(sent.contains(#""num_ctx":2048"#), "\(sent)")
        let found = try BodyRewrite.override(in: body, route: .generate, overrides: false, webSearch: true).get()
        #expect(found == .modelOverride(field: "options.num_batch"))
        #expect(try BodyRewrite.override(in: body, route: .generate, overrides: true, webSearch: true).get() == nil)
    }
}

/// check-config says who may send model overrides, and refuses a `keep-alive` cap Ollama could not hold.
@Suite struct AccountsModelOverridesCheckConfigTests {
    @Test func checkConfigSaysWhoMayOverride() throws {
        let dir = try OpsTempDirectory()
        let users = dir.file("users.htpasswd")
        try "alice:{PLAIN}x\nbob:{PLAIN}y\n".write(toFile: users, atomically: true, encoding: .utf8)
        let plain = CLI.run(["check-config", "--listen-plain", "127.0.0.1:1", "--users", users, "--metrics-listen", "off"])
        #expect(plain.status == 0, "\(plain)")
        #expect((plain.stdout + plain.stderr).contains("model-overrides (runner options, shift, template): refused except for administrators"),
                "\(plain)")
        let run = CLI.run(["check-config", "--listen-plain", "127.0.0.1:1", "--users", users, "--metrics-listen", "off",
                           "--policy", "bob model-overrides=allow"])
        let text = run.stdout + run.stderr
        #expect(text.contains("policy bob model-overrides=allow"), "\(text)")
        #expect(text.contains("refused except for administrators; allowed for bob"), "\(text)")
    }

    /// Ollama turns `keep_alive` into a Go duration, which overflows past ~292 years into "forever".
    @Test func aKeepAliveCapPastAYearIsNamedWithItsLine() throws {
        let dir = try OpsTempDirectory()
        let conf = dir.file("tollgate.conf")
        try "listen-plain = 127.0.0.1:1\nmetrics-listen = off\npolicy = * keep-alive=2562048h\n"
            .write(toFile: conf, atomically: true, encoding: .utf8)
        let run = CLI.run(["check-config", "--config", conf])
        #expect(run.status != 0, "\(run)")
        #expect(run.stderr.contains("\(conf):3: key \"policy\": keep-alive=2562048h: at most 8760h"), "\(run)")
    }
}
