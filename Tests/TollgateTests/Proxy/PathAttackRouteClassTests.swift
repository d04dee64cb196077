import Testing
import TollgateHTTP
@testable import Tollgate

/// Route classes found by path length first, against the chain of comparisons they replaced (kept here verbatim as
/// `previous`): every known path and prefix with every byte value in every position, every one-byte extension
/// (at both ends) and every truncation, every case flip of each letter, each path followed in its buffer by the
/// rest of a longer one, and seeded random paths built from the routes' pieces.
@Suite struct PathAttackRouteClassTests {
    /// The implementation before the switch on length.
    static func previous(_ buffer: [UInt8], path: Range<Int>) -> RouteClass {
        func eq(_ s: StaticString) -> Bool { HTTPBytes.equals(buffer, path, s) }
        func prefix(_ s: StaticString) -> Bool { HTTPBytes.hasPrefix(buffer, path, s) }
        if eq("/api/generate") || eq("/api/chat") || eq("/api/embed") || eq("/api/embeddings") ||
            eq("/v1/chat/completions") || eq("/v1/completions") || eq("/v1/responses") || eq("/v1/embeddings") ||
            eq("/v1/messages") {
            return .inference
        }
        if eq("/") || eq("/api/version") || eq("/api/tags") || eq("/api/ps") || eq("/api/show") ||
            eq("/v1/models") || prefix("/v1/models/") {
            return .readOnly
        }
        if eq("/api/pull") || eq("/api/push") || eq("/api/create") || eq("/api/copy") || eq("/api/delete") {
            return .admin
        }
        if prefix("/api/blobs/") { return .blobs }
        if eq("/api/me") || eq("/api/signout") || prefix("/api/user/") || prefix("/api/experimental/") {
            return .account
        }
        return .unknown
    }

    static let paths = [
        "/api/generate", "/api/chat", "/api/embed", "/api/embeddings", "/v1/chat/completions", "/v1/completions",
        "/v1/responses", "/v1/embeddings", "/v1/messages", "/", "/api/version", "/api/tags", "/api/ps", "/api/show",
        "/v1/models", "/v1/models/", "/api/pull", "/api/push", "/api/create", "/api/copy", "/api/delete",
        "/api/blobs/", "/api/me", "/api/signout", "/api/user/", "/api/experimental/",
        // Paths Ollama serves that Tollgate does not name: they must stay unknown.
        "/api/status", "/api/web_search", "/api/web_fetch", "/api/signin", "/v1/images/generations",
    ]

    /// Checks `path` alone, inside a request line, and followed in its buffer by `after`.
    static func check(_ path: [UInt8], after: [UInt8] = [], sourceLocation: SourceLocation = #_sourceLocation) -> Bool {
        let placements: [([UInt8], Range<Int>)] = [
            (path, 0..<path.count),
            (Array("GET ".utf8) + path + Array(" HTTP/1.1\r\n".utf8), 4..<(4 + path.count)),
            (path + after, 0..<path.count),
        ]
        for (buffer, range) in placements {
            let expected = previous(buffer, path: range)
            let got = RouteClass.of(buffer, path: range)
            if got != expected {
                Issue.record("\(String(decoding: path, as: UTF8.self)) (\(path)): \(got), previously \(expected)",
                             sourceLocation: sourceLocation)
                return false
            }
        }
        return true
    }

    @Test func everyByteInEveryPositionOfEveryRoute() {
        for path in Self.paths {
            let base = Array(path.utf8)
            for at in base.indices {
                for value in 0...255 {
                    var changed = base
                    changed[at] = UInt8(value)
                    if !Self.check(changed) { return }
                    // The same with a parameter after it (the prefix routes).
                    if !Self.check(changed + Array("x".utf8)) { return }
                }
            }
        }
    }

    @Test func everyExtensionTruncationAndCaseFlip() {
        for path in Self.paths {
            let base = Array(path.utf8)
            for value in 0...255 {
                if !Self.check(base + [UInt8(value)]) { return }
                if !Self.check([UInt8(value)] + base) { return }
                if !Self.check(base + [UInt8(value)] + Array("tail".utf8)) { return }
            }
            for length in 0...base.count {
                let prefix = Array(base[..<length])
                if !Self.check(prefix, after: Array(base[length...])) { return }
                for other in Self.paths {
                    let rest = Array(other.utf8)
                    if rest.count > length && !Self.check(prefix, after: Array(rest[length...])) { return }
                }
            }
            for at in base.indices where (0x61...0x7A).contains(base[at]) || (0x41...0x5A).contains(base[at]) {
                var flipped = base
                flipped[at] ^= 0x20
                if !Self.check(flipped) { return }
            }
        }
    }

    @Test func randomPathsFromTheRoutesPieces() {
        var rng = SplitMix64(state: 0x726F_7574)
        let pieces = ["/", "api", "v1", "chat", "completions", "generate", "embed", "embeddings", "dings", "responses",
                      "messages", "version", "tags", "ps", "show", "models", "pull", "push", "create", "copy",
                      "delete", "blobs", "me", "signout", "user", "experimental", "x", "%2F", ".", "..", "API", "V1"]
        for _ in 0..<100_000 {
            var path = ""
            for _ in 0..<Int(rng.next() % 6) { path += pieces[Int(rng.next() % UInt64(pieces.count))] }
            if rng.next() % 2 == 0 { path = "/" + path }
            if !Self.check(Array(path.utf8)) { return }
        }
    }

    @Test func everyPathOfUpToFourBytesOverTheRoutesBytes() {
        let alphabet = Array("/apimesv1".utf8) + [0x00, 0x41, 0x2F ^ 0x20]
        var path: [UInt8] = []
        func walk(_ depth: Int) -> Bool {
            if !Self.check(path) { return false }
            guard depth < 4 else { return true }
            for b in alphabet {
                path.append(b)
                defer { path.removeLast() }
                if !walk(depth + 1) { return false }
            }
            return true
        }
        _ = walk(0)
    }
}

/// A small deterministic generator (SplitMix64).
private struct SplitMix64 {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
