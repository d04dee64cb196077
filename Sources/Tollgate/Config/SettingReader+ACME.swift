extension SettingReader {
    /// Let's Encrypt's production directory (`acme-ca`'s default).
    static let letsEncryptProduction = "https://acme-v02.api.letsencrypt.org/directory"
    /// Let's Encrypt's staging directory (`acme-ca = staging`): untrusted certificates, generous rate limits.
    static let letsEncryptStaging = "https://acme-staging-v02.api.letsencrypt.org/directory"

    /// The `acme-domain` list: DNS names (letters, digits, hyphens, dots; no wildcard, which needs DNS-01), each
    /// once, lowercased; at most 100 (Let's Encrypt's limit per certificate).
    mutating func domainNames() -> [String] {
        var names: [String] = []
        for (i, text) in resolved.list(name).enumerated() {
            let lower = text.lowercased()
            if lower.hasPrefix("*.") {
                problem("\(text.debugDescription): wildcard names need the DNS-01 challenge, which Tollgate does not "
                        + "answer; list each name", item: i)
            } else if !Self.isDomainName(lower) {
                problem("\(text.debugDescription) is not a domain name like tollgate.example.com", item: i)
            } else if Self.isExampleName(lower) {
                problem("\(lower) is an example name (RFC 2606), no CA issues for it: set this server's own name "
                        + "(its DNS pointing here)", item: i)
            } else if names.contains(lower) {
                problem("\(lower) is listed twice", item: i)
            } else {
                names.append(lower)
            }
        }
        if names.count > 100 { problem("\(names.count) names; a certificate holds at most 100") }
        return names
    }

    /// Whether `name` is example.com, example.net or example.org or a name under them: the example config's
    /// placeholder, which a CA refuses.
    static func isExampleName(_ name: String) -> Bool {
        ["example.com", "example.net", "example.org"].contains { name == $0 || name.hasSuffix("." + $0) }
    }

    /// The `acme-email` address: one `@`, no spaces or commas (it becomes a `mailto:` URL).
    mutating func emailAddress() -> String? {
        guard let text = resolved.string(name), !text.isEmpty else { return nil }
        let parts = text.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, Self.isDomainName(parts[1].lowercased()),
              !text.contains(where: { $0 == " " || $0 == "," || $0 == "<" || $0 == ">" || $0.isNewline }) else {
            problem("\(text.debugDescription) is not an email address like ops@example.com")
            return nil
        }
        return text
    }

    /// The `acme-ca` directory URL: `staging` expands to Let's Encrypt's staging directory; anything else must be
    /// an https URL.
    mutating func acmeDirectoryURL() -> String {
        let text = required(resolved.string(name))
        if text == "staging" { return Self.letsEncryptStaging }
        if text == "production" { return Self.letsEncryptProduction }
        guard HTTPSURL(text) != nil else {
            problem("\(text.debugDescription) is not an https URL of an ACME directory (or staging)")
            return text
        }
        return text
    }

    /// Whether `name` is a DNS name with at least two labels of letters, digits and inner hyphens.
    static func isDomainName(_ name: String) -> Bool {
        let labels = name.split(separator: ".", omittingEmptySubsequences: false)
        guard name.utf8.count <= 253, labels.count >= 2 else { return false }
        return labels.allSatisfy { label in
            !label.isEmpty && label.utf8.count <= 63 && label.first != "-" && label.last != "-"
                && label.utf8.allSatisfy { ($0 >= 97 && $0 <= 122) || ($0 >= 48 && $0 <= 57) || $0 == 45 }
        }
    }
}
