import Foundation
import Testing
@testable import Tollgate

@Suite struct ConfigResolverTests {
    private let file = try! parseConfig("""
        burst = 30
        rate = 4
        cert = /file/cert.pem
        listen = 0.0.0.0:443
        listen = [::]:443
        trusted-proxy = 10.0.0.0/8
        rate-limit-dry-run = true
        """, path: "/etc/tollgate/tollgate.conf")

    @Test func flagBeatsEnvironmentBeatsFileBeatsDefaultForScalars() throws {
        let c = try ConfigResolver.resolve(
            flags: ["burst": ["50"]],
            environment: ["TOLLGATE_BURST": "40", "TOLLGATE_RATE": "6", "TOLLGATE_HEAD_TIMEOUT": "2.5"],
            file: file)
        #expect(c.int("burst") == 50)
        #expect(c.origin("burst") == .flag)
        #expect(c.double("rate") == 6)
        #expect(c.origin("rate") == .environment("TOLLGATE_RATE"))
        #expect(c.double("head-timeout") == 2.5)
        #expect(c.origin("head-timeout") == .environment("TOLLGATE_HEAD_TIMEOUT"))
        #expect(c.string("cert") == "/file/cert.pem")
        #expect(c.origin("cert") == .file(path: "/etc/tollgate/tollgate.conf", line: 3))
        #expect(c.bool("rate-limit-dry-run"))
        #expect(c.origin("rate-limit-dry-run") == .file(path: "/etc/tollgate/tollgate.conf", line: 7))
        #expect(c.int("rate-limit-keys") == 100_000)
        #expect(c.origin("rate-limit-keys") == .default)
        #expect(c.string("key") == nil)
        #expect(c.origin("key") == .default)
        #expect(c.configPath == "/etc/tollgate/tollgate.conf")
    }

    @Test func aListFromAHigherSourceReplacesInsteadOfMerging() throws {
        let byFlag = try ConfigResolver.resolve(
            flags: ["listen": ["127.0.0.1:1", "127.0.0.1:2"]],
            environment: ["TOLLGATE_LISTEN": "127.0.0.1:3"], file: file)
        #expect(byFlag.list("listen") == ["127.0.0.1:1", "127.0.0.1:2"])
        #expect(byFlag.origin("listen") == .flag)

        let byEnvironment = try ConfigResolver.resolve(
            flags: [:], environment: ["TOLLGATE_LISTEN": "127.0.0.1:3, [::1]:3", "TOLLGATE_TRUSTED_PROXY": ""],
            file: file)
        #expect(byEnvironment.list("listen") == ["127.0.0.1:3", "[::1]:3"])
        #expect(byEnvironment.origin("listen") == .environment("TOLLGATE_LISTEN"))
        // An empty list variable empties the file's list.
        #expect(byEnvironment.list("trusted-proxy") == [])
        #expect(byEnvironment.origin("trusted-proxy") == .environment("TOLLGATE_TRUSTED_PROXY"))

        let byFile = try ConfigResolver.resolve(flags: [:], environment: [:], file: file)
        #expect(byFile.list("listen") == ["0.0.0.0:443", "[::]:443"])
        #expect(byFile.origin("listen") == .file(path: "/etc/tollgate/tollgate.conf", line: 4))

        let byDefault = try ConfigResolver.resolve(flags: [:], environment: [:], file: nil)
        #expect(byDefault.list("listen") == ["0.0.0.0:8443"])
        #expect(byDefault.origin("listen") == .default)
        #expect(byDefault.configPath == nil)
    }

    @Test func flagValuesAreNotSplitAtCommasAndScalarsTakeTheLast() throws {
        let c = try ConfigResolver.resolve(
            flags: ["cors-origin": ["https://a,b"], "burst": ["1", "2"], "rate-limit-dry-run": []],
            environment: [:], file: nil)
        #expect(c.list("cors-origin") == ["https://a,b"])
        #expect(c.int("burst") == 2)
        #expect(c.bool("rate-limit-dry-run"))
    }

    @Test func environmentScalarsAreTakenVerbatim() throws {
        let c = try ConfigResolver.resolve(flags: [:], environment: ["TOLLGATE_REALM": " Team #1 \"x\" "], file: nil)
        #expect(c.string("realm") == " Team #1 \"x\" ")
    }

    @Test func environmentTypeErrorsNameTheVariable() {
        #expect(resolveErrors(environment: [
            "TOLLGATE_BURST": "many",
            "TOLLGATE_RATE": "fast",
            "TOLLGATE_WORKERS": "0",
            "TOLLGATE_RATE_LIMIT_DRY_RUN": "perhaps",
            "TOLLGATE_LOG": "yaml",
            "TOLLGATE_LISTEN": "a,,b",
            "TOLLGATE_CERT": "",
            "TOLLGATE_HEAD_TIMEOUT": " 5",
        ]) == [
            #"TOLLGATE_LISTEN: empty item in list"#,
            #"TOLLGATE_CERT: is empty"#,
            #"TOLLGATE_RATE: expected a number, got "fast""#,
            #"TOLLGATE_BURST: expected an integer, got "many""#,
            #"TOLLGATE_RATE_LIMIT_DRY_RUN: expected true or false, got "perhaps""#,
            #"TOLLGATE_WORKERS: 0 is out of range (1...256)"#,
            #"TOLLGATE_LOG: expected one of json, text, none, got "yaml""#,
            #"TOLLGATE_HEAD_TIMEOUT: expected a number, got " 5""#,
        ])
    }

    @Test func flagErrorsNameTheFlag() {
        #expect(resolveErrors(flags: ["burst": ["x"], "nope": ["1"], "realm": []]) == [
            #"--nope: not a setting"#,
            #"--realm: takes one value, not a list"#,
            #"--burst: expected an integer, got "x""#,
        ])
    }

    @Test func aBadEnvironmentValueIsAnErrorEvenWhenAFlagOverridesIt() {
        // The flag wins, so the variable is never read: not an error.
        #expect(resolveErrors(flags: ["burst": ["3"]], environment: ["TOLLGATE_BURST": "x"]) == [])
    }

    @Test func unknownTollgateVariablesAreWarningsWithASuggestion() throws {
        let c = try ConfigResolver.resolve(
            flags: [:],
            environment: ["TOLLGATE_BRUST": "5", "TOLLGATE_CONFIG": "/x.conf", "TOLLGATE_ZZZZZZZZ": "1", "PATH": "/bin"],
            file: nil)
        #expect(c.warnings == [
            "TOLLGATE_BRUST is not a Tollgate setting; ignored (did you mean TOLLGATE_BURST?)",
            "TOLLGATE_ZZZZZZZZ is not a Tollgate setting; ignored",
        ])
    }

    @Test func loadCollectsFileEnvironmentAndFlagProblemsTogether() throws {
        let path = "/tmp/tollgate-config-load-\(getpid()).conf"
        #expect(writeFile(path, "burst = 9\nrate = x\n"))
        defer { unlink(path) }
        do {
            _ = try ConfigResolver.load(flags: ["workers": ["0"]], environment: ["TOLLGATE_LOG": "yaml"],
                                        configPath: path)
            Issue.record("expected an error")
        } catch {
            #expect(error.problems.map(\.description) == [
                "\(path):2: key \"rate\": expected a number, got \"x\"",
                "--workers: 0 is out of range (1...256)",
                "TOLLGATE_LOG: expected one of json, text, none, got \"yaml\"",
            ])
        }

        #expect(writeFile(path, "burst = 9\n"))
        let viaVariable = try ConfigResolver.load(flags: [:], environment: ["TOLLGATE_CONFIG": path], configPath: nil)
        #expect(viaVariable.int("burst") == 9)
        #expect(viaVariable.origin("burst") == .file(path: path, line: 1))

        do {
            _ = try ConfigResolver.load(flags: [:], environment: [:], configPath: "/nonexistent/t.conf")
            Issue.record("expected an error")
        } catch {
            #expect(error.problems.count == 1)
            #expect(error.problems[0].location == .file(path: "/nonexistent/t.conf", line: nil))
        }
    }
}
