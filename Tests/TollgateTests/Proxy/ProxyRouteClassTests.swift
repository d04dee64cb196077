import Testing
@testable import Tollgate

/// Route classes of request paths, as gin routes them: exact and case-sensitive, with the prefixes of the routes
/// that take a parameter. Every route Tollgate names, and near misses of each.
@Suite struct ProxyRouteClassTests {
    static let table: [(String, RouteClass)] = [
        ("/api/generate", .inference), ("/api/chat", .inference), ("/api/embed", .inference),
        ("/api/embeddings", .inference), ("/v1/chat/completions", .inference), ("/v1/completions", .inference),
        ("/v1/responses", .inference), ("/v1/embeddings", .inference), ("/v1/messages", .inference),
        ("/", .readOnly), ("/api/version", .readOnly), ("/api/tags", .readOnly), ("/api/ps", .readOnly),
        ("/api/show", .readOnly), ("/v1/models", .readOnly), ("/v1/models/mistral:7b", .readOnly),
        ("/v1/models/", .readOnly),
        ("/api/pull", .admin), ("/api/push", .admin), ("/api/create", .admin), ("/api/copy", .admin),
        ("/api/delete", .admin),
        ("/api/blobs/sha256:abc", .blobs), ("/api/blobs/", .blobs),
        ("/api/me", .account), ("/api/signout", .account), ("/api/user/keys", .account),
        ("/api/experimental/x", .account),
        // Near misses: another case, a character more or less, a trailing slash, no leading slash.
        ("/API/pull", .unknown), ("/api/Chat", .unknown), ("/api/chat/", .unknown), ("/api/cha", .unknown),
        ("/api/chats", .unknown), ("/api/tags/", .unknown), ("/v1/model", .unknown), ("/v1/modelsx", .unknown),
        ("/api/blobs", .unknown), ("/api/user", .unknown), ("/api/experimental", .unknown), ("api/chat", .unknown),
        ("//", .unknown), ("", .unknown), ("/api/mE", .unknown), ("/api/versioN", .unknown), ("/api/", .unknown),
        ("/v1/chat/completion", .unknown), ("/v1/chat/completionsX", .unknown), ("/api/embeddingz", .unknown),
    ]

    @Test func everyRouteAndItsNearMisses() {
        for (path, expected) in Self.table {
            let bytes = Array(path.utf8)
            #expect(RouteClass.of(bytes, path: 0..<bytes.count) == expected, "\(path)")
            // Inside a larger buffer (the request line), as the proxy classifies it.
            let line = Array("GET \(path) HTTP/1.1".utf8)
            #expect(RouteClass.of(line, path: 4..<(4 + bytes.count)) == expected, "\(path) in a request line")
        }
    }
}
