import Tollgate

/// A valid value other than the default for every setting, for tests that go through every row of
/// `SettingDefinition.all`. Numbers, booleans and choices are derived from the row; strings and lists are listed in
/// `texts` (a test fails naming a setting missing there).
public enum SettingSamples {
    /// The flags every sample is given on top of: both listeners and a certificate pair set, so that changing one
    /// of them changes nothing else (no default listener dropped, no cert without its key).
    public static let base: [String: [String]] = [
        "listen": ["127.0.0.1:8443"],
        "listen-plain": ["127.0.0.1:8080"],
        "cert": ["cert.pem"],
        "key": ["key.pem"],
    ]

    /// Samples of the string and list settings, as flag values.
    public static let texts: [String: [String]] = [
        "listen": ["127.0.0.1:9443"],
        "listen-plain": ["127.0.0.1:9080"],
        "listen-redirect": ["127.0.0.1:9081"],
        "cert": ["other-cert.pem"],
        "key": ["other-key.pem"],
        "acme-domain": ["ollama.tollgate.test"],
        "acme-email": ["ops@example.com"],
        "acme-ca": ["staging"],
        "acme-ca-root": ["acme-root.pem"],
        "upstream": ["http://127.0.0.1:11435 max=2"],
        "users": ["other.htpasswd"],
        "authorized-keys": ["other.authorized_keys"],
        "realm": ["Elsewhere"],
        "admin": ["alice"],
        "public-path": ["/api/version"],
        "cors-origin": ["https://example.com"],
        "rate-limit-exempt": ["192.0.2.0/24"],
        "proxy-protocol-from": ["203.0.113.0/24"],
        "model-allow": ["mistral:7b"],
        "trusted-proxy": ["198.51.100.0/24"],
        "redis": ["redis://127.0.0.1:6380"],
        "access-log": ["access.log"],
        "metrics-listen": ["127.0.0.1:9092"],
        "health-path": ["/alive"],
        "ready-path": ["/ready"],
        "hsts": ["max-age=60"],
        "pid-file": ["tollgate.pid"],
        "state-dir": ["state"],
        "policy": ["* tokens-per-day=1000"],
        "usage-retention": ["90d"],
    ]

    /// Flag values for `setting` that differ from its default: `[]` for a boolean (the bare flag); nil for a
    /// string or list setting missing from `texts`.
    public static func changed(_ setting: SettingDefinition) -> [String]? {
        switch setting.kind {
        case .bool:
            return []
        case .int(let range):
            let n = setting.defaultValue.flatMap { if case .int(let n) = $0 { n } else { nil } }
            let sample = n.map { range.contains($0 + 1) ? $0 + 1 : range.lowerBound } ?? range.lowerBound + 1
            return [String(sample)]
        case .double(let range):
            let d = setting.defaultValue.flatMap { if case .double(let d) = $0 { d } else { nil } }
            let sample = d.map { range.contains($0 + 1) ? $0 + 1 : range.lowerBound } ?? range.lowerBound + 1
            return [String(sample)]
        case .choice(let words):
            return words.first { $0 != setting.defaultText }.map { [$0] }
        case .string, .list, .lines:
            return texts[setting.name]
        }
    }
}
