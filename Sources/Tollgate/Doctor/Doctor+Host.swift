import TollgateIO

extension Doctor {
    /// Free disk below this fails: the ledger and the keys database stop being written.
    static let minimumFreeBytes: UInt64 = 512 << 20

    /// The firewall, when one is installed and this user may read it: what it lets in.
    func firewallChecks() -> [DoctorCheck] {
        if let ufw = host.run(["ufw", "status"]) {
            let text = ufw.text
            if ufw.status != 0 || text.contains("need to be root") {
                return [DoctorCheck("firewall", .skip, "ufw is installed; run doctor as root to read its rules")]
            }
            if text.contains("Status: inactive") {
                return [DoctorCheck("firewall", .warn, "ufw is installed but inactive: every listening port is open",
                                    fix: "sudo ufw allow OpenSSH && sudo ufw allow 443/tcp && sudo ufw enable")]
            }
            let open = ufwAllowed(text)
            let ollama = open.filter { $0.hasPrefix("\(Doctor.ollamaPort)") }
            if !ollama.isEmpty {
                return [DoctorCheck("firewall", .fail, "ufw lets in Ollama's port: \(ollama.joined(separator: ", "))",
                                    fix: "sudo ufw delete allow \(ollama[0])")]
            }
            let summary = "ufw active; open: " + (open.isEmpty ? "nothing" : open.joined(separator: ", "))
            let closed = closedListenPorts(open)
            if !closed.isEmpty {
                let ports = closed.map(String.init)
                return [DoctorCheck("firewall", .warn, summary + "; no rule opens Tollgate's port "
                                    + ports.joined(separator: ", ") + ": clients cannot reach it",
                                    fix: ports.map { "sudo ufw allow \($0)/tcp" }.joined(separator: " && "))]
            }
            return [DoctorCheck("firewall", .ok, summary)]
        }
        if let nft = host.run(["nft", "list", "ruleset"]) {
            if nft.status != 0 {
                return [DoctorCheck("firewall", .skip, "nft is installed; run doctor as root to read the ruleset")]
            }
            let accepts = nft.text.split(separator: "\n").map { $0.trimming(" \t") }
                .filter { $0.contains("dport") && $0.hasSuffix("accept") }
            if nft.text.trimming(" \n\t").isEmpty {
                return [DoctorCheck("firewall", .warn, "nftables has no rules: every listening port is open",
                                    fix: "install ufw and allow only SSH and 443: sudo ufw allow OpenSSH && "
                                        + "sudo ufw allow 443/tcp && sudo ufw enable")]
            }
            if let ollama = accepts.first(where: { $0.contains("\(Doctor.ollamaPort)") }) {
                return [DoctorCheck("firewall", .fail, "nftables accepts Ollama's port: \(ollama)",
                                    fix: "remove that rule (nft -a list ruleset shows its handle)")]
            }
            return [DoctorCheck("firewall", .ok, "nftables ruleset; accepted: "
                                + (accepts.isEmpty ? "no dport rules" : accepts.joined(separator: "; ")))]
        }
        return [DoctorCheck("firewall", .skip, "no ufw or nft on this host")]
    }

    /// The ports Tollgate listens on beyond loopback that no ufw rule in `open` names. A rule naming an application
    /// profile ("Nginx Full") may cover any port, so with one the answer is none (only OpenSSH's is known).
    func closedListenPorts(_ open: [String]) -> [UInt16] {
        let config = subject.config
        let profiles = open.filter { rule in rule.first.map { !$0.isNumber } ?? false && !rule.hasPrefix("OpenSSH") }
        guard profiles.isEmpty else { return [] }
        var ports: [UInt16] = []
        for address in config.listen + config.listenPlain + config.listenRedirect where !address.isLoopback {
            let p = String(address.port)
            let opened = open.contains { $0 == p || $0.hasPrefix(p + "/") || $0.hasPrefix(p + " ") }
            if !opened && !ports.contains(address.port) { ports.append(address.port) }
        }
        return ports
    }

    /// The "To" column of `ufw status`'s ALLOW rules ("443/tcp", "22/tcp (v6)").
    func ufwAllowed(_ text: String) -> [String] {
        var seen: [String] = []
        for line in text.split(separator: "\n") where line.contains("ALLOW") {
            guard let range = line.firstRange(of: "ALLOW") else { continue }
            let to = String(line[..<range.lowerBound]).trimming(" ")
            if !to.isEmpty && !seen.contains(to) { seen.append(to) }
        }
        return seen
    }

    /// Memory for the largest model pulled; free disk for the models and for the state directory.
    func resourceChecks(models: [PulledModel]) -> [DoctorCheck] {
        var checks: [DoctorCheck] = []
        let largest = models.max { $0.size < $1.size }
        let memory = host.readFile(proc("meminfo")).map(Doctor.meminfo) ?? [:]
        if let available = memory["MemAvailable"], let total = memory["MemTotal"] {
            let have = "\(Doctor.size(available)) available of \(Doctor.size(total))"
            if let largest, largest.size > available {
                checks.append(DoctorCheck("memory", .warn, "\(largest.name) is \(Doctor.size(largest.size)), "
                                          + "\(have): without a GPU that holds it, loading it swaps or fails",
                                          fix: "use a smaller model (or quantization), or a larger droplet"))
            } else {
                checks.append(DoctorCheck("memory", .ok, have
                                          + (largest.map { ", largest model \($0.name) \(Doctor.size($0.size))" } ?? "")))
            }
        } else {
            checks.append(DoctorCheck("memory", .skip, "cannot read \(proc("meminfo"))"))
        }
        if let dir = modelsDirectory(), let free = host.freeBytes(dir) {
            if free < Doctor.minimumFreeBytes {
                checks.append(DoctorCheck("models disk", .fail, "\(dir): \(Doctor.size(free)) free",
                                          fix: "free space: ollama rm MODEL for models no longer served"))
            } else if let largest, free < largest.size {
                checks.append(DoctorCheck("models disk", .warn, "\(dir): \(Doctor.size(free)) free, less than "
                                          + "another model the size of \(largest.name) needs",
                                          fix: "free space before pulling (ollama rm MODEL) or grow the volume"))
            } else {
                checks.append(DoctorCheck("models disk", .ok, "\(dir): \(Doctor.size(free)) free"))
            }
        } else {
            checks.append(DoctorCheck("models disk", .skip, "Ollama's models folder not found (set --models-dir)"))
        }
        let state = subject.config.databasePath.map { Doctor.directory(of: $0) } ?? subject.config.stateDirectory ?? "."
        if let free = host.freeBytes(host.exists(state) ? state : Doctor.directory(of: state)) {
            let status: DoctorCheck.Status = free < Doctor.minimumFreeBytes ? .fail : .ok
            checks.append(DoctorCheck("state disk", status, "\(state): \(Doctor.size(free)) free",
                                      fix: status == .ok ? nil : "free space: the usage ledger and keys database "
                                          + "stop being written when the disk fills"))
        }
        return checks
    }

    /// Where Ollama keeps models: the subject's, else `OLLAMA_MODELS`, else the first usual place that exists.
    func modelsDirectory() -> String? {
        if let dir = subject.modelsDirectory { return dir }
        let environment = Syscall.environment()
        if let dir = environment["OLLAMA_MODELS"], !dir.isEmpty { return dir }
        var candidates = ["/usr/share/ollama/.ollama/models", "/var/lib/ollama/models"]
        if let home = environment["HOME"] { candidates.append(home + "/.ollama/models") }
        return candidates.first(where: host.exists)
    }

    /// The folder holding `path` ("." for a bare name).
    static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    /// `/proc/meminfo`'s values in bytes, by name.
    static func meminfo(_ bytes: [UInt8]) -> [String: UInt64] {
        var values: [String: UInt64] = [:]
        for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") {
            let parts = line.split(whereSeparator: { $0 == ":" || $0 == " " })
            guard parts.count >= 2, let n = UInt64(parts[1]) else { continue }
            values[String(parts[0])] = parts.count >= 3 && parts[2] == "kB" ? n * 1024 : n
        }
        return values
    }

    /// Whether the clock is kept synchronized (certificates, tokens' expiry and the ledger's days depend on it).
    func clockCheck() -> DoctorCheck {
        let fix = "sudo timedatectl set-ntp true (systemd-timesyncd or chrony keeps it synchronized)"
        if let out = host.run(["timedatectl", "show", "-p", "NTPSynchronized", "--value"]), out.status == 0 {
            switch out.text.trimming(" \n") {
            case "yes": return DoctorCheck("clock", .ok, "synchronized (timedatectl)")
            case "no": return DoctorCheck("clock", .warn, "not synchronized (timedatectl)", fix: fix)
            default: break
            }
        }
        switch host.clockSynchronized() {
        case true?: return DoctorCheck("clock", .ok, "synchronized (the kernel's clock status)")
        case false?: return DoctorCheck("clock", .warn, "not synchronized (the kernel's clock status)", fix: fix)
        case nil: return DoctorCheck("clock", .skip, "cannot tell whether the clock is synchronized")
        }
    }
}
