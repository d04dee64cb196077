import TollgateIO

extension Doctor {
    /// The users file (readable, users in it, no weak hash, no unusable line), the authorized keys, and the state
    /// database holding the API keys.
    func credentialChecks() -> [DoctorCheck] {
        var checks: [DoctorCheck] = []
        if let path = subject.usersPath {
            checks.append(usersCheck(path))
        } else {
            checks.append(DoctorCheck("users file", .warn, "none yet: serve creates users.htpasswd with one user",
                                      fix: "tollgate users add NAME, or set users = PATH"))
        }
        if let path = subject.config.authorizedKeysPath {
            do {
                let keys = try AuthorizedKeys.load(path: path)
                if keys.warnings.isEmpty {
                    checks.append(DoctorCheck("authorized keys", .ok, "\(path): \(keys.summary)"))
                } else {
                    checks.append(DoctorCheck("authorized keys", .warn, "\(path): \(keys.summary)\n"
                                              + keys.warnings.map(\.description).joined(separator: "\n"),
                                              fix: "correct or remove the lines named above"))
                }
            } catch {
                checks.append(DoctorCheck("authorized keys", .fail, error.description,
                                          fix: "make \(path) readable by the user tollgate runs as"))
            }
        }
        if let path = subject.config.databasePath {
            if !host.exists(path) {
                checks.append(DoctorCheck("keys database", .ok, "\(path) not created yet (serve creates it)"))
            } else {
                do {
                    let count = try SQLiteKeyStore(path: path, create: false).all().count
                    checks.append(DoctorCheck("keys database", .ok, "\(path): readable, \(count) API key(s)"))
                } catch {
                    checks.append(DoctorCheck("keys database", .fail, "\(path): \(error.description)",
                                              fix: "check its owner and mode (the user tollgate runs as must read "
                                                  + "and write it) and the state-dir setting"))
                }
            }
        }
        return checks
    }

    private func usersCheck(_ path: String) -> DoctorCheck {
        let file: UsersFile
        do {
            file = try UsersFile.load(path: path)
        } catch {
            return DoctorCheck("users file", .fail, error.description,
                               fix: "create it (tollgate users add NAME --file \(path)) or make it readable by the "
                                   + "user tollgate runs as")
        }
        guard !file.entries.isEmpty else {
            return DoctorCheck("users file", .fail, "\(path) has no usable users: every request gets 401",
                               fix: "tollgate users add NAME --file \(path)")
        }
        let weakEntries = file.entries.values.filter { $0.format.weakness != nil }.sorted { $0.line < $1.line }
        let weak = weakEntries.map { entry in
            "\(path):\(entry.line): user \(entry.name.debugDescription) uses \(entry.format.weakness ?? "")"
        }
        // The loader's other warnings: lines that disable their user or are skipped.
        let weakLines = Set(weakEntries.map(\.line))
        let unusable = file.warnings.filter { !weakLines.contains($0.line) }.map(\.description)
        if !weak.isEmpty || !unusable.isEmpty {
            let fix = weak.isEmpty ? "correct or remove the lines named above"
                : "set a new password (bcrypt): tollgate users passwd NAME --file \(path), or htpasswd -B \(path) NAME"
            return DoctorCheck("users file", .warn, "\(path): \(file.entries.count) user(s), \(weak.count) weak "
                               + "hash(es), \(unusable.count) unusable line(s)\n"
                               + (weak + unusable).joined(separator: "\n"), fix: fix)
        }
        return DoctorCheck("users file", .ok, "\(path): \(file.entries.count) user(s), no weak hashes")
    }
}
