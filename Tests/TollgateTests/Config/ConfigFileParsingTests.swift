import Foundation
import Testing
@testable import Tollgate

@Suite struct ConfigFileParsingTests {
    @Test func readsKeysValuesCommentsAndBlankLines() throws {
        let file = try parseConfig("""
            # a whole-line comment

              # an indented comment
            cert = /etc/tls/fullchain.pem   # a trailing comment
            burst=5
            rate = 2.5
            \tlog = none\t
            rate-limit-dry-run = yes
            realm = Ollama#1
            """)
        #expect(file.entries["cert"] == .init(value: .string("/etc/tls/fullchain.pem"), line: 4))
        #expect(file.entries["burst"] == .init(value: .int(5), line: 5))
        #expect(file.entries["rate"]?.value == .double(2.5))
        #expect(file.entries["log"] == .init(value: .string("none"), line: 7))
        #expect(file.entries["rate-limit-dry-run"]?.value == .bool(true))
        // "#" only starts a comment at the start of a line or after whitespace.
        #expect(file.entries["realm"]?.value == .string("Ollama#1"))
        #expect(file.entries.count == 6)
        #expect(file.path == "tollgate.conf")
    }

    @Test func quotedValuesHoldHashesSpacesAndEscapes() throws {
        let file = try parseConfig(#"""
            realm = "  Team #1, \"GPU\" \\ box  "   # comment after a quoted value
            users = "/srv/with space/users"
            cert = ""
            """#)
        #expect(file.entries["realm"]?.value == .string(#"  Team #1, "GPU" \ box  "#))
        #expect(file.entries["users"]?.value == .string("/srv/with space/users"))
        #expect(file.entries["cert"]?.value == .string(""))
    }

    @Test func numbersInQuotesAreStillNumbers() throws {
        let file = try parseConfig(#"burst = "7""#)
        #expect(file.entries["burst"]?.value == .int(7))
    }

    @Test func listsByRepetitionAndByCommasAppendInOrder() throws {
        let file = try parseConfig("""
            listen = 0.0.0.0:443
            trusted-proxy = 10.0.0.0/8, 192.168.0.0/16 ,172.16.0.0/12
            listen = [::]:443   # IPv6 too
            cors-origin = "https://a.example, with comma", https://b.example
            listen = 127.0.0.1:8443, "[::1]:8443"
            """)
        #expect(file.entries["listen"] == .init(
            value: .list(["0.0.0.0:443", "[::]:443", "127.0.0.1:8443", "[::1]:8443"]), line: 1))
        #expect(file.entries["trusted-proxy"]?.value == .list(["10.0.0.0/8", "192.168.0.0/16", "172.16.0.0/12"]))
        #expect(file.entries["cors-origin"]?.value == .list(["https://a.example, with comma", "https://b.example"]))
    }

    @Test func scalarValuesKeepCommas() throws {
        let file = try parseConfig("realm = Ollama, the GPU box")
        #expect(file.entries["realm"]?.value == .string("Ollama, the GPU box"))
    }

    @Test func crlfLineEndsAndAByteOrderMark() throws {
        let text = "\u{FEFF}# made on Windows\r\nburst = 3\r\nlisten = 0.0.0.0:443\r\nlisten = [::]:443\r\n\r\nrealm = \"x\"\r\n"
        let file = try parseConfig(text)
        #expect(file.entries["burst"] == .init(value: .int(3), line: 2))
        #expect(file.entries["listen"]?.value == .list(["0.0.0.0:443", "[::]:443"]))
        #expect(file.entries["realm"] == .init(value: .string("x"), line: 6))
    }

    @Test func anEmptyFileSetsNothing() throws {
        #expect(try parseConfig("").entries.isEmpty)
        #expect(try parseConfig("\n\n# only comments\n").entries.isEmpty)
    }

    @Test func boolSpellings() throws {
        for (text, value) in [("true", true), ("on", true), ("1", true), ("false", false), ("no", false),
                              ("off", false), ("0", false)] {
            #expect(try parseConfig("rate-limit-dry-run = \(text)").entries["rate-limit-dry-run"]?.value
                    == .bool(value), "\(text)")
        }
    }

    @Test func rangeEdgesAreInclusive() throws {
        let file = try parseConfig("workers = 256\nauth-workers = 1\ndrain-timeout = 0\nrate = .5\nburst = +3")
        #expect(file.entries["workers"]?.value == .int(256))
        #expect(file.entries["auth-workers"]?.value == .int(1))
        #expect(file.entries["drain-timeout"]?.value == .double(0))
        #expect(file.entries["rate"]?.value == .double(0.5))
        #expect(file.entries["burst"]?.value == .int(3))
    }

    @Test func loadReadsAFileAndNamesAMissingOne() throws {
        let path = "/tmp/tollgate-config-test-\(getpid()).conf"
        let text = "burst = 4\n"
        #expect(writeFile(path, text))
        defer { unlink(path) }
        let file = try ConfigFile.load(path: path)
        #expect(file.path == path)
        #expect(file.entries["burst"]?.value == .int(4))

        let missing = "/nonexistent/tollgate.conf"
        do {
            _ = try ConfigFile.load(path: missing)
            Issue.record("expected an error")
        } catch {
            #expect(error.problems.count == 1)
            #expect(error.description.hasPrefix("/nonexistent/tollgate.conf: cannot open"))
        }
    }

    @Test func locateHonoursFlagThenVariableThenExistingDefault() {
        #expect(ConfigFile.locate(flag: "/a.conf", environment: ["TOLLGATE_CONFIG": "/b.conf"]) == "/a.conf")
        #expect(ConfigFile.locate(flag: nil, environment: ["TOLLGATE_CONFIG": "/b.conf"]) == "/b.conf")
        let fallback = ConfigFile.locate(flag: nil, environment: [:])
        #expect(fallback == nil || fallback == ConfigFile.defaultPath)
        #expect(ConfigFile.defaultPath == "/etc/tollgate/tollgate.conf")
    }
}
