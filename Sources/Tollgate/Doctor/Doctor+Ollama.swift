import TollgateIO

extension Doctor {
    /// A model as `/api/tags` lists it.
    public struct PulledModel: Sendable, Equatable {
        /// Its name ("mistral:7b").
        public var name: String
        /// Its size on disk in bytes (about what loading it takes in memory).
        public var size: UInt64
    }

    /// Each upstream: answering, its version, its models; then whether the expected models are among them.
    func ollamaChecks() -> (checks: [DoctorCheck], models: [PulledModel]) {
        var checks: [DoctorCheck] = []
        var models: [PulledModel] = []
        var anyAnswered = false
        let timeout = subject.timeoutMillis
        for backend in subject.config.upstreams {
            let upstream = backend.address
            let name = "ollama http://\(upstream.hostHeader)"
            let fix = "is Ollama running? systemctl status ollama; journalctl -u ollama -e; "
                + "does upstream name the address it listens on (OLLAMA_HOST)?"
            let version: String
            switch host.fetch(upstream.address, host: upstream.hostHeader, path: "/api/version", timeoutMillis: timeout) {
            case .failed(let reason):
                checks.append(DoctorCheck(name, .fail, "no answer from \(upstream.address): \(reason)", fix: fix))
                continue
            case .response(let status, let body):
                guard status == 200, let v = DoctorJSON.parse(body)?["version"]?.stringValue else {
                    let why = status == 403 ? " (Ollama's Host or Origin check refused it)" : ""
                    checks.append(DoctorCheck(name, .fail, "GET /api/version answered \(status)\(why), not Ollama's "
                                              + "{\"version\": ...}", fix: fix))
                    continue
                }
                version = v
            }
            anyAnswered = true
            switch host.fetch(upstream.address, host: upstream.hostHeader, path: "/api/tags", timeoutMillis: timeout) {
            case .failed(let reason):
                checks.append(DoctorCheck(name, .fail, "version \(version), but GET /api/tags failed: \(reason)", fix: fix))
            case .response(let status, let body):
                guard status == 200, let list = DoctorJSON.parse(body)?["models"]?.arrayValue else {
                    checks.append(DoctorCheck(name, .fail, "version \(version), but GET /api/tags answered \(status)",
                                              fix: fix))
                    continue
                }
                let found = list.compactMap { item -> PulledModel? in
                    guard let n = item["name"]?.stringValue ?? item["model"]?.stringValue else { return nil }
                    return PulledModel(name: n, size: UInt64(max(0, item["size"]?.numberValue ?? 0)))
                }
                models += found
                let names = found.isEmpty ? "no models pulled" : "\(found.count) model(s): "
                    + found.map(\.name).joined(separator: ", ")
                checks.append(DoctorCheck(name, .ok, "version \(version), \(names)"))
            }
        }
        if anyAnswered { checks.append(modelsCheck(models)) }
        return (checks, models)
    }

    /// The models that should be there: given on the command line, else the `model-allow` list, else `mistral`.
    var expectedModels: (names: [String], configured: Bool) {
        if !subject.expectedModels.isEmpty { return (subject.expectedModels, true) }
        let allowed = subject.config.modelAllowlist.filter { !$0.contains("*") }.sorted()
        if !allowed.isEmpty { return (allowed, true) }
        return (["mistral"], false)
    }

    /// Whether every expected model is pulled; a name without a tag is found under any tag.
    func modelsCheck(_ models: [PulledModel]) -> DoctorCheck {
        let (expected, configured) = expectedModels
        let pulled = models.map { ModelName.normalize($0.name) }
        let missing = expected.filter { want in
            let normalized = ModelName.normalize(want)
            if want.contains(":") { return !pulled.contains(normalized) }
            let base = normalized.split(separator: ":").first.map(String.init) ?? normalized
            return !pulled.contains { $0 == normalized || $0.hasPrefix(base + ":") }
        }
        guard !missing.isEmpty else {
            return DoctorCheck("models", .ok, expected.joined(separator: ", ") + " pulled")
        }
        let fix = missing.map { "ollama pull \($0)" }.joined(separator: "; ")
        if configured {
            return DoctorCheck("models", .fail, "not pulled: " + missing.joined(separator: ", ")
                               + " (requests for it get 404)", fix: fix)
        }
        return DoctorCheck("models", .warn, "mistral is not pulled"
                           + (models.isEmpty ? " (no models at all)" : ""), fix: fix
                           + " (or name the models you serve: tollgate doctor --model NAME, or set model-allow)")
    }
}
