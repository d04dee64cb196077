import Foundation
import Testing
@testable import Tollgate

/// An `ollama` key login says so in both access-log formats, with the key's fingerprint; other lines are unchanged.
@Suite struct ObserveOllamaKeyLogTests {
    private func record(ollamaKey: String?, refused: OllamaKeyResult? = nil) -> AccessRecord {
        AccessRecord(requestID: Array("r1".utf8), client: Array("203.0.113.9".utf8), user: "alice", method: "GET",
                     path: "/api/tags", status: 200, bytesIn: 1, bytesOut: 2, durationNanos: 3_000_000, ttfbNanos: nil,
                     upstreamNanos: nil, model: nil, promptTokens: nil, completionTokens: nil,
                     rateLimit: RateLimitResult(.pass), auth: refused == nil ? .allowed : .denied, reason: .completed,
                     ollamaKey: ollamaKey, ollamaKeyResult: refused)
    }

    @Test func theKeysFingerprintIsLogged() throws {
        let fingerprint = "SHA256:lbmsoA0yIEcEiVDRnMWuzm+nV+3ZEEpVIURqFoeSspg"
        var json: [UInt8] = []
        record(ollamaKey: fingerprint).appendJSON(timestamp: "T", to: &json)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json)) as? [String: Any])
        #expect(object["user"] as? String == "alice")
        #expect(object["login"] as? String == "ollama-key")
        #expect(object["ollama_key"] as? String == fingerprint)
        var text: [UInt8] = []
        record(ollamaKey: fingerprint).appendText(timestamp: "T", to: &text)
        #expect(String(decoding: text, as: UTF8.self).contains(" ollama-key=\(fingerprint) "))

        var plain: [UInt8] = []
        record(ollamaKey: nil).appendJSON(timestamp: "T", to: &plain)
        #expect(!String(decoding: plain, as: UTF8.self).contains("login"))
    }

    /// Every failed signed login tells the client the same thing (no probing which keys are listed or which users
    /// exist); the log keeps why, a stale `ts` apart from a bad signature.
    @Test func theClientGetsOneMessageAndTheLogTheReason() throws {
        let failed = OllamaKeyResult.allCases.filter(\.isFailedLogin)
        #expect(failed.count == 6)
        #expect(Set(failed.map(\.message)) == [OllamaKeyResult.refusalMessage])
        var json: [UInt8] = []
        record(ollamaKey: "SHA256:x", refused: .stale).appendJSON(timestamp: "T", to: &json)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json)) as? [String: Any])
        #expect(object["ollama_key_refused"] as? String == "stale")
        var text: [UInt8] = []
        record(ollamaKey: "SHA256:x", refused: .badSignature).appendText(timestamp: "T", to: &text)
        #expect(String(decoding: text, as: UTF8.self).contains(" ollama-key-refused=bad_signature "))
    }

    @Test func everyOutcomeHasItsOwnMetricLabel() {
        let labels = OllamaKeyResult.allCases.map(\.text)
        #expect(Set(labels).count == labels.count)
        #expect(labels.allSatisfy { $0.allSatisfy { $0.isLowercase || $0 == "_" } })
    }
}
