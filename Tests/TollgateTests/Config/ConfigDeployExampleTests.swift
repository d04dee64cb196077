import Foundation
import Testing
@testable import Tollgate

@Suite struct ConfigDeployExampleTests {
    @Test func deployTollgateConfParsesAndMatchesTheNginxSetup() throws {
        let path = repositoryRoot() + "/deploy/tollgate.conf"
        let file = try ConfigFile.load(path: path)
        let c = try ConfigResolver.resolve(flags: [:], environment: [:], file: file)
        #expect(c.list("listen") == ["0.0.0.0:443", "[::]:443"])
        // Port 80 stays free for certbot's standalone renewals (MIGRATION.md); the redirect is there, commented out.
        #expect(c.list("listen-redirect") == [])
        let text = try String(contentsOfFile: path, encoding: .utf8)
        #expect(text.contains("# listen-redirect = 0.0.0.0:80, [::]:80"))
        #expect(c.list("listen-plain") == [])
        // The certificate comes from Let's Encrypt (acme-domain, its placeholder refused until set); certbot's pair is
        // the commented-out fallback, at the paths install.sh --domain rewrites.
        #expect(c.list("acme-domain") == ["example.com"])
        #expect(c.string("cert") == nil && c.string("key") == nil)
        #expect(text.contains("# cert = /etc/letsencrypt/live/example.com/fullchain.pem\n"))
        #expect(text.contains("# key = /etc/letsencrypt/live/example.com/privkey.pem\n"))
        #expect(c.list("upstream") == ["http://127.0.0.1:11434"])
        #expect(c.string("users") == "/etc/tollgate/users.htpasswd")
        #expect(c.double("rate") == 10)
        #expect(c.int("burst") == 20)
        for timeout in ["head-timeout", "keepalive-timeout", "body-timeout", "send-timeout",
                        "upstream-connect-timeout", "upstream-timeout", "drain-timeout"] {
            if case .file = c.origin(timeout) {} else { Issue.record("\(timeout) is not set in the example") }
        }
    }

    @Test func everySettingInTheExampleHasACommentAboveItsGroup() throws {
        let path = repositoryRoot() + "/deploy/tollgate.conf"
        let text = try String(contentsOfFile: path, encoding: .utf8)
        var commented = false
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty {
                commented = false
            } else if trimmed.hasPrefix("#") {
                commented = true
            } else {
                #expect(commented, "\(trimmed) has no comment above it")
            }
        }
    }
}
