import TollgateIO

extension Doctor {
    /// `relative` under the host's proc root.
    func proc(_ relative: String) -> String { host.procRoot + "/" + relative }

    /// The host's listening TCP sockets, from `net/tcp` and `net/tcp6` under the proc root; nil when neither can
    /// be read (no procfs).
    func listeningSockets() -> [ListeningSocket]? {
        let files = ["net/tcp", "net/tcp6"].compactMap { host.readFile(proc($0)) }
        guard !files.isEmpty else { return nil }
        return files.flatMap(ListeningSocket.parse)
    }

    /// Which process holds each of `inodes`: its pid and command name, from the `socket:[INODE]` links in
    /// `PID/fd/`. Only processes this user may look into are seen (all of them for root).
    func owners(of inodes: Set<UInt64>) -> [UInt64: (pid: Int, command: String)] {
        guard !inodes.isEmpty else { return [:] }
        var found: [UInt64: (pid: Int, command: String)] = [:]
        for entry in host.directoryEntries(host.procRoot) ?? [] {
            guard let pid = Int(entry) else { continue }
            for fd in host.directoryEntries(proc("\(entry)/fd")) ?? [] {
                guard let target = host.readLink(proc("\(entry)/fd/\(fd)")),
                      target.hasPrefix("socket:["), target.hasSuffix("]"),
                      let inode = UInt64(target.dropFirst(8).dropLast()), inodes.contains(inode) else { continue }
                let command = host.readFile(proc("\(entry)/comm"))
                    .map { String(decoding: $0, as: UTF8.self).trimming(" \n") } ?? "?"
                found[inode] = (pid, command)
            }
            if found.count == inodes.count { break }
        }
        return found
    }

    /// The pid the configured `pid-file` names, when there is one to read.
    func runningPID() -> Int? {
        guard let path = subject.config.pidFile, let bytes = host.readFile(path) else { return nil }
        return Int(String(decoding: bytes, as: UTF8.self).trimming(" \n"))
    }

    /// Each configured listener: free, or held by a Tollgate (running already), or taken by something else.
    func listenerChecks(_ sockets: [ListeningSocket]?) -> [DoctorCheck] {
        let config = subject.config
        let listeners = config.listen.map { ("listen", $0) } + config.listenPlain.map { ("listen-plain", $0) }
            + config.listenRedirect.map { ("listen-redirect", $0) } + config.metricsListen.map { ("metrics-listen", $0) }
        guard !listeners.isEmpty else { return [] }
        guard let sockets else {
            return [DoctorCheck("listeners", .skip, "cannot read \(proc("net/tcp")): no procfs")]
        }
        let taken = listeners.map { listener in sockets.filter { $0.address.overlaps(listener.1) } }
        let owners = owners(of: Set(taken.joined().map(\.inode)))
        var checks: [DoctorCheck] = []
        for ((setting, address), holders) in zip(listeners, taken) {
            let name = "\(setting) \(address)"
            guard !holders.isEmpty else {
                checks.append(DoctorCheck(name, .ok, "free"))
                continue
            }
            let seen = holders.compactMap { owners[$0.inode] }
            if let other = seen.first(where: { $0.command != "tollgate" }) {
                checks.append(DoctorCheck(name, .fail, "in use by \(other.command) (pid \(other.pid))",
                                          fix: "stop it (for nginx: systemctl disable --now nginx) or set "
                                              + "\(setting) to another address"))
            } else if let mine = seen.first {
                if let expected = runningPID(), !seen.contains(where: { $0.pid == expected }) {
                    checks.append(DoctorCheck(name, .warn, "held by another tollgate (pid \(mine.pid)), not the one "
                                              + "pid-file names (pid \(expected))",
                                              fix: "is an old instance still running? stop it (kill \(mine.pid)), "
                                                  + "then systemctl restart tollgate"))
                } else {
                    checks.append(DoctorCheck(name, .ok, "held by tollgate (pid \(mine.pid)): running"))
                }
            } else if host.userID() != 0 {
                checks.append(DoctorCheck(name, .warn, "in use by a process this user cannot see",
                                          fix: "run tollgate doctor as root to name it"))
            } else {
                checks.append(DoctorCheck(name, .fail, "in use by a process not found under \(host.procRoot)",
                                          fix: "find it with ss -ltnp and stop it, or set \(setting) to another address"))
            }
        }
        return checks
    }

    /// Whether Ollama (port 11434, and the port of each upstream on this host) listens on any address but
    /// loopback: then anyone who reaches the host uses Ollama directly, without a password, around Tollgate.
    func exposureCheck(_ sockets: [ListeningSocket]?) -> DoctorCheck {
        guard let sockets else {
            return DoctorCheck("ollama exposure", .skip, "cannot read \(proc("net/tcp")): no procfs")
        }
        var ports: Set<UInt16> = [Doctor.ollamaPort]
        for backend in subject.config.upstreams where backend.address.address.isLoopback {
            ports.insert(backend.address.address.port)
        }
        let ollama = sockets.filter { ports.contains($0.address.port) }
        let exposed = ollama.filter { !$0.address.isLoopback }
        guard !exposed.isEmpty else {
            if ollama.isEmpty {
                return DoctorCheck("ollama exposure", .ok, "nothing listens on port "
                                   + ports.sorted().map(String.init).joined(separator: ", ") + " on this host")
            }
            return DoctorCheck("ollama exposure", .ok, "Ollama listens on loopback only ("
                               + ollama.map(\.address.description).joined(separator: ", ") + ")")
        }
        let owners = owners(of: Set(exposed.map(\.inode)))
        let what = exposed.map { socket in
            socket.address.description + (owners[socket.inode].map { " (\($0.command), pid \($0.pid))" } ?? "")
        }
        let port = exposed[0].address.port
        return DoctorCheck("ollama exposure", .fail,
                           "OLLAMA IS OPEN TO THE NETWORK: it listens on \(what.joined(separator: ", ")). Anyone who "
                           + "reaches this host uses it without a password, around Tollgate",
                           fix: "bind it to loopback: sudo systemctl edit ollama, add\n"
                               + "[Service]\nEnvironment=\"OLLAMA_HOST=127.0.0.1:\(port)\"\n"
                               + "then sudo systemctl restart ollama (and remove any firewall rule opening \(port))")
    }
}
