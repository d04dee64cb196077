import Testing
@testable import Tollgate
import TollgateIO

/// Doctor's questions to Ollama, answered by a fake: reachable, its version and models, whether the expected models
/// are pulled; then memory and disk for the models present.
@Suite struct DoctorOllamaTests {
    @Test func reportsVersionAndModelsAndFindsMistralUnderAnyTag() throws {
        let host = try FakeDoctorHost()
        host.ollama(models: [("mistral:7b", 4_100_000_000), ("llama3.2:1b", 1_300_000_000)])
        let result = Doctor(subject: doctorSubject(), host: host).ollamaChecks()
        let ollama = try #require(check("ollama http://127.0.0.1:11434", in: result.checks))
        #expect(ollama.status == .ok)
        #expect(ollama.detail == "version 0.12.3, 2 model(s): mistral:7b, llama3.2:1b")
        #expect(check("models", in: result.checks)?.status == .ok)
        #expect(check("models", in: result.checks)?.detail == "mistral pulled")
        #expect(result.models.map(\.size) == [4_100_000_000, 1_300_000_000])
        // Sent as Ollama's Host check wants: the configured upstream, never anything else.
        #expect(host.fetched == ["127.0.0.1:11434 /api/version", "127.0.0.1:11434 /api/tags"])
    }

    @Test func noMistralIsAWarningButAMissingConfiguredModelFails() throws {
        let host = try FakeDoctorHost()
        host.ollama(models: [("llama3.2:1b", 1)])
        let byDefault = Doctor(subject: doctorSubject(), host: host).ollamaChecks().checks
        #expect(check("models", in: byDefault)?.status == .warn)
        #expect(check("models", in: byDefault)?.fix?.hasPrefix("ollama pull mistral") == true)

        let allowed = doctorSubject("listen-plain = 127.0.0.1:8080\nmetrics-listen = off\nmodel-allow = qwen2.5:7b\n")
        let configured = Doctor(subject: allowed, host: host).ollamaChecks().checks
        let models = try #require(check("models", in: configured))
        #expect(models.status == .fail)
        #expect(models.detail.contains("qwen2.5:7b"))
        #expect(models.fix == "ollama pull qwen2.5:7b")

        var asked = doctorSubject()
        asked.expectedModels = ["llama3.2"]
        #expect(check("models", in: Doctor(subject: asked, host: host).ollamaChecks().checks)?.status == .ok)
    }

    @Test func anUnreachableOllamaFailsWithWhereToLook() throws {
        let host = try FakeDoctorHost()
        let checks = Doctor(subject: doctorSubject(), host: host).ollamaChecks().checks
        #expect(checks.count == 1)
        #expect(checks[0].status == .fail)
        #expect(checks[0].detail == "no answer from 127.0.0.1:11434: Connection refused")
        #expect(checks[0].fix?.contains("systemctl status ollama") == true)
        // Something else on the port (a 404 page, Ollama's 403 for a foreign Host) is not taken for Ollama.
        host.answers["/api/version"] = .response(status: 403, body: [])
        let refused = Doctor(subject: doctorSubject(), host: host).ollamaChecks().checks
        #expect(refused[0].status == .fail)
        #expect(refused[0].detail.contains("403"))
    }

    @Test func everyBackendIsAsked() throws {
        let host = try FakeDoctorHost()
        host.ollama(models: [("mistral:latest", 1)])
        let subject = doctorSubject("""
            listen-plain = 127.0.0.1:8080
            metrics-listen = off
            upstream = http://127.0.0.1:11434
            upstream = http://127.0.0.1:11435

            """)
        let checks = Doctor(subject: subject, host: host).ollamaChecks().checks
        #expect(checks.map(\.name) == ["ollama http://127.0.0.1:11434", "ollama http://127.0.0.1:11435", "models"])
    }

    @Test func memoryAndDiskAreComparedWithTheLargestModel() throws {
        let host = try FakeDoctorHost()
        try host.write("proc/meminfo", "MemTotal:        8000000 kB\nMemFree:  100 kB\nMemAvailable:    2000000 kB\n")
        let big = Doctor.PulledModel(name: "mistral:7b", size: 4_100_000_000)
        var subject = doctorSubject()
        subject.modelsDirectory = host.root
        host.free = 3_000_000_000
        let checks = Doctor(subject: subject, host: host).resourceChecks(models: [big])
        let memory = try #require(check("memory", in: checks))
        #expect(memory.status == .warn)
        #expect(memory.detail.hasPrefix("mistral:7b is 3.8 GiB, 1.9 GiB available of 7.6 GiB"))
        #expect(check("models disk", in: checks)?.status == .warn)
        #expect(check("state disk", in: checks)?.status == .ok)

        host.free = 100 << 20
        let full = Doctor(subject: subject, host: host).resourceChecks(models: [])
        #expect(check("models disk", in: full)?.status == .fail)
        #expect(check("state disk", in: full)?.status == .fail)
        #expect(check("memory", in: full)?.status == .ok)
    }

    @Test func httpFetchReadsContentLengthAndChunkedAnswers() {
        let plain = HTTPFetch.parse(Array("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}xx".utf8))
        #expect(plain == .response(status: 200, body: Array("{}".utf8)))
        let chunked = HTTPFetch.parse(Array("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n".utf8))
        #expect(chunked == .response(status: 200, body: Array("{}".utf8)))
        #expect(HTTPFetch.parse(Array("SSH-2.0-OpenSSH\r\n".utf8)) == .failed("not an HTTP answer"))
    }
}
