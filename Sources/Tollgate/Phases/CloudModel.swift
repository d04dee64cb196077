/// Models Ollama does not run itself but forwards to ollama.com, signed with the server's own key and billed to the
/// server owner's account.
///
/// Ollama's rule (its model-reference parser): trim Unicode white space; take the text after the last `:`, trim it
/// too, lower-case it; `cloud` is a cloud model, and so is a tag ending in `-cloud`; a name without `:` is not.
/// Read here on the generous side, so that no spelling Ollama still resolves to the cloud slips through: a tag
/// ending `-cloud` counts even when it holds a `/`, and a name Ollama would refuse as malformed (`x:cloud:cloud`)
/// counts too.
enum CloudModel {
    static func isCloud(_ name: String) -> Bool {
        let scalars = Array(name.unicodeScalars)
        guard let colon = scalars.lastIndex(of: ":") else { return false }
        var tag = scalars[(colon + 1)...]
        while let first = tag.first, first.properties.isWhitespace { tag.removeFirst() }
        while let last = tag.last, last.properties.isWhitespace { tag.removeLast() }
        let lower = String(String.UnicodeScalarView(tag)).lowercased()
        return lower == "cloud" || lower.hasSuffix("-cloud")
    }
}

extension CloudModel {
    /// Who may use cloud models, as `cloud-models` says: everyone, administrators (everyone with authentication
    /// off), or no one; a user's `policy` line (or the `*` line) overrides it for that user.
    struct Policy {
        let setting: CloudModels
        let admins: Set<String>
        let authenticates: Bool
        let policies: PolicyTable

        init(_ config: ServerConfig) {
            setting = config.cloudModels
            admins = config.admins
            authenticates = config.users != nil
            policies = config.policies
        }

        /// Whether some user may use a cloud model (the setting, or a policy line, says all).
        static func anyoneAll(_ config: ServerConfig) -> Bool {
            config.cloudModels == .all && !config.policies.sets { $0.cloudModels != nil && $0.cloudModels != .all }
        }

        /// 403 when `name` is a cloud model that `user` may not use; nil otherwise.
        func refusal(_ name: String, user: String?) -> ErrorResponse? {
            guard CloudModel.isCloud(name), let setting = refusingSetting(user: user) else { return nil }
            return ErrorResponse(status: 403, message: "model \"\(name)\" runs on ollama.com on this server's account, which this server does not allow\(setting == .admins ? " for non-administrators" : "")")
        }

        /// 403 for a tool of type `type` (Ollama's web search, which it runs through ollama.com with the server's
        /// key, generating again with each result) when `user` may not use the cloud; nil otherwise.
        func webSearchRefusal(_ type: String, user: String?) -> ErrorResponse? {
            guard let setting = refusingSetting(user: user) else { return nil }
            return ErrorResponse(status: 403, message: "tool type \"\(type)\" makes Ollama search the web through ollama.com on this server's account, which this server does not allow\(setting == .admins ? " for non-administrators" : "") (cloud-models)")
        }

        /// Whether `user` may use the cloud at all.
        func allows(user: String?) -> Bool { refusingSetting(user: user) == nil }

        /// Whether `user` may not use cloud models.
        func refuses(user: String?) -> Bool { refusingSetting(user: user) != nil }

        /// The setting that refuses `user` the cloud, or nil when it allows it.
        private func refusingSetting(user: String?) -> CloudModels? {
            let isAdmin = user.map { admins.contains($0) } ?? false
            let setting = policies.isEmpty ? self.setting : (policies.policy(for: user).cloudModels ?? self.setting)
            switch setting {
            case .all: return nil
            case .admins where isAdmin || !authenticates: return nil
            default: return setting
            }
        }
    }
}
