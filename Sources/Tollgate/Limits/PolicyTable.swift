/// Every `policy` line, merged: the `*` line is everyone's default and a user's line overrides it key by key.
///
/// Built once per configuration (start-up and each reload) with every user's effective policy worked out, so that a
/// request pays one dictionary lookup. A value; each worker holds the one in its `ServerConfig`.
public struct PolicyTable: Sendable, Equatable {
    /// The `*` line (empty when there is none).
    public private(set) var everyone = UserPolicy()
    /// Each user's own line, as written.
    public private(set) var lines: [String: UserPolicy] = [:]
    /// Each user with a line: the `*` line overridden by it.
    private var effective: [String: UserPolicy] = [:]
    /// Whether no line sets anything (the phases then skip the lookup).
    public private(set) var isEmpty = true

    /// No policies.
    public init() {}

    /// The table of `everyone` (the `*` line) and the users' own lines.
    public init(everyone: UserPolicy, lines: [String: UserPolicy]) {
        self.everyone = everyone
        self.lines = lines
        for (user, line) in lines { effective[user] = everyone.overridden(by: line) }
        isEmpty = everyone == UserPolicy() && lines.isEmpty
    }

    /// What applies to `user` (the `*` line for a user without a line of their own, and for requests without a
    /// user, with authentication off).
    public func policy(for user: String?) -> UserPolicy {
        guard let user, let own = effective[user] else { return everyone }
        return own
    }

    /// Whether some line sets `key` (a phase that a policy needs is switched on for it).
    func sets(_ present: (UserPolicy) -> Bool) -> Bool {
        present(everyone) || lines.values.contains(where: present)
    }

    /// check-config's lines: the `*` line's effect, then each user's, sorted by name.
    public var summaryLines: [String] {
        ["* " + everyone.summary] + lines.keys.sorted().map { "\($0) " + effective[$0, default: everyone].summary }
    }
}

extension PolicyTable {
    /// check-config's line on `model-overrides`: who may send runner options, `shift` and `template`, given the
    /// administrators and whether users authenticate (without, everyone may unless the `*` line refuses).
    public func modelOverridesSummary(admins: Set<String>, authenticates: Bool) -> String {
        let everyoneMay = everyone.modelOverrides.map { $0 == .allow } ?? !authenticates
        let exceptions = lines.keys.sorted().filter { user in
            guard let own = lines[user]?.modelOverrides else { return false }
            return (own == .allow) != everyoneMay && !admins.contains(user)
        }
        var text = everyoneMay ? "allowed for everyone" : "refused except for administrators"
        if !exceptions.isEmpty {
            text += everyoneMay ? "; refused for " : "; allowed for "
            text += exceptions.joined(separator: ", ")
        }
        if everyoneMay && authenticates && !admins.isEmpty && !exceptions.isEmpty { text += " (administrators always allowed)" }
        return "model-overrides (runner options, shift, template): " + text
    }
}
