extension SettingReader {
    /// The `policy` lines as one table; each bad line is a problem located on its own line (or flag).
    mutating func policies() -> PolicyTable {
        var everyone: UserPolicy?
        var lines: [String: UserPolicy] = [:]
        for (i, text) in resolved.list(name).enumerated() {
            switch UserPolicy.parse(line: text) {
            case .success(let (subject, policy)):
                if subject == "*" {
                    if everyone != nil { problem("a second policy line for * (one line per user, one for *)", item: i); continue }
                    everyone = policy
                } else {
                    if lines[subject] != nil { problem("a second policy line for \(subject) (one line per user)", item: i); continue }
                    lines[subject] = policy
                }
            case .failure(let e):
                problem(e.message, item: i)
            }
        }
        return PolicyTable(everyone: everyone ?? UserPolicy(), lines: lines)
    }
}
