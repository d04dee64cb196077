import Foundation
import Testing
import TollgateIO

/// The development certificate `serve` makes when no cert and key are configured: what Mozilla's "intermediate"
/// profile asks of any server certificate (90 days, subject and authority key identifiers, the usual extensions),
/// and renewed at start when near expiry, with the clock injected.
@Suite struct DevelopmentCertificateTests {
    /// `openssl x509 -text` of `path`, or nil when the openssl command is not installed.
    private func text(_ path: String) throws -> String? {
        guard access("/usr/bin/openssl", X_OK) == 0 else { return nil }
        let run = CLI.run(["x509", "-in", path, "-noout", "-text", "-dates"], executable: "/usr/bin/openssl")
        #expect(run.status == 0, "\(run)")
        return run.stdout
    }

    @Test func aNewPairIsNinetyDaysWithTheUsualExtensions() throws {
        let dir = try TempDir()
        let made = try DevelopmentCertificate.ensure(in: dir.path + "/certs")
        #expect(made.plan == .create)
        #expect(made.certificate == dir.path + "/certs/dev-cert.pem")
        // Fresh: good for 89 whole days and some hours (not-before is an hour back for clock skew).
        guard case .use(let days) = DevelopmentCertificate.plan(in: dir.path + "/certs") else {
            Issue.record("a fresh pair is not usable: \(DevelopmentCertificate.plan(in: dir.path + "/certs"))")
            return
        }
        #expect(days == 89 || days == 90, "\(days)")
        guard let text = try text(made.certificate) else { return }
        let lines = text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        func after(_ header: String) -> String? {
            lines.firstIndex { $0.hasPrefix(header) }.map { lines[$0 + 1] }
        }
        #expect(lines.contains("X509v3 Basic Constraints: critical"), "\(text)")
        #expect(after("X509v3 Basic Constraints: critical") == "CA:FALSE", "\(text)")
        #expect(after("X509v3 Key Usage: critical") == "Digital Signature", "\(text)")
        #expect(after("X509v3 Extended Key Usage") == "TLS Web Server Authentication", "\(text)")
        #expect(after("X509v3 Subject Alternative Name")
                == "DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1", "\(text)")
        let subjectKey = try #require(after("X509v3 Subject Key Identifier"), "no subject key identifier: \(text)")
        let authorityKey = try #require(after("X509v3 Authority Key Identifier"), "no authority key identifier: \(text)")
        // Self-signed: its authority is itself.
        #expect(authorityKey.replacingOccurrences(of: "keyid:", with: "") == subjectKey, "\(text)")
        // The lifetime, from the dates openssl prints: 90 days and the hour of skew allowance.
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "MMM d HH:mm:ss yyyy zzz"
        func date(_ key: String) throws -> Date {
            let line = try #require(lines.first { $0.hasPrefix(key + "=") }, "no \(key): \(text)")
            let value = line.dropFirst(key.count + 1).split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
            return try #require(formatter.date(from: value), "cannot read \(line)")
        }
        let lifetime = try date("notAfter").timeIntervalSince(try date("notBefore"))
        #expect(lifetime == 90 * 86_400 + 3_600, "\(lifetime / 86_400) days")
    }

    @Test func itIsRenewedAtStartWhenUnderThirtyDaysAreLeft() throws {
        let dir = try TempDir()
        let certs = dir.path + "/certs"
        _ = try DevelopmentCertificate.ensure(in: certs)
        let first = try String(contentsOfFile: certs + "/dev-cert.pem", encoding: .utf8)
        let now = Int64(Date().timeIntervalSince1970)
        // 59 days on: 30 or 31 days left, kept.
        guard case .use = try DevelopmentCertificate.ensure(in: certs, now: now + 59 * 86_400).plan else {
            Issue.record("renewed with a month left")
            return
        }
        #expect(try String(contentsOfFile: certs + "/dev-cert.pem", encoding: .utf8) == first)
        // 61 days on: under 30 left, replaced by a new 90-day pair.
        let renewed = try DevelopmentCertificate.ensure(in: certs, now: now + 61 * 86_400)
        guard case .renew(let reason) = renewed.plan else {
            Issue.record("not renewed with 29 days left: \(renewed.plan)")
            return
        }
        #expect(reason.contains("expires in 2") , "\(reason)")
        #expect(try String(contentsOfFile: certs + "/dev-cert.pem", encoding: .utf8) != first)
        guard case .use(let days) = DevelopmentCertificate.plan(in: certs, now: now) else {
            Issue.record("the renewed pair is not usable")
            return
        }
        #expect(days >= 89)
        // Expired: renewed too.
        guard case .renew(let expired) = DevelopmentCertificate.plan(in: certs, now: now + 400 * 86_400) else {
            Issue.record("an expired pair is kept")
            return
        }
        #expect(expired == "it has expired")
    }

    @Test func aLongLivedPairFromAnEarlierVersionIsReplaced() throws {
        let dir = try TempDir()
        let certs = dir.path + "/certs"
        #expect(mkdir(certs, 0o755) == 0)
        try DevelopmentCertificate.generate(keyPath: certs + "/dev-key.pem", certificatePath: certs + "/dev-cert.pem",
                                            commonName: "localhost", subjectAltNames: "DNS:localhost", days: 825)
        guard case .renew = try DevelopmentCertificate.ensure(in: certs).plan else {
            Issue.record("an 825-day development certificate was kept")
            return
        }
        guard case .use = DevelopmentCertificate.plan(in: certs) else {
            Issue.record("the replacement is not usable")
            return
        }
    }
}
