/// `tollgate doctor`'s output: the checklist for a person, or JSON for a script, and the exit status.
public enum DoctorReport {
    /// One line per check (✓, !, ✗ or -), its detail's further lines and the fix indented under it, then a count.
    public static func text(_ checks: [DoctorCheck]) -> String {
        var out = ""
        for check in checks {
            let lines = check.detail.split(separator: "\n", omittingEmptySubsequences: false)
            out += "\(check.status.mark) \(check.name): \(lines.first ?? "")\n"
            for line in lines.dropFirst() { out += "    \(line)\n" }
            if let fix = check.fix, check.status == .fail || check.status == .warn {
                let fixLines = fix.split(separator: "\n", omittingEmptySubsequences: false)
                out += "    fix: \(fixLines.first ?? "")\n"
                for line in fixLines.dropFirst() { out += "         \(line)\n" }
            }
        }
        out += summary(checks) + "\n"
        return out
    }

    /// "2 failed, 1 warning, 9 ok, 1 skipped".
    public static func summary(_ checks: [DoctorCheck]) -> String {
        func count(_ s: DoctorCheck.Status) -> Int { checks.filter { $0.status == s }.count }
        let warnings = count(.warn)
        return "\(count(.fail)) failed, \(warnings) warning\(warnings == 1 ? "" : "s"), \(count(.ok)) ok, "
            + "\(count(.skip)) skipped"
    }

    /// `{"ok": BOOL, "checks": [{"name", "status", "detail", "fix"}]}` on one line: `ok` is false when any failed.
    public static func json(_ checks: [DoctorCheck]) -> String {
        DoctorJSON.object([
            ("ok", .bool(exitStatus(checks) == 0)),
            ("checks", .array(checks.map { check in
                .object([("name", .string(check.name)), ("status", .string(check.status.rawValue)),
                         ("detail", .string(check.detail)), ("fix", check.fix.map(DoctorJSON.string) ?? .null)])
            })),
        ]).text + "\n"
    }

    /// 1 when any check failed, else 0 (warnings do not fail).
    public static func exitStatus(_ checks: [DoctorCheck]) -> Int32 {
        checks.contains { $0.status == .fail } ? 1 : 0
    }
}
