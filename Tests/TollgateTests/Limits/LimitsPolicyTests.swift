import Synchronization
import Testing
import TollgateTestSupport
@testable import Tollgate

/// `policy` lines: every key, bad values named with their place, the `*` line under a user's own, reloads.
@Suite struct LimitsPolicyTests {
    private func table(_ lines: [String]) throws -> PolicyTable {
        try ServerConfig(resolved: ConfigResolver.resolve(flags: ["policy": lines], environment: [:], file: nil),
                         cores: 1).policies
    }

    private func problems(_ file: String) -> [String] {
        do {
            let parsed = try ConfigFile.parse(text: file, path: "tollgate.conf")
            _ = try ServerConfig(resolved: ConfigResolver.resolve(flags: [:], environment: [:], file: parsed), cores: 1)
            return []
        } catch {
            return error.problems.map(\.description)
        }
    }

    @Test func everyKeyIsRead() throws {
        let t = try table(["alice tokens-per-day=1000 tokens-per-month=20000 requests-per-day=50 models=mistral:7b,llama3 "
                           + "max-inflight=3 rate=2.5 cloud-models=all max-context=4096 max-predict=512 keep-alive=1h30m "
                           + "model-overrides=allow"])
        let p = t.policy(for: "alice")
        #expect(p.tokensPerDay == .at(1000))
        #expect(p.tokensPerMonth == .at(20000))
        #expect(p.requestsPerDay == .at(50))
        #expect(p.models == ["mistral:7b", "llama3"])
        #expect(p.maxInflight == .at(3))
        #expect(p.rate == 2.5)
        #expect(p.cloudModels == .all)
        #expect(p.maxContext == .at(4096))
        #expect(p.maxPredict == .at(512))
        #expect(p.keepAliveSeconds == .at(5400))
        #expect(p.modelOverrides == .allow)
        #expect(p.summary.hasSuffix("keep-alive=5400s model-overrides=allow"))
        #expect(p.quotaLimits == QuotaLimits(tokensPerDay: 1000, tokensPerMonth: 20000, requestsPerDay: 50))
    }

    @Test func aUsersLineOverridesTheStarLineKeyByKey() throws {
        let t = try table(["* tokens-per-day=1000 max-predict=256 models=mistral:7b",
                           "alice tokens-per-day=off max-predict=1024",
                           "bob models=*"])
        #expect(t.policy(for: "alice").tokensPerDay == .off)
        #expect(t.policy(for: "alice").quotaLimits.tokensPerDay == nil)
        #expect(t.policy(for: "alice").maxPredict == .at(1024))
        #expect(t.policy(for: "alice").models == ["mistral:7b"])
        #expect(t.policy(for: "bob").models == [])
        #expect(t.policy(for: "bob").tokensPerDay == .at(1000))
        #expect(t.policy(for: "carol") == t.everyone)
        #expect(t.policy(for: nil) == t.everyone)
        #expect(t.summaryLines == ["* tokens-per-day=1000 models=mistral:7b max-predict=256",
                                   "alice tokens-per-day=off models=mistral:7b max-predict=1024",
                                   "bob tokens-per-day=1000 models=* max-predict=256"])
    }

    @Test func durationsAndOff() {
        #expect(UserPolicy.durationSeconds("300") == 300)
        #expect(UserPolicy.durationSeconds("30s") == 30)
        #expect(UserPolicy.durationSeconds("5m") == 300)
        #expect(UserPolicy.durationSeconds("2h") == 7200)
        #expect(UserPolicy.durationSeconds("-1") == nil)
        #expect(UserPolicy.durationSeconds("5x") == nil)
        #expect(UserPolicy.durationSeconds("m") == nil)
        #expect(UserPolicy.durationSeconds("5m3") == nil)
        #expect(UserPolicy.durationSeconds("8760h") == UserPolicy.maxKeepAliveSeconds)
        // Many large parts stop early instead of overflowing.
        #expect(UserPolicy.durationSeconds(String(repeating: "1099511627775h", count: 3000)) == nil)
        guard case .success(let (_, p)) = UserPolicy.parse(line: "* keep-alive=off rate=off max-inflight=off") else {
            Issue.record("did not parse")
            return
        }
        #expect(p.keepAliveSeconds == .off && p.rate == 0 && p.maxInflight == .off)
    }

    @Test(arguments: [
        ("alice tokens-per-day=lots", #"key "policy": tokens-per-day=lots: expected an integer, got "lots" (or off)"#),
        ("alice tokens-per-day=-5", "tokens-per-day=-5: -5 is out of range"),
        ("alice requests-per-day=1.5", "requests-per-day=1.5: expected an integer"),
        ("alice max-inflight=0", "max-inflight=0: 0 is out of range (1...100000) (or off)"),
        ("alice rate=fast", "rate=fast: expected a number"),
        ("alice cloud-models=maybe", "cloud-models=maybe: expected off, admins or all"),
        ("alice models=a,,b", "models=a,,b: empty model name"),
        ("alice keep-alive=forever", "keep-alive=forever: expected a duration"),
        // Ollama's Go duration overflows past ~292 years (and reads as forever): a cap is at most a year.
        ("alice keep-alive=8761h", "keep-alive=8761h: at most 8760h"),
        ("alice keep-alive=9300000000", "keep-alive=9300000000: at most 8760h"),
        ("alice keep-alive=0", "keep-alive=0: at least 1s"),
        ("alice keep-alive=0s", "keep-alive=0s: at least 1s"),
        ("alice model-overrides=yes", "model-overrides=yes: expected refuse or allow"),
        ("alice max-context=0", "max-context=0: 0 is out of range"),
        ("alice max-predict=x", "max-predict=x: expected an integer"),
        ("alice tokens=5", #"unknown key "tokens" (keys: tokens-per-day"#),
        ("alice tokens-per-day", #"expected key=value, got "tokens-per-day""#),
        ("alice", "the policy for alice sets nothing"),
        ("tokens-per-day=5", #"expected "USER key=value …""#),
        ("alice rate=1 rate=2", "rate is set twice"),
    ])
    func aBadLineNamesTheFileLineKeyAndValue(line: String, message: String) {
        let found = problems("# policies\nrealm = x\npolicy = \(line)\n")
        #expect(found.count == 1, "\(found)")
        #expect(found.first?.hasPrefix("tollgate.conf:3: key \"policy\": ") == true, "\(found)")
        #expect(found.first?.contains(message) == true, "\(found)")
    }

    @Test func eachLineIsReadWholeCommasIncludedAndErrorsNameTheirOwnLine() throws {
        let file = try ConfigFile.parse(text: "policy = * models=a,b max-predict=64\npolicy = alice models=c, d\npolicy = bob max-predict=0\n",
                                        path: "p.conf")
        let resolved = try ConfigResolver.resolve(flags: [:], environment: [:], file: file)
        #expect(resolved.list("policy") == ["* models=a,b max-predict=64", "alice models=c, d", "bob max-predict=0"])
        let found = problems("policy = * models=a,b\npolicy = alice rate=1\npolicy = bob max-predict=0\npolicy = alice models=c\n")
        #expect(found == ["tollgate.conf:3: key \"policy\": max-predict=0: 0 is out of range (1...16777216) (or off)",
                          "tollgate.conf:4: key \"policy\": a second policy line for alice (one line per user)"])
    }

    @Test func aBadFlagOrVariableIsNamed() throws {
        do {
            _ = try ServerConfig(resolved: ConfigResolver.resolve(flags: ["policy": ["* rate=x"]], environment: [:], file: nil), cores: 1)
            Issue.record("accepted")
        } catch {
            #expect(error.description.hasPrefix("--policy: rate=x: expected a number"), "\(error)")
        }
        let resolved = try ConfigResolver.resolve(flags: [:], environment: ["TOLLGATE_POLICY": "* models=a,b; alice max-predict=9"], file: nil)
        #expect(resolved.list("policy") == ["* models=a,b", "alice max-predict=9"])
    }

    @Test func aReloadAppliesNewPolicies() throws {
        let old = try ServerConfig(resolved: ConfigResolver.resolve(flags: ["policy": ["alice tokens-per-day=10"]],
                                                                    environment: [:], file: nil), cores: 1)
        let new = try ServerConfig(resolved: ConfigResolver.resolve(flags: ["policy": ["alice tokens-per-day=20"]],
                                                                    environment: [:], file: nil), cores: 1)
        let (merged, needRestart) = old.reloaded(to: new)
        #expect(needRestart.isEmpty)
        #expect(merged.policies.policy(for: "alice").tokensPerDay == .at(20))
    }

    @Test func cloudModelsAndTheAllowListFollowTheUsersPolicy() throws {
        var config = ServerConfig()
        config.cloudModels = .off
        config.policies = try table(["alice cloud-models=all"])
        let policy = CloudModel.Policy(config)
        #expect(policy.refusal("gpt-oss:120b-cloud", user: "alice") == nil)
        #expect(policy.refusal("gpt-oss:120b-cloud", user: "bob")?.status == 403)
        // Everyone may, except a user whose line says otherwise: the path check stays on for them.
        config.cloudModels = .all
        #expect(CloudModel.Policy.anyoneAll(config))
        config.policies = try table(["bob cloud-models=off"])
        #expect(!CloudModel.Policy.anyoneAll(config))
        #expect(CloudModel.Policy(config).refusal("x:cloud", user: "bob")?.status == 403)
        #expect(CloudModel.Policy(config).refusal("x:cloud", user: "alice") == nil)
    }
}

/// A policy's `max-inflight` replaces `max-inflight-per-user` for its user in the concurrency limiter.
@Suite struct LimitsPolicyConcurrencyTests {
    @Test func aUsersOwnCapReplacesTheConfiguredOne() {
        var settings = ConcurrencyLimiter.Settings()
        settings.perUser = 1
        settings.global = 10
        let limiter = ConcurrencyLimiter(settings: settings)
        func take(_ user: String, _ cap: Int?) -> Bool {
            if case .acquired = limiter.acquire(user: user, perUser: cap, nowMillis: 0, onGranted: { _ in }, onExpired: {}) {
                return true
            }
            return false
        }
        #expect(take("alice", 3) && take("alice", 3) && take("alice", 3))
        #expect(!take("alice", 3))
        #expect(take("bob", nil))
        #expect(!take("bob", nil))
        #expect(limiter.tryAcquire(user: "carol", perUser: 2) != nil)
        #expect(limiter.tryAcquire(user: "carol", perUser: 2) != nil)
        #expect(limiter.tryAcquire(user: "carol", perUser: 2) == nil)
    }

    @Test func aQueuedRequestIsGrantedUnderItsUsersOwnCap() {
        var settings = ConcurrencyLimiter.Settings()
        settings.perUser = 1
        settings.global = 10
        let limiter = ConcurrencyLimiter(settings: settings)
        guard case .acquired(let first) = limiter.acquire(user: "alice", perUser: 1, nowMillis: 0, onGranted: { _ in },
                                                          onExpired: {}) else {
            Issue.record("not acquired")
            return
        }
        let granted = Mutex(0)
        guard case .queued = limiter.acquire(user: "alice", perUser: 1, nowMillis: 0,
                                             onGranted: { _ in granted.withLock { $0 += 1 } }, onExpired: {}) else {
            Issue.record("not queued")
            return
        }
        limiter.release(first)
        #expect(granted.withLock { $0 } == 1)
        #expect(limiter.inFlight(user: "alice") == 1)
    }
}
