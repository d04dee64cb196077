extension UserPolicy {
    /// The keys a `policy` line may set, in the order check-config prints them.
    public static let keys = ["tokens-per-day", "tokens-per-month", "requests-per-day", "models", "max-inflight", "rate",
                              "cloud-models", "max-context", "max-predict", "keep-alive", "model-overrides"]

    /// The longest `keep-alive` cap (a year): Ollama turns `keep_alive` seconds into a Go `time.Duration`, which
    /// overflows past about 292 years and then reads as negative, that is forever.
    public static let maxKeepAliveSeconds = 365 * 86400

    /// Reads one `policy` line: `USER key=value …` or `* key=value …` (the subject, then at least one key, each once,
    /// separated by blanks). The error is the message without location; it names the bad key and value.
    static func parse(line: String) -> Result<(subject: String, policy: UserPolicy), SettingValueError> {
        let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        guard let subject = words.first, !subject.contains("=") else {
            return .failure(SettingValueError("expected \"USER key=value …\" or \"* key=value …\", got \(line.debugDescription)"))
        }
        guard words.count > 1 else {
            return .failure(SettingValueError("the policy for \(subject) sets nothing (keys: \(keys.joined(separator: ", ")))"))
        }
        var policy = UserPolicy()
        var seen: Set<String> = []
        for word in words.dropFirst() {
            guard let equals = word.firstIndex(of: "="), equals != word.startIndex else {
                return .failure(SettingValueError("expected key=value, got \(word.debugDescription)"))
            }
            let key = String(word[..<equals])
            let value = String(word[word.index(after: equals)...])
            guard keys.contains(key) else {
                return .failure(SettingValueError("unknown key \(key.debugDescription) (keys: \(keys.joined(separator: ", ")))"))
            }
            guard seen.insert(key).inserted else {
                return .failure(SettingValueError("\(key) is set twice"))
            }
            if let problem = policy.set(key, value) {
                return .failure(SettingValueError("\(key)=\(value): \(problem)"))
            }
        }
        return .success((subject, policy))
    }

    /// Sets `key` from `value`; the problem, or nil.
    private mutating func set(_ key: String, _ value: String) -> String? {
        switch key {
        case "tokens-per-day": return UserPolicy.limit(value, 0...Int(Int32.max) * 1024).map { tokensPerDay = $0 }.problem
        case "tokens-per-month": return UserPolicy.limit(value, 0...Int(Int32.max) * 1024).map { tokensPerMonth = $0 }.problem
        case "requests-per-day": return UserPolicy.limit(value, 0...1_000_000_000).map { requestsPerDay = $0 }.problem
        case "max-inflight": return UserPolicy.limit(value, 1...100_000).map { maxInflight = $0 }.problem
        case "max-context": return UserPolicy.limit(value, 1...(1 << 24)).map { maxContext = $0 }.problem
        case "max-predict": return UserPolicy.limit(value, 1...(1 << 24)).map { maxPredict = $0 }.problem
        case "keep-alive":
            if value == "off" { keepAliveSeconds = .off; return nil }
            guard let seconds = UserPolicy.durationSeconds(value) else {
                return "expected a duration such as 300, 30s, 5m or 1h (or off)"
            }
            guard seconds <= UserPolicy.maxKeepAliveSeconds else {
                return "at most 8760h (a year; off for no cap)"
            }
            // Ollama takes the model's expiry from the latest request, and a user who may not override gets this
            // value on every request that sends one: 0 would unload the model every user shares.
            guard seconds >= 1 else {
                return "at least 1s (0 unloads the model every user shares after each request; off for no cap)"
            }
            keepAliveSeconds = .at(seconds)
            return nil
        case "rate":
            if value == "off" { rate = 0; return nil }
            switch SettingKind.double(0...1_000_000).parseScalar(value) {
            case .success(.double(let d)): rate = d; return nil
            case .failure(let e): return e.message + " (requests per second, as user-rate; 0 or off: none)"
            default: return "expected a number"
            }
        case "cloud-models":
            guard let choice = CloudModels(rawValue: value) else { return "expected off, admins or all" }
            cloudModels = choice
            return nil
        case "model-overrides":
            guard let choice = ModelOverrides(rawValue: value) else { return "expected refuse or allow" }
            modelOverrides = choice
            return nil
        case "models":
            if value == "*" { models = []; return nil }
            let names = value.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            guard !names.contains("") else { return "empty model name (models=a,b; * for every model)" }
            models = Set(names)
            return nil
        default:
            return "unknown key"
        }
    }

    /// A whole number in `range`, or `off`.
    private static func limit(_ text: String, _ range: ClosedRange<Int>) -> Result<PolicyLimit, SettingValueError> {
        if text == "off" { return .success(.off) }
        switch SettingKind.int(range).parseScalar(text) {
        case .success(.int(let n)): return .success(.at(n))
        case .failure(let e): return .failure(SettingValueError(e.message + " (or off)"))
        default: return .failure(SettingValueError("expected an integer"))
        }
    }

    /// Seconds in `300`, `30s`, `5m`, `1h`, `1h30m` (Go's units as Ollama's keep_alive takes them, whole seconds and
    /// up); nil for anything else, negatives included (a cap is never "forever": that is `off`).
    static func durationSeconds(_ text: String) -> Int? {
        if let n = Int(text), n >= 0 { return n }
        var total = 0
        var number = 0
        var digits = 0
        for ch in text {
            if let d = ch.wholeNumberValue, ch.isASCII {
                number = number * 10 + d
                digits += 1
                guard number < 1 << 40 else { return nil }
                continue
            }
            guard digits > 0 else { return nil }
            switch ch {
            case "s": total += number
            case "m": total += number * 60
            case "h": total += number * 3600
            default: return nil
            }
            // Far past any cap: stop before a long line of large parts could overflow.
            guard total < 1 << 50 else { return nil }
            number = 0
            digits = 0
        }
        guard digits == 0, !text.isEmpty else { return nil }
        return total
    }

    /// The line as check-config prints it: every key set, in `keys` order.
    public var summary: String {
        var parts: [String] = []
        func limit(_ key: String, _ v: PolicyLimit?) {
            guard let v else { return }
            parts.append("\(key)=\(v.value.map(String.init) ?? "off")")
        }
        limit("tokens-per-day", tokensPerDay)
        limit("tokens-per-month", tokensPerMonth)
        limit("requests-per-day", requestsPerDay)
        if let models { parts.append("models=\(models.isEmpty ? "*" : models.sorted().joined(separator: ","))") }
        limit("max-inflight", maxInflight)
        if let rate { parts.append("rate=\(rate == 0 ? "off" : SettingValue.format(rate))") }
        if let cloudModels { parts.append("cloud-models=\(cloudModels.rawValue)") }
        limit("max-context", maxContext)
        limit("max-predict", maxPredict)
        if let keepAliveSeconds { parts.append("keep-alive=\(keepAliveSeconds.value.map { "\($0)s" } ?? "off")") }
        if let modelOverrides { parts.append("model-overrides=\(modelOverrides.rawValue)") }
        return parts.isEmpty ? "(no limits of its own)" : parts.joined(separator: " ")
    }
}

private extension Result where Success == Void, Failure == SettingValueError {
    /// The message of a failure, nil for success.
    var problem: String? {
        if case .failure(let e) = self { return e.message }
        return nil
    }
}
