import Testing
@testable import Tollgate

@Suite struct ConfigFileErrorTests {
    @Test(arguments: [
        ("bogus = 1", #"tollgate.conf:1: key "bogus": unknown setting"#),
        ("head_timeout = 5", #"tollgate.conf:1: key "head_timeout": unknown setting (did you mean "head-timeout"?)"#),
        ("Burst = 5", #"tollgate.conf:1: key "Burst": unknown setting (did you mean "burst"?)"#),
        ("burst = lots", #"tollgate.conf:1: key "burst": expected an integer, got "lots""#),
        ("burst = 2.5", #"tollgate.conf:1: key "burst": expected an integer, got "2.5""#),
        ("burst = -1", #"tollgate.conf:1: key "burst": -1 is out of range (0...1000000)"#),
        ("workers = 0", #"tollgate.conf:1: key "workers": 0 is out of range (1...256)"#),
        ("rate = fast", #"tollgate.conf:1: key "rate": expected a number, got "fast""#),
        ("rate = nan", #"tollgate.conf:1: key "rate": expected a number, got "nan""#),
        ("rate = 1e3", #"tollgate.conf:1: key "rate": expected a number, got "1e3""#),
        ("rate = 5.", #"tollgate.conf:1: key "rate": expected a number, got "5.""#),
        ("head-timeout = 0", #"tollgate.conf:1: key "head-timeout": 0 is out of range (0.001...86400)"#),
        ("rate-limit-dry-run = maybe", #"tollgate.conf:1: key "rate-limit-dry-run": expected true or false, got "maybe""#),
        ("log = yaml", #"tollgate.conf:1: key "log": expected one of json, text, none, got "yaml""#),
        ("cert =", #"tollgate.conf:1: key "cert": missing value"#),
        ("cert =   # nothing", #"tollgate.conf:1: key "cert": missing value"#),
        ("listen = a,", #"tollgate.conf:1: key "listen": empty item in list"#),
        ("listen = a,,b", #"tollgate.conf:1: key "listen": empty item in list"#),
        ("realm = \"open", #"tollgate.conf:1: key "realm": unterminated quoted value"#),
        ("realm = \"open\\\"", #"tollgate.conf:1: key "realm": unterminated quoted value"#),
        ("realm = \"a\\nb\"", #"tollgate.conf:1: key "realm": unknown escape \n in a quoted value (only \" and \\)"#),
        ("realm = \"a\" b", #"tollgate.conf:1: key "realm": unexpected text after the closing quote"#),
        ("realm = \"a\", \"b\"", #"tollgate.conf:1: key "realm": unexpected text after the closing quote"#),
        ("realm = a\"b", #"tollgate.conf:1: key "realm": a quote inside an unquoted value (quote the whole value)"#),
        ("just some words", #"tollgate.conf:1: expected "key = value", got "just some words""#),
        ("= 5", #"tollgate.conf:1: missing key before "=""#),
        ("realm = a\u{1}b", #"tollgate.conf:1: contains a control character"#),
    ])
    func eachErrorNamesFileLineAndKey(text: String, expected: String) {
        #expect(configErrors(text) == [expected])
    }

    @Test func aRepeatedScalarKeyNamesTheFirstLine() {
        #expect(configErrors("burst = 1\n# comment\nburst = 2") == [
            #"tollgate.conf:3: key "burst": already set on line 1 (only list settings may repeat)"#,
        ])
    }

    @Test func aRepeatedKeyIsAnErrorEvenWhenTheFirstValueWasBad() {
        #expect(configErrors("burst = x\nburst = 2") == [
            #"tollgate.conf:1: key "burst": expected an integer, got "x""#,
            #"tollgate.conf:2: key "burst": already set on line 1 (only list settings may repeat)"#,
        ])
    }

    @Test func invalidUTF8NamesTheLine() throws {
        var bytes = Array("burst = 1\nrealm = ".utf8)
        bytes += [0xFF, 0xFE, 0x0A]
        do {
            _ = try ConfigFile.parse(bytes: bytes, path: "tollgate.conf")
            Issue.record("expected an error")
        } catch {
            #expect(error.description == "tollgate.conf:2: not valid UTF-8")
        }
    }

    @Test func everyErrorIsCollectedInLineOrder() {
        let text = """
            # several mistakes
            listen = 0.0.0.0:443
            burst = twenty
            colour = blue
            rate = 10
            rate = 20
            log = yaml
            listen = [::]:443
            head-timeout = -1
            """
        #expect(configErrors(text) == [
            #"tollgate.conf:3: key "burst": expected an integer, got "twenty""#,
            #"tollgate.conf:4: key "colour": unknown setting"#,
            #"tollgate.conf:6: key "rate": already set on line 5 (only list settings may repeat)"#,
            #"tollgate.conf:7: key "log": expected one of json, text, none, got "yaml""#,
            #"tollgate.conf:9: key "head-timeout": -1 is out of range (0.001...86400)"#,
        ])
    }

    @Test func theErrorDescriptionIsOneLinePerProblem() {
        do {
            _ = try ConfigFile.parse(text: "a = 1\nb = 2", path: "/etc/tollgate/tollgate.conf")
            Issue.record("expected an error")
        } catch {
            #expect(error.problems.count == 2)
            #expect(error.problems[0].location == .file(path: "/etc/tollgate/tollgate.conf", line: 1))
            #expect(error.problems[0].key == "a")
            #expect(error.description == """
                /etc/tollgate/tollgate.conf:1: key "a": unknown setting
                /etc/tollgate/tollgate.conf:2: key "b": unknown setting
                """)
        }
    }
}
